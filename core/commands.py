"""Commands between services, as events on the origin's and the target's streams (architecture: Execution).

A later service (trade) may ask an earlier one (doc) to act: pledge a title, execute a hold.
The origin's rules return ``Command`` values; the runtime records each as a ``Command`` event
among the origin's events of height H, naming its authority (the sender of the transaction that
caused it, or ``service:<origin>`` for a clause) and an id derived from its position, so it is
unique forever and the same on every replica. The target reads the origin's events of H (it
waits for the origin's checkpoint of H before executing H+1, as it waits for its upstreams) and
executes the commands addressed to it at the start of H+1, before the block's transactions,
ordered by (origin's place in the service order, tx index, event index). For each it records a
``CommandOutcome`` event, which the origin applies at H+2 — when it sees its upstream's events
of H+1 — and completes or unwinds.

Why events and not a side channel: they are covered by the digest chain and the signed
checkpoints like any event, so a command and its outcome are as verifiable as a transfer, and a
rebuild of every service from the blocks replays them in lockstep. Both event types belong to
the runtime: a domain's ``mutate`` never sees them.

Nothing here trusts its input: a command event that does not decode is skipped and logged, and
every replica skips it alike (the events are those the origin's signed checkpoint covers).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from traco.core.canonical import canonicalize
from traco.core.domain import Command, CommandOutcome, Event
from traco.schemas.base import Hex32, Model
from traco.schemas.events import DomainEvent

log = logging.getLogger(__name__)

COMMAND_EVENT = "Command"
OUTCOME_EVENT = "CommandOutcome"
RUNTIME_EVENTS = frozenset({COMMAND_EVENT, OUTCOME_EVENT})
"""Event types the runtime writes; no domain's ``mutate`` is given them."""

COMMAND_PURPOSE = "traco/command/v1"
CLAUSE_PURPOSE = "traco/clause/v1"


def system_id(purpose: str, chain_id: str, service: str, height: int, *where: int | str) -> str:
    """The id of something no transaction signed (a command, a clause firing): a digest of
    where it happened, so every replica derives the same id and it never repeats."""
    body = {"purpose": purpose, "chain_id": chain_id, "service": service, "height": height, "at": list(where)}
    return hashlib.sha256(canonicalize(body)).hexdigest()


def service_authority(service: str) -> str:
    """The authority of a command no transaction caused (a clause's): the service itself."""
    return f"service:{service}"


class CommandData(Model):
    """The data of a ``Command`` event (what the target decodes before acting on it)."""

    command_id: Hex32
    origin: str = Field(min_length=1, max_length=32)
    target: str = Field(min_length=1, max_length=32)
    kind: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]
    authority: str = Field(min_length=1, max_length=128)


class OutcomeData(CommandData):
    """The data of a ``CommandOutcome`` event (what the origin decodes to complete or unwind)."""

    accepted: bool
    code: str
    result: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class CommandRequest:
    """A command as its target executes it."""

    command_id: str
    origin: str
    target: str
    kind: str
    payload: Mapping[str, Any]
    authority: str


def command_event(origin: str, command: Command, authority: str, command_id: str) -> Event:
    """How the origin records a command it sends."""
    data = CommandData(
        command_id=command_id,
        origin=origin,
        target=command.target,
        kind=command.kind,
        payload=dict(command.payload),
        authority=authority,
    )
    return Event(COMMAND_EVENT, command_id, data.json_value())


def outcome_event(request: CommandRequest, accepted: bool, code: str, result: Mapping[str, Any]) -> Event:
    """How the target records what it did with a command."""
    data = OutcomeData(
        command_id=request.command_id,
        origin=request.origin,
        target=request.target,
        kind=request.kind,
        payload=dict(request.payload),
        authority=request.authority,
        accepted=accepted,
        code=code,
        result=dict(result),
    )
    return Event(OUTCOME_EVENT, request.command_id, data.json_value())


def requests_for(
    target: str, by_origin: Mapping[str, Sequence[DomainEvent]], order: Sequence[str]
) -> list[CommandRequest]:
    """The commands addressed to ``target`` among each origin's events of one height, in the
    order they are executed: origin's place in ``order``, then position."""
    found: list[tuple[int, tuple[int, int, int], CommandRequest]] = []
    for origin, events in by_origin.items():
        rank = order.index(origin) if origin in order else len(order)
        for event in events:
            if event.type != COMMAND_EVENT:
                continue
            data = _decode(CommandData, event)
            if data is None or data.target != target or data.origin != origin:
                continue
            request = CommandRequest(data.command_id, origin, target, data.kind, data.payload, data.authority)
            found.append((rank, event.position, request))
    found.sort(key=lambda item: (item[0], item[1]))
    return [request for _, _, request in found]


def outcomes_for(origin: str, events: Iterable[DomainEvent]) -> list[CommandOutcome]:
    """What became of ``origin``'s commands, among a target's events of one height."""
    found: list[CommandOutcome] = []
    for event in events:
        if event.type != OUTCOME_EVENT:
            continue
        data = _decode(OutcomeData, event)
        if data is None or data.origin != origin or data.target != event.service:
            continue
        found.append(
            CommandOutcome(
                command_id=data.command_id,
                target=data.target,
                kind=data.kind,
                payload=data.payload,
                authority=data.authority,
                accepted=data.accepted,
                code=data.code,
                result=data.result,
            )
        )
    return found


def _decode(model: type[CommandData], event: DomainEvent) -> Any:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        log.error("skipping a %s event at %s that does not decode: %s", event.type, event.position, exc)
        return None


__all__ = [
    "COMMAND_EVENT",
    "OUTCOME_EVENT",
    "RUNTIME_EVENTS",
    "CommandRequest",
    "command_event",
    "outcome_event",
    "outcomes_for",
    "requests_for",
    "service_authority",
    "system_id",
]
