"""Escrow records: key layout, reads and the mutators of the escrow events.

Keys::

    escrow/<escrow_id>                 the escrow (terms, status, how it closed)
    escrow/wait/<lineage>/<escrow_id>  {}: an open escrow waiting for a milestone of that
                                       document lineage (so the release clause reads only the
                                       escrows of documents that had a milestone)

The money is not here: it is the managed hold ``escrow:<escrow_id>`` (core hold events move
it). Events::

    EscrowOpened    escrow (the record, status "open")
    EscrowDisputed  escrow_id, reason, until (the hold's new expiry), by…
    EscrowClosed    escrow_id, outcome (confirmed | released | cancelled | resolved | expired),
                    to_seller, to_buyer, reason, by…
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade import risk_state as risk
from traco.services.trade.writer import Data, Writer

HOLD_PREFIX: Final = "escrow:"
WAIT: Final = "escrow/wait/"


def key(escrow_id: str) -> str:
    return f"escrow/{escrow_id}"


def wait_prefix(lineage: str) -> str:
    return f"{WAIT}{lineage}/"


def wait_key(lineage: str, escrow_id: str) -> str:
    return f"{wait_prefix(lineage)}{escrow_id}"


def hold_id(escrow_id: str) -> str:
    return f"{HOLD_PREFIX}{escrow_id}"


def escrow(view: StateView, escrow_id: str) -> dict[str, Any] | None:
    return q.read(view, key(escrow_id))


def waiting(view: StateView, lineage: str) -> list[str]:
    """Open escrows waiting for a milestone of ``lineage``, in id order."""
    prefix = wait_prefix(lineage)
    return [k[len(prefix) :] for k, _ in view.scan(prefix)]


def _lineage(record: dict[str, Any]) -> str | None:
    release = record["release"]
    return release.get("lineage") if release["on"] == "milestone" else None


def _exposure(w: Writer, record: dict[str, Any], sign: int) -> None:
    amount = sign * record["amount"]
    risk.add_escrow(w, record["buyer"], record["token"], paying=amount, count_paying=sign)
    risk.add_escrow(w, record["seller"], record["token"], receiving=amount, count_receiving=sign)


def _opened(w: Writer, d: Data) -> None:
    record = d["escrow"]
    w.put(key(record["escrow_id"]), record)
    _exposure(w, record, 1)
    lineage = _lineage(record)
    if lineage is not None:
        w.put(wait_key(lineage, record["escrow_id"]), {})


def _disputed(w: Writer, d: Data) -> None:
    record = w.must(key(d["escrow_id"]))
    record["status"] = "disputed"
    record["dispute"] = {k: d[k] for k in ("reason", "until", "by", "tx_id", "height", "time")}
    w.put(key(d["escrow_id"]), record)
    lineage = _lineage(record)
    if lineage is not None:
        w.delete(wait_key(lineage, d["escrow_id"]))


def _closed(w: Writer, d: Data) -> None:
    record = w.must(key(d["escrow_id"]))
    if record["status"] not in ("open", "disputed"):
        raise ValueError(f"escrow {d['escrow_id']} closed twice: the event stream is inconsistent")
    _exposure(w, record, -1)
    record["status"] = d["outcome"]
    record["closed"] = {k: d[k] for k in ("to_seller", "to_buyer", "reason", "by", "tx_id", "height", "time")}
    w.put(key(d["escrow_id"]), record)
    lineage = _lineage(record)
    if lineage is not None:
        w.delete(wait_key(lineage, d["escrow_id"]))


MUTATORS: Final[dict[str, Callable[[Writer, Data], None]]] = {
    "EscrowOpened": _opened,
    "EscrowDisputed": _disputed,
    "EscrowClosed": _closed,
}
