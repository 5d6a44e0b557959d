"""Securitisation's records and edges, from a mutmut run over ``services/trade/abs`` (the flows'
stories are in ``test_abs.py``): the pool's record holds the terms exactly as given (a fee
rate dropped there would agree with itself in every later distribution), the subordinated
fee reaches its recipient, cash that reached the pool's account outside a collection joins
the next one, a tranche's token cannot take an existing token's name, an asset listed twice
and a pool without equity, and the state's own consistency checks on events that contradict
it."""

from __future__ import annotations

import pytest

from tests.trade.helpers import DAY, hex32
from tests.trade.test_abs import COLLECT, ISO_FAR, POOL, TRC, AbsChain, invoice, pooled
from traco.core.canonical import MAX_SAFE_INTEGER as MAX_SAFE
from traco.core.domain import Event, encode
from traco.services.trade import mutations
from traco.services.trade import queries as q
from traco.services.trade import waterfall as wf
from traco.services.trade.abs import state as s

DUE_AT = 4_102_531_200_000
"""2100-01-02T00:00:00Z: an invoice due on 2100-01-01 is overdue from the next midnight (UTC)."""


def test_the_pool_record_holds_the_terms_as_given() -> None:
    chain = AbsChain()
    pooled(chain)
    record = s.pool(chain.state, "P1")
    assert record is not None
    docs = [hex32("inv", "P1", i) for i in range(2)]
    assert record["assets"] == [
        {"kind": "receivable", "id": docs[0], "amount": 400_000, "debtor": "importer", "due_at": DUE_AT},
        {"kind": "receivable", "id": docs[1], "amount": 500_000, "debtor": "importer", "due_at": DUE_AT},
    ]
    assert record["tranches"] == [
        {"name": "A", "token": "P1A", "size": 600_000, "coupon_bp": 500},
        {"name": "B", "token": "P1B", "size": 150_000, "coupon_bp": 900},
        {"name": "C", "token": "P1C", "size": 60_000, "coupon_bp": 1_500},
    ]
    assert record["fees"] == {
        "senior": {"rate_bp": 50, "fixed": 100, "to": "arranger"},
        "sub": {"rate_bp": 0, "fixed": 250, "to": "bank-b"},
    }
    deal = wf.Deal.from_json(record["deal"])
    assert (deal.senior_fee, deal.sub_fee) == (wf.Fee(rate_bp=50, fixed=100), wf.Fee(fixed=250))
    assert [(t.name, t.original, t.balance, t.coupon_bp) for t in deal.tranches] == [
        ("A", 600_000, 600_000, 500),
        ("B", 150_000, 150_000, 900),
        ("C", 60_000, 60_000, 1_500),
    ]
    assert (deal.equity_original, deal.reserve_target, deal.loss_trigger_bp) == (90_000, 5_000, 1_000)
    assert {k: record[k] for k in ("size", "equity", "collected", "paid_out", "collections", "status")} == {
        "size": 900_000,
        "equity": 90_000,
        "collected": 0,
        "paid_out": 0,
        "collections": 0,
        "status": "performing",
    }
    assert record["opened"] == {"tx_id": record["opened"]["tx_id"], "height": chain.height, "time": chain.time}
    for token in ("P1A", "P1B", "P1C"):
        found = q.token(chain.state, token)
        assert found is not None and found["asset_class"] == "abs_tranche"


def test_a_collection_records_what_came_in_and_what_went_out() -> None:
    chain = AbsChain()
    pooled(chain)
    first = chain.ok(chain.arranger, COLLECT, {"pool_id": "P1", "amount": 120_000}, dt=91 * DAY)
    record = s.pool(chain.state, "P1")
    assert record is not None
    dist = s.distributions(chain.state, "P1")[-1]
    assert dist["seq"] == 1 and "deal" not in dist
    paid = sum(amount for _, amount in dist["payouts"])
    assert first == {
        "pool_id": "P1",
        "seq": 1,
        "waterfall": "normal",
        "paid": paid,
        "carry": first["carry"],
        "reserve": record["deal"]["reserve"],
        "defaulted": False,
    }
    moves = [e.data for e in chain.results[-1].events if e.type == "Transferred"]
    assert moves and all(m["memo"] == "abs P1 distribution 1" and m["amount"] > 0 for m in moves)
    assert moves[0]["from"] == "arranger" and moves[0]["to"] == "abs:P1" and moves[0]["amount"] == 120_000
    assert (record["collected"], record["paid_out"], record["collections"]) == (120_000, paid, 1)
    # what came in went out, or stays in the pool's account as the reserve and the carries
    assert paid + record["deal"]["reserve"] + sum(first["carry"].values()) == 120_000
    chain.ok(chain.arranger, COLLECT, {"pool_id": "P1", "amount": 30_000}, dt=DAY)
    later = s.pool(chain.state, "P1")
    assert later is not None
    second = s.distributions(chain.state, "P1")[-1]
    assert second["seq"] == 2
    assert later["paid_out"] == paid + sum(amount for _, amount in second["payouts"])
    assert later["collected"] == 150_000


def test_the_subordinated_fee_reaches_its_recipient_once_the_notes_are_retired() -> None:
    chain = AbsChain()
    pooled(chain)
    before = chain.total("bank-b", TRC)
    record = s.pool(chain.state, "P1")
    assert record is not None
    result = chain.ok(chain.arranger, COLLECT, {"pool_id": "P1", "amount": 2_000_000}, dt=30 * DAY)
    expected = wf.distribute(wf.Deal.from_json(record["deal"]), 2_000_000, 0, 30 * DAY)
    fee = expected.paid_to("sub_fee", wf.SUB_FEE)
    assert fee == 250 and result["paid"] == expected.paid
    assert chain.total("bank-b", TRC) - before == fee


def test_cash_in_the_pools_account_beyond_what_it_owes_joins_the_next_collection() -> None:
    chain = AbsChain()
    pooled(chain)
    record = s.pool(chain.state, "P1")
    assert record is not None
    extra = 7_000  # nothing a member can send there; put there as a bug or an upgrade might
    chain.state.apply({q.balance_key(TRC, "abs:P1"): encode({"total": extra, "held": 0})})
    chain.ok(chain.arranger, COLLECT, {"pool_id": "P1", "amount": 1_000}, dt=DAY)
    dist = s.distributions(chain.state, "P1")[-1]
    expected = wf.distribute(wf.Deal.from_json(record["deal"]), 1_000 + extra, 0, DAY)
    assert dist["collections"] == 1_000 + extra
    assert dist["lines"] == [[line.step, line.to, line.amount] for line in expected.lines]


def test_pool_refusals_name_the_token_the_duplicate_and_the_size() -> None:
    chain = AbsChain()
    doc = chain.register(hex32("inv", "dup"), invoice("arranger", amount=1_000, due=ISO_FAR))
    terms = {"pool_id": "D1", "assets": [{"receivable": doc}], "loss_trigger_bp": 1}
    terms["tranches"] = [{"name": "A", "size": 1_000, "coupon_bp": 0}]  # no equity: allowed
    assert chain.ok(chain.arranger, POOL, terms)["equity"] == 0

    unknown = chain.run(chain.arranger, POOL, {**terms, "pool_id": "D2", "token": "NOPE"})
    assert (unknown.code, unknown.message) == ("UNKNOWN_TOKEN", "token: there is no token NOPE")

    other = chain.register(hex32("inv", "dup2"), invoice("arranger", amount=1_000, due=ISO_FAR))
    twice = chain.run(
        chain.arranger, POOL, {**terms, "pool_id": "D3", "assets": [{"receivable": other}, {"receivable": other}]}
    )
    assert twice.code == "INVALID_TERMS"
    assert twice.message == f"assets: receivable {other} is listed twice"

    # the tranche "C" of pool "TR" would be the token TRC, which exists
    clash = chain.run(
        chain.arranger,
        POOL,
        {**terms, "pool_id": "TR", "assets": [{"receivable": other}]}
        | {"tranches": [{"name": "C", "size": 10, "coupon_bp": 0}]},
    )
    assert clash.code == "TOKEN_EXISTS" and clash.message == "tranches: a token TRC exists already"

    over = chain.run(
        chain.arranger,
        POOL,
        {
            **terms,
            "pool_id": "D4",
            "assets": [{"receivable": other}],
            "tranches": [{"name": "A", "size": 1_001, "coupon_bp": 0}],
        },
    )
    assert (over.code, over.message) == ("INVALID_TERMS", "tranches: their sizes (1001) exceed the pool (1000)")


def test_events_that_contradict_the_pools_state_are_refused_on_replay() -> None:
    chain = AbsChain()
    pooled(chain)
    chain.ok(chain.arranger, COLLECT, {"pool_id": "P1", "amount": 1_000}, dt=DAY)
    pooled_again = next(e for e in chain.events if e.type == "AbsPooled")
    with pytest.raises(ValueError, match="pool P1 pooled twice"):
        mutations.mutate(chain.state, pooled_again)
    collected = next(e for e in chain.events if e.type == "AbsCollected")
    with pytest.raises(ValueError, match="pool P1 distribution 1 out of order"):
        mutations.mutate(chain.state, collected)
    data = dict(pooled_again.data)
    first = data["pool"]["assets"][0]
    fresh = {**data, "pool": {**data["pool"], "pool_id": "P9"}}  # a new pool of assets already pooled
    with pytest.raises(ValueError, match=f"receivable {first['id']} pooled twice"):
        mutations.mutate(chain.state, Event("AbsPooled", "abs:P9", fresh))


def test_pool_refusals_of_the_parties_are_word_for_word() -> None:
    chain = AbsChain()
    doc = chain.register(hex32("inv", "who"), invoice("arranger", amount=1_000, due=ISO_FAR))
    terms = {"pool_id": "W1", "assets": [{"receivable": doc}], "loss_trigger_bp": 1}
    terms["tranches"] = [{"name": "A", "size": 900, "coupon_bp": 0}]
    fees = {"senior": {"fixed": 1, "to": "unverified"}, "sub": {"fixed": 1, "to": "unverified"}}
    refused = chain.run(chain.arranger, POOL, {**terms, "fees": fees})
    why = "TRC may only be held by KYC-verified members; unverified is not"
    assert (refused.code, refused.message) == ("NOT_ELIGIBLE", f"fees.senior.to: {why}; fees.sub.to: {why}")
    chain.register(hex32("inv", "bank"), invoice("bank-a", amount=1_000, due=ISO_FAR))
    by_bank = {**terms, "assets": [{"receivable": hex32("inv", "bank")}]}
    refused = chain.run(chain.cast.bank_a, POOL, by_bank)
    assert (
        refused.message
        == "the arranger receives the units: W1A may only be held by qualified investors; bank-a is not one"
    )


def test_every_asset_is_judged_though_one_is_listed_twice() -> None:
    chain = AbsChain()
    doc = chain.register(hex32("inv", "twice"), invoice("arranger", amount=1_000, due=ISO_FAR))
    gone = chain.register(
        hex32("inv", "gone"), {**invoice("arranger", amount=1_000, due=ISO_FAR), "status": "surrendered"}
    )
    terms = {"pool_id": "T1", "loss_trigger_bp": 1, "tranches": [{"name": "A", "size": 10, "coupon_bp": 0}]}
    assets = [{"receivable": doc}, {"receivable": doc}, {"receivable": gone}]
    refused = chain.run(chain.arranger, POOL, {**terms, "assets": assets})
    assert refused.message == (
        f"assets: receivable {doc} is listed twice; receivable {gone[:12]}…: the document is surrendered"
    )


def test_invoice_amounts_from_one_unit_to_the_largest_safe_integer() -> None:
    chain = AbsChain()
    terms = {"loss_trigger_bp": 1, "tranches": [{"name": "A", "size": 1, "coupon_bp": 0}]}
    one = chain.register(hex32("amt", 1), invoice("arranger", amount=1, due=ISO_FAR))
    assert chain.ok(chain.arranger, POOL, {**terms, "pool_id": "M1", "assets": [{"receivable": one}]})["size"] == 1
    zero = chain.register(hex32("amt", 0), invoice("arranger", amount=0, due=ISO_FAR))
    refused = chain.run(chain.arranger, POOL, {**terms, "pool_id": "M0", "assets": [{"receivable": zero}]})
    assert refused.code == "ASSET_METADATA" and "metadata.amount must be" in refused.message
    top = [chain.register(hex32("amt", "top", i), invoice("arranger", amount=MAX_SAFE, due=ISO_FAR)) for i in range(2)]
    alone = chain.ok(chain.arranger, POOL, {**terms, "pool_id": "MX", "assets": [{"receivable": top[0]}]})
    assert alone["size"] == MAX_SAFE
    other = chain.register(hex32("amt", "top", 2), invoice("arranger", amount=MAX_SAFE, due=ISO_FAR))
    both = chain.run(
        chain.arranger, POOL, {**terms, "pool_id": "MY", "assets": [{"receivable": top[1]}, {"receivable": other}]}
    )
    assert (both.code, both.message) == ("INVALID_TERMS", "assets: the pool exceeds 2**53 - 1 minor units")


def test_metadata_that_is_not_an_object_names_each_missing_field() -> None:
    chain = AbsChain()
    doc = chain.register(hex32("inv", "junk"), {**invoice("arranger"), "metadata": "junk"})
    terms = {"pool_id": "J1", "assets": [{"receivable": doc}], "loss_trigger_bp": 1}
    refused = chain.run(chain.arranger, POOL, {**terms, "tranches": [{"name": "A", "size": 1, "coupon_bp": 0}]})
    assert refused.code == "ASSET_METADATA"
    for field in ("amount", "debtor", "due_date"):
        assert f"metadata.{field} must be" in refused.message


def test_a_pledge_that_lapsed_at_this_very_time_is_no_obstacle() -> None:
    chain = AbsChain()
    now = chain.time + chain.tick  # the next block's time
    doc = chain.register(
        hex32("inv", "lapsed"), invoice("arranger", amount=100, pledge={"expires_at": now, "tx_id": "p"})
    )
    terms = {"pool_id": "PL1", "assets": [{"receivable": doc}], "loss_trigger_bp": 1}
    assert (
        chain.ok(chain.arranger, POOL, {**terms, "tranches": [{"name": "A", "size": 1, "coupon_bp": 0}]})["size"] == 100
    )


def test_the_tranche_class_adopted_on_first_use_and_a_subordinated_fee_rate() -> None:
    chain = AbsChain()
    assert q.asset_class(chain.state, "abs_tranche") is None
    pooled(chain, fees={"senior": {"fixed": 1}, "sub": {"rate_bp": 30, "fixed": 2, "to": "bank-b"}})
    cls = q.asset_class(chain.state, "abs_tranche")
    assert cls is not None
    assert {k: cls[k] for k in ("name", "transferable", "holdable", "mint", "burn", "eligibility")} == {
        "name": "abs_tranche",
        "transferable": True,
        "holdable": True,
        "mint": "none",
        "burn": "none",
        "eligibility": "qualified",
    }
    record = s.pool(chain.state, "P1")
    assert record is not None and wf.Deal.from_json(record["deal"]).sub_fee == wf.Fee(rate_bp=30, fixed=2)
    tokens = {t: q.token(chain.state, t) for t in ("P1A", "P1B")}
    assert all(t is not None and t["asset_class"] == "abs_tranche" for t in tokens.values())


def test_a_collection_that_would_overflow_the_pools_funds_is_refused() -> None:
    chain = AbsChain()
    pooled(chain)
    chain.state.apply({q.balance_key(TRC, "abs:P1"): encode({"total": MAX_SAFE, "held": 0})})
    refused = chain.run(chain.arranger, COLLECT, {"pool_id": "P1", "amount": 1}, dt=DAY)
    assert (refused.code, refused.message) == (
        "INVALID_TERMS",
        "amount: the pool's funds would exceed 2**53 - 1 minor units",
    )


def test_a_pools_status_follows_its_notes() -> None:
    def deal(balance: int, unpaid: int, defaulted: bool = False) -> dict[str, object]:
        return {
            "defaulted": defaulted,
            "tranches": [{"balance": 0, "unpaid_interest": 0}, {"balance": balance, "unpaid_interest": unpaid}],
        }

    assert s._status(deal(0, 0)) == "retired"
    assert s._status(deal(5, 0)) == "performing"
    assert s._status(deal(0, 5)) == "performing"  # interest still owed: not retired
    assert s._status(deal(0, 0, defaulted=True)) == "defaulted"
