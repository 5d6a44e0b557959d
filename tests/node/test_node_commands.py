"""A node tells its validator when a block left work for the next height (commands in flight)."""

from __future__ import annotations

from traco.core.commands import COMMAND_EVENT, OUTCOME_EVENT
from traco.core.service_exec import ServiceBlockResult
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.services.node.node import carries_commands


def result(service: str, *types: str) -> ServiceBlockResult:
    events = tuple(
        DomainEvent(type=t, service=service, height=3, event_index=i, aggregate_id=f"a{i}") for i, t in enumerate(types)
    )
    checkpoint = BlockProcessed(service=service, height=3, state_digest="00" * 32)
    return ServiceBlockResult(height=3, receipts=(), events=events, writes={}, checkpoint=checkpoint)


def test_a_command_sent_or_an_outcome_reported_is_work_for_the_next_height() -> None:
    assert carries_commands([result("party"), result("trade", "Transferred", COMMAND_EVENT)])
    assert carries_commands([result("doc", "Pledged", OUTCOME_EVENT), result("trade")])


def test_ordinary_events_or_none_are_not() -> None:
    assert not carries_commands([result("party"), result("doc"), result("trade")])
    assert not carries_commands([result("trade", "Transferred", "HoldPlaced")])
    assert not carries_commands([])
