"""Which executing services exist, in which order, and how each starts from the genesis file.

The order is architecture: Execution's upstream order (party → doc → trade → bridge); a service reads the
state of the services before it. Modules are imported lazily so that the consensus service
never loads business rules it does not run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, cast

from traco.core.domain import Domain, Event
from traco.core.schedule import SCHEDULE_SOURCE, Schedule
from traco.schemas.genesis import Genesis

ORDER: tuple[str, ...] = ("party", "doc", "trade")
"""Executing services in their fixed order (results, upstream reads)."""

UPSTREAM: dict[str, tuple[str, ...]] = {"party": (), "doc": ("party",), "trade": ("party", "doc")}

_DOMAINS = {
    "party": ("traco.services.party.domain", "PARTY"),
    "doc": ("traco.services.doc.domain", "DOC"),
    "trade": ("traco.services.trade.domain", "TRADE"),
}


def domain(name: str) -> Domain:
    if name not in _DOMAINS:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(_DOMAINS)}")
    module, attribute = _DOMAINS[name]
    found: Domain = getattr(importlib.import_module(module), attribute)
    return found


COMMANDERS: dict[str, tuple[str, ...]] = {"party": (), "doc": ("trade",), "trade": ()}
"""The later services that may send each service commands (architecture: Execution): it waits for their
checkpoint of H-1 before executing H, so a rebuild runs every service in lockstep."""


def upstream_domains(name: str) -> list[Domain]:
    return [domain(u) for u in UPSTREAM.get(name, ())]


def runnable(genesis: Genesis) -> tuple[str, ...]:
    """The services a node runs for this chain: the genesis's, then — on a chain whose party
    holds an upgrade schedule — every other service this binary knows, dormant until an
    upgrade activates it (so a data directory made before a service existed gains it)."""
    named = tuple(genesis.params.services)
    if SCHEDULE_SOURCE not in named:
        return named
    return (*named, *(s for s in ORDER if s not in named))


def schedule(genesis: Genesis) -> Schedule | None:
    """The chain's upgrade schedule reader (party's queries), None on a chain without party."""
    if SCHEDULE_SOURCE not in genesis.params.services:
        return None
    return cast(Schedule, importlib.import_module("traco.services.party.queries"))


def commander_domains(name: str, active: Sequence[str]) -> list[Domain]:
    """The services among ``active`` (the chain's) that may command ``name``."""
    return [domain(c) for c in COMMANDERS.get(name, ()) if c in active]


def kinds(names: Sequence[str]) -> tuple[str, ...]:
    """Every transaction kind the named services execute, sorted."""
    return tuple(sorted(k for n in names for k in domain(n).kinds))


def genesis_events(genesis: Genesis) -> Callable[[str], list[Event]]:
    """The events that give each service its state at height 0: each domain reads its own
    section of the genesis file (``Domain.genesis``); a domain without the hook starts empty."""

    def events(service: str) -> list[Event]:
        if service not in genesis.params.services:
            return []  # a service an upgrade activates gets its section with the upgrade
        seed = getattr(domain(service), "genesis", None)
        if seed is None:
            return []
        section: Any = genesis.extensions.get(service)
        return list(seed(section, genesis))

    return events
