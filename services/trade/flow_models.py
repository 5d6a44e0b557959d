"""The data half of every trade flow: its payload models (by kind), its event mutators (by event
type) and its events' wire models (for the AsyncAPI contract), gathered in one place.

Why apart from ``flows`` (the decisions): ``payloads`` and ``mutations`` import this module to
know every kind and every event type, and the flows' rules import ``payloads``' helpers in turn;
keeping models and mutators here (each flow's ``payloads.py`` and ``state.py`` import only
``fields``, ``writer``, ``queries`` and ``codes``) keeps that free of cycles.

A flow registers by adding its two modules below (``PARTS``) and its ``Flow`` in ``flows``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from traco.services.trade.abs import payloads as abs_payloads
from traco.services.trade.abs import state as abs_state
from traco.services.trade.dvp import payloads as dvp_payloads
from traco.services.trade.dvp import state as dvp_state
from traco.services.trade.escrow import payloads as escrow_payloads
from traco.services.trade.escrow import state as escrow_state
from traco.services.trade.exchange import payloads as exchange_payloads
from traco.services.trade.exchange import state as exchange_state
from traco.services.trade.fields import Payload
from traco.services.trade.loans import payloads as loans_payloads
from traco.services.trade.loans import state as loans_state
from traco.services.trade.writer import Writer

Mutator = Callable[[Writer, Mapping[str, Any]], None]

PARTS: Final = (
    ("escrow", escrow_payloads.MODELS, escrow_state.MUTATORS),
    ("loans", loans_payloads.MODELS, loans_state.MUTATORS),
    ("dvp", dvp_payloads.MODELS, dvp_state.MUTATORS),
    ("abs", abs_payloads.MODELS, abs_state.MUTATORS),
    ("exchange", exchange_payloads.MODELS, exchange_state.MUTATORS),
)
"""(flow, kind -> payload model, event type -> mutator), in the flows' order."""


def _merge(tables: list[Mapping[str, Any]], what: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for table in tables:
        for name, value in table.items():
            if name in merged:
                raise ValueError(f"two trade flows define the {what} {name!r}")
            merged[name] = value
    return merged


FLOW_MODELS: Final[dict[str, type[Payload]]] = _merge([models for _, models, _ in PARTS], "kind")
FLOW_MUTATORS: Final[dict[str, Mutator]] = _merge([mutators for _, _, mutators in PARTS], "event type")
FLOW_KINDS: Final = frozenset(FLOW_MODELS)
