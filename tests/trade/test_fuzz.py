"""Random, mostly well-formed transactions of every kind from every member, over many blocks:
no rule ever raises (a raise would be an ``EXECUTION_FAILED`` receipt, a bug in the rules), the
ledger's invariants hold after every block, and the events replay to the same state."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trade.helpers import Chain, Tx
from tests.trade.test_equity import TERMS
from traco.core.canonical import MAX_SAFE_INTEGER
from traco.services.trade import views

CAST = Chain().cast
ACTIVE = [CAST.exporter, CAST.importer, CAST.investor, CAST.custodian, CAST.bank_a, CAST.agent, CAST.regulator]
SENDERS = st.one_of(st.sampled_from(ACTIVE), st.sampled_from(list(CAST.specs)))
"""Mostly the members who can act, sometimes anyone (a refusal is a result too)."""
ACCOUNTS = st.one_of(
    st.sampled_from(["exporter", "importer", "investor", "agent"]),
    st.sampled_from([*(s.member_id for s in CAST.specs.values()), "nobody"]),
)
TOKENS = st.sampled_from(["COCO", "COCO", "TRC", "TRC", "ECC", "NOPE"])
EQUITY = st.sampled_from(["ECC", "ECC", "ECC", "COCO"])
SMALL = st.integers(1, 2_000)
AMOUNTS = st.integers(0, 19).flatmap(
    lambda k: st.just(0) if k == 0 else st.integers(1, MAX_SAFE_INTEGER) if k == 1 else SMALL
)
"""Mostly small amounts, sometimes huge, sometimes an invalid zero."""
HOLD_IDS = st.sampled_from(["h1", "h2", "h3"])
SEQS = st.integers(1, 4)


def payloads(chain: Chain) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    time = st.integers(chain.time - 10_000, chain.time + 100_000)
    height = st.integers(chain.height - 1, chain.height + 12)
    kinds: list[st.SearchStrategy[tuple[str, dict[str, Any]]]] = [
        st.tuples(
            st.just("trade.transfer"), st.fixed_dictionaries({"token": TOKENS, "to": ACCOUNTS, "amount": AMOUNTS})
        ),
        st.tuples(
            st.just("trade.hold.create"),
            st.fixed_dictionaries(
                {
                    "hold_id": HOLD_IDS,
                    "token": TOKENS,
                    "beneficiary": ACCOUNTS,
                    "amount": AMOUNTS,
                    "expires_height": height,
                },
                optional={"notary": ACCOUNTS, "expires_time": time},
            ),
        ),
        st.tuples(
            st.just("trade.hold.execute"), st.fixed_dictionaries({"hold_id": HOLD_IDS}, optional={"amount": AMOUNTS})
        ),
        st.tuples(st.just("trade.hold.release"), st.fixed_dictionaries({"hold_id": HOLD_IDS})),
        st.tuples(
            st.just("trade.hold.renew"),
            st.fixed_dictionaries({"hold_id": HOLD_IDS}, optional={"expires_height": height, "expires_time": time}),
        ),
        st.tuples(
            st.just("trade.trc.attest"),
            st.fixed_dictionaries(
                {
                    "reserve": st.sampled_from([0, 50_000, 10**7]),
                    "as_of": st.sampled_from([chain.time - 5_000, chain.time]),
                    "seq": SEQS,
                }
            ),
        ),
        st.tuples(st.just("trade.trc.mint"), st.fixed_dictionaries({"to": ACCOUNTS, "amount": AMOUNTS})),
        st.tuples(st.just("trade.trc.redeem"), st.fixed_dictionaries({"amount": AMOUNTS, "custodian": ACCOUNTS})),
        st.tuples(
            st.sampled_from(["trade.trc.freeze", "trade.trc.unfreeze"]),
            st.fixed_dictionaries({"account": ACCOUNTS, "reason": st.just("sanctions list")}),
        ),
        st.tuples(st.just("trade.equity.define"), st.just(TERMS)),
        st.tuples(
            st.just("trade.equity.issue"),
            st.fixed_dictionaries(
                {"token": EQUITY, "to": ACCOUNTS, "amount": AMOUNTS, "shares": st.integers(0, 5_000)}
            ),
        ),
        st.tuples(st.just("trade.equity.exercise"), st.fixed_dictionaries({"token": EQUITY, "amount": AMOUNTS})),
        st.tuples(st.just("trade.title.execute"), st.fixed_dictionaries({"hold_id": HOLD_IDS})),
    ]
    return st.one_of(kinds)


def funded_chain() -> Chain:
    """Every active member holds Coco and TRC, the investor ECC, so most transactions can pass."""
    chain = Chain()
    cast = chain.cast
    attest = {"reserve": 10**8, "as_of": chain.time, "seq": 1}
    setup: list[Tx] = [
        *(
            (cast.council1, "trade.transfer", {"token": "COCO", "to": a, "amount": 10**9})
            for a in ("exporter", "importer", "investor", "custodian", "bank-a", "agent")
        ),
        (cast.custodian, "trade.trc.attest", attest),
        (cast.bank_a, "trade.trc.attest", attest),
        (cast.custodian, "trade.equity.define", TERMS),
    ]
    chain.block(setup)
    chain.block(
        [
            *(
                (cast.custodian, "trade.trc.mint", {"to": a, "amount": 10**6})
                for a in ("exporter", "importer", "investor")
            ),
            (
                cast.custodian,
                "trade.equity.issue",
                {"token": "ECC", "to": "investor", "amount": 3_000, "shares": 2_000},
            ),
        ]
    )
    assert all(r.accepted for result in chain.results for r in result.receipts)
    return chain


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_transactions_never_break_a_rule_or_an_invariant(data: st.DataObject) -> None:
    chain = funded_chain()
    for _ in range(data.draw(st.integers(1, 10))):
        txs: list[Tx] = [(data.draw(SENDERS), *data.draw(payloads(chain))) for _ in range(data.draw(st.integers(0, 8)))]
        result = chain.block(txs, dt=data.draw(st.one_of(st.integers(1, 5_000), st.integers(1, 3 * 86_400_000))))
        assert all(r.code != "EXECUTION_FAILED" for r in result.receipts), [r.message for r in result.receipts]
        assert views.invariants(chain.state) == []
    assert chain.replay() == chain.snapshot()
