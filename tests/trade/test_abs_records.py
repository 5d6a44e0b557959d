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
    assert moves and all(m["memo"] == "abs P1 distribution 1" for m in moves)
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
