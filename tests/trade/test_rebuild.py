"""A rebuild from the blocks (an auditor's replay, a node's restart) arrives at the same digests
and the same state as the live run, through every kind of step: transfers, holds executed and
expired by the clause, TRC attested, minted and redeemed, Coco epochs, an equity exercise, a
command and its outcome."""

from __future__ import annotations

from tests.trade.helpers import DAY, Chain
from tests.trade.test_commands import doc_reports
from tests.trade.test_equity import TERMS
from traco.core import commands as cmd
from traco.services.trade import views


def scenario() -> Chain:
    chain = Chain()
    c = chain.cast
    chain.ok(c.council1, "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 500_000})
    attest = {"reserve": 1_000_000, "as_of": chain.time, "seq": 1}
    chain.block([(c.custodian, "trade.trc.attest", attest), (c.bank_a, "trade.trc.attest", attest)])
    chain.ok(c.bank_b, "trade.trc.mint", {"to": "exporter", "amount": 900_000})
    hold = {"token": "TRC", "beneficiary": "importer", "amount": 100_000}
    chain.block(
        [
            (c.exporter, "trade.hold.create", {**hold, "hold_id": "pay", "expires_height": chain.height + 5}),
            (c.exporter, "trade.hold.create", {**hold, "hold_id": "lapse", "expires_time": chain.time + 5_000}),
        ]
    )
    chain.ok(c.importer, "trade.hold.execute", {"hold_id": "pay", "amount": 60_000})
    chain.block(dt=10_000)  # "lapse" expires by the clause
    chain.ok(c.exporter, "trade.trc.redeem", {"amount": 50_000, "custodian": "bank-a"})
    chain.ok(c.custodian, "trade.equity.define", TERMS)
    chain.ok(c.custodian, "trade.equity.issue", {"token": "ECC", "to": "investor", "amount": 300, "shares": 200})
    ex = chain.ok(c.investor, "trade.equity.exercise", {"token": "ECC", "amount": 30})["exercise_id"]
    chain.ok(c.agent, "trade.equity.settled", {"exercise_id": ex, "accepted": True})
    sent = chain.block([(c.exporter, "trade.title.execute", {"hold_id": "title-1"})])
    request = cmd.requests_for("doc", {"trade": list(sent.events)}, ("party", "doc", "trade"))[0]
    chain.block()
    chain.block(outcomes=cmd.outcomes_for("trade", doc_reports(request, True, "OK", chain.height)))
    chain.block(dt=15 * DAY)  # two Coco epochs
    return chain


def test_rebuild_from_the_blocks_gives_the_same_digests_and_state() -> None:
    chain = scenario()
    assert views.invariants(chain.state) == []
    kinds = {r.kind for result in chain.results for r in result.receipts}
    assert {"trade.clause.hold_expiry", "trade.clause.coco_epoch"} <= kinds
    digests, state = chain.rebuild()
    assert digests == chain.digests
    assert state == chain.snapshot()
    assert chain.replay() == chain.snapshot()


def test_two_independent_runs_agree_digest_for_digest() -> None:
    assert scenario().digests == scenario().digests
