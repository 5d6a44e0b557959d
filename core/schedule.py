"""What the chain's upgrades say a service does at a height (architecture: Execution: rules are versioned by
activation height).

The council schedules upgrades in party (``upgrade`` proposals): a service not in the genesis
starts executing at an activation height, with a genesis section the upgrade carries, and an
existing service's rules move to a new version at a height. Every replica, the validators and
the auditor's replay read the same schedule from party's state as of the end of the previous
height, so they all turn the same rules on at the same block, and replaying history uses the
rules that were in force at each height — fixing a rule never rewrites the past.

This module is the narrow interface between that schedule (party's state layout, behind the
``Schedule`` protocol, implemented by ``traco.services.party.queries``) and the runtime, which
never imports a service's code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from traco.core.domain import StateView

SCHEDULE_SOURCE = "party"
"""The service whose state holds the schedule (upgrades are council votes)."""
SCHEDULE_KEYS = ("activation/", "rule_version/", "upgrade/")
"""The key prefixes of the schedule in the source's state: kept in every projection of it."""


class Schedule(Protocol):
    """Reads of the upgrade schedule (``traco.services.party.queries`` provides them)."""

    def activation_height(self, view: StateView, service: str) -> int | None: ...

    def upgrade_section(self, view: StateView, service: str) -> dict[str, Any] | None: ...

    def rules_version(self, view: StateView, service: str, height: int) -> int | None: ...


@dataclass(frozen=True)
class Step:
    """What one service does at one height."""

    active: bool
    """It executes this height (else it is dormant: it keeps its upstream projections and an
    empty digest chain, and its checkpoint is in no results root)."""
    seeds: bool
    """This is its first active height: its genesis section is applied before the block."""
    rules: int
    """The version of its rules in force."""
    section: Mapping[str, Any] | None = None
    """The genesis section an upgrade gave it (``seeds`` of an activated service)."""


def step(
    schedule: Schedule | None,
    view: StateView | None,
    genesis_services: Sequence[str],
    service: str,
    height: int,
    genesis_rules: int = 1,
) -> Step:
    """What ``service`` does at ``height``, from the schedule in ``view`` (party's state as of
    the end of the previous height; ``genesis_rules``: the version the genesis starts it at).
    A genesis service is active from height 1 and seeds then;
    without a schedule (no party on the chain) nothing is ever upgraded, and a service that
    runs at all runs from height 1."""
    if schedule is None or view is None:
        return Step(active=True, seeds=height == 1, rules=genesis_rules)
    scheduled = schedule.rules_version(view, service, height)
    rules = genesis_rules if scheduled is None else scheduled
    if service in genesis_services:
        return Step(active=True, seeds=height == 1, rules=rules)
    activation = schedule.activation_height(view, service)
    if activation is None or height < activation:
        return Step(active=False, seeds=False, rules=rules)
    section = schedule.upgrade_section(view, service) if height == activation else None
    return Step(active=True, seeds=height == activation, rules=rules, section=section)


def active_services(
    schedule: Schedule | None,
    view: StateView | None,
    genesis_services: Sequence[str],
    known: Sequence[str],
    height: int,
) -> tuple[str, ...]:
    """The services whose results block ``height`` has, in results order: the genesis services
    in genesis order, then those activated by upgrades (among ``known``, this binary's) in
    ``known`` order."""
    activated = tuple(
        s
        for s in known
        if s not in genesis_services
        and schedule is not None
        and view is not None
        and (at := schedule.activation_height(view, s)) is not None
        and at <= height
    )
    return (*genesis_services, *activated)


__all__ = ["SCHEDULE_KEYS", "SCHEDULE_SOURCE", "Schedule", "Step", "active_services", "step"]
