"""The command path, as the runtime will run it: ``trade.title.execute`` at H records a pending
command under the id the runtime gives it; doc (stood in for by the runtime's own
``outcome_event``, decoded back with ``outcomes_for``) reports at H+1; trade records the outcome
at H+2 in its first phase."""

from __future__ import annotations

from tests.trade.helpers import Chain
from traco.core import commands as cmd
from traco.schemas.events import DomainEvent
from traco.services.trade import queries as q


def doc_reports(request: cmd.CommandRequest, accepted: bool, code: str, height: int) -> list[DomainEvent]:
    """What doc's stream carries at ``height`` after deciding ``request`` (the runtime's event)."""
    event = cmd.outcome_event(request, accepted, code, {"hold_id": request.payload["hold_id"]} if accepted else {})
    return [
        DomainEvent(
            type=event.type,
            service="doc",
            height=height,
            tx_id=request.command_id,
            tx_index=None,
            event_index=0,
            aggregate_id=event.aggregate_id,
            data=dict(event.data),
        )
    ]


def send(chain: Chain, hold_id: str) -> tuple[str, cmd.CommandRequest]:
    result = chain.block([(chain.cast.exporter, "trade.title.execute", {"hold_id": hold_id})])
    receipt = result.receipts[0]
    assert receipt.accepted, receipt
    requests = cmd.requests_for("doc", {"trade": list(result.events)}, ("party", "doc", "trade"))
    assert len(requests) == 1
    return receipt.result["command_id"], requests[0]


def test_a_title_command_is_filed_under_the_runtime_id_and_settled_two_heights_later() -> None:
    chain = Chain()
    command_id, request = send(chain, "title-hold-1")
    asked = chain.height
    assert request.command_id == command_id, "the rule's id is the runtime's"
    assert (request.target, request.kind, dict(request.payload)) == (
        "doc",
        "doc.hold.execute",
        {"hold_id": "title-hold-1"},
    )
    assert request.authority == chain.cast.exporter.key, "doc acts with the sender's authority"
    assert q.command(chain.state, command_id)["status"] == "pending"  # type: ignore[index]

    chain.block()  # H+1: doc executes the command (its side is the lead engineer's)
    outcomes = cmd.outcomes_for("trade", doc_reports(request, True, "OK", asked + 1))
    result = chain.block(outcomes=outcomes)  # H+2: trade's first phase
    assert chain.height == asked + 2
    assert [e.type for e in result.events] == ["CommandSettled"]
    assert result.events[0].tx_id == command_id and result.events[0].tx_index is None
    record = q.command(chain.state, command_id)
    assert record is not None
    assert (record["status"], record["code"], record["result"], record["settled"]) == (
        "accepted",
        "OK",
        {"hold_id": "title-hold-1"},
        asked + 2,
    )
    assert chain.replay() == chain.snapshot()


def test_a_refused_command_is_recorded_as_refused_and_unknown_outcomes_are_ignored() -> None:
    chain = Chain()
    command_id, request = send(chain, "title-hold-2")
    chain.block()
    refused = cmd.outcomes_for("trade", doc_reports(request, False, "NOT_BENEFICIARY", chain.height))
    stranger = cmd.CommandRequest("ab" * 32, "trade", "doc", "doc.hold.execute", {"hold_id": "x"}, "service:trade")
    unknown = cmd.outcomes_for("trade", doc_reports(stranger, True, "OK", chain.height))
    result = chain.block(outcomes=[*unknown, *refused])
    assert [e.type for e in result.events] == ["CommandSettled"]
    record = q.command(chain.state, command_id)
    assert record is not None and (record["status"], record["code"]) == ("refused", "NOT_BENEFICIARY")
    assert q.command(chain.state, "ab" * 32) is None


def test_two_commands_in_one_block_get_distinct_ids() -> None:
    chain = Chain()
    result = chain.block(
        [
            (chain.cast.exporter, "trade.title.execute", {"hold_id": "a"}),
            (chain.cast.importer, "trade.title.execute", {"hold_id": "b"}),
        ]
    )
    ids = [r.result["command_id"] for r in result.receipts]
    requests = cmd.requests_for("doc", {"trade": list(result.events)}, ("party", "doc", "trade"))
    assert [r.command_id for r in requests] == ids and len(set(ids)) == 2


def test_trade_is_a_domain_with_every_hook() -> None:
    from traco.core.domain import Domain
    from traco.services.trade.domain import TRADE

    domain: Domain = TRADE
    assert domain.service == "trade"
    for hook in ("genesis", "end_block", "on_command_outcome", "command_kinds"):
        assert hasattr(TRADE, hook), hook
