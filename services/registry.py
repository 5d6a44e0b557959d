"""Which executing services exist, in which order, and how each starts from the genesis file.

The order is DESIGN §7's upstream order (party → doc → trade → bridge); a service reads the
state of the services before it. Modules are imported lazily so that the consensus service
never loads business rules it does not run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from traco.core.domain import Domain, Event
from traco.schemas.genesis import Genesis, validator_set

ORDER: tuple[str, ...] = ("party", "doc")
"""Executing services in their fixed order (results, upstream reads)."""

UPSTREAM: dict[str, tuple[str, ...]] = {"party": (), "doc": ("party",)}

_DOMAINS = {"party": ("traco.services.party.domain", "PARTY"), "doc": ("traco.services.doc.domain", "DOC")}


def domain(name: str) -> Domain:
    if name not in _DOMAINS:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(_DOMAINS)}")
    module, attribute = _DOMAINS[name]
    found: Domain = getattr(importlib.import_module(module), attribute)
    return found


def upstream_domains(name: str) -> list[Domain]:
    return [domain(u) for u in UPSTREAM.get(name, ())]


def kinds(names: Sequence[str]) -> tuple[str, ...]:
    """Every transaction kind the named services execute, sorted."""
    return tuple(sorted(k for n in names for k in domain(n).kinds))


def genesis_events(genesis: Genesis) -> Callable[[str], list[Event]]:
    """The events that give each service its state at height 0, from the genesis file."""

    def events(service: str) -> list[Event]:
        section: Any = genesis.extensions.get(service)
        if service == "party" and section is not None:
            party_genesis = importlib.import_module("traco.services.party.genesis")
            model = party_genesis.PartyGenesis.model_validate(section)
            chain_set = validator_set(genesis.validators)
            if not model.validators:  # the party state starts from the chain's own set
                model = model.model_copy(update={"validators": chain_set})
            elif validator_set(model.validators) != chain_set:
                raise ValueError("the party section's validators differ from the genesis validators")
            events: list[Event] = list(party_genesis.genesis_events(model))
            nodes: list[Event] = party_genesis.node_events(genesis.nodes, len(events), model.genesis_time)
            return events + nodes
        return []

    return events
