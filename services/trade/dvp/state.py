"""Delivery-versus-payment records: key layout, reads and mutators.

Keys::

    dvp/<dvp_id>                    the terms, both legs and the status
    dvp/title/<title_hold_id>       {"dvp_id"}: which settlement a doc title hold serves
    dvp/due/<height:012d>/<dvp_id>  {}: an unsettled DvP whose allocation deadline is that height

Status: ``open`` → (both legs allocated) ``allocated`` → (settle) ``settling`` → ``settled`` |
``failed``; or ``expired`` (a deadline passed). Events::

    DvpOpened     dvp (the record)
    DvpFunded     dvp_id, hold_id               (the buyer's tokens, a managed hold)
    DvpAllocated  dvp_id, title_hold_id         (the seller's title hold in doc)
    DvpSettling   dvp_id, command               (the title command sent to doc)
    DvpClosed     dvp_id, outcome (settled | failed | expired), code, reason
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade.writer import Data, Writer

HOLD_PREFIX: Final = "dvp:"
DUE: Final = "dvp/due/"


def key(dvp_id: str) -> str:
    return f"dvp/{dvp_id}"


def title_key(title_hold_id: str) -> str:
    return f"dvp/title/{title_hold_id}"


def due_prefix(height: int) -> str:
    return f"{DUE}{height:012d}/"


def hold_id(dvp_id: str) -> str:
    return f"{HOLD_PREFIX}{dvp_id}"


def dvp(view: StateView, dvp_id: str) -> dict[str, Any] | None:
    return q.read(view, key(dvp_id))


def by_title_hold(view: StateView, title_hold_id: str) -> str | None:
    record = q.read(view, title_key(title_hold_id))
    return None if record is None else str(record["dvp_id"])


def due_at(view: StateView, height: int) -> list[str]:
    prefix = due_prefix(height)
    return [k[len(prefix) :] for k, _ in view.scan(prefix)]


def _opened(w: Writer, d: Data) -> None:
    record = d["dvp"]
    w.put(key(record["dvp_id"]), record)
    w.put(due_prefix(record["allocate_by"]) + record["dvp_id"], {})


def _leg(w: Writer, dvp_id: str, **fields: Any) -> dict[str, Any]:
    record = w.must(key(dvp_id))
    record.update(fields)
    if record["funded"] and record["title_hold_id"] and record["status"] == "open":
        record["status"] = "allocated"
        w.delete(due_prefix(record["allocate_by"]) + dvp_id)
    w.put(key(dvp_id), record)
    return record


def _funded(w: Writer, d: Data) -> None:
    _leg(w, d["dvp_id"], funded=True)


def _allocated(w: Writer, d: Data) -> None:
    _leg(w, d["dvp_id"], title_hold_id=d["title_hold_id"])
    w.put(title_key(d["title_hold_id"]), {"dvp_id": d["dvp_id"]})


def _settling(w: Writer, d: Data) -> None:
    record = w.must(key(d["dvp_id"]))
    record.update(status="settling", settling={k: d[k] for k in ("by", "tx_id", "height", "time")})
    w.put(key(d["dvp_id"]), record)


def _closed(w: Writer, d: Data) -> None:
    record = w.must(key(d["dvp_id"]))
    if record["status"] in ("settled", "failed", "expired"):
        raise ValueError(f"DvP {d['dvp_id']} closed twice: the event stream is inconsistent")
    if record["status"] == "open":
        w.delete(due_prefix(record["allocate_by"]) + d["dvp_id"])
    record.update(status=d["outcome"], closed={k: d[k] for k in ("code", "reason", "height", "time")})
    w.put(key(d["dvp_id"]), record)


MUTATORS: Final[dict[str, Callable[[Writer, Data], None]]] = {
    "DvpOpened": _opened,
    "DvpFunded": _funded,
    "DvpAllocated": _allocated,
    "DvpSettling": _settling,
    "DvpClosed": _closed,
}
