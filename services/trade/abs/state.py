"""Securitisation records: key layout, reads and the mutators of the pool events.

Keys::

    abs/pool/<pool_id>            the pool: terms, assets, tranches, the waterfall's deal state
                                  (``waterfall.Deal.to_json``), what was collected and paid
    abs/asset/<kind>/<id>         {"pool_id"}: a loan or receivable in a pool (never pooled twice)
    abs/dist/<pool_id>/<seq:08d>  one distribution: the waterfall's lines, write-downs, the
                                  payouts per account and each tranche's rounding carry

The money is not here: the pool's cash is the balance of the account ``abs:<pool_id>`` (core
``Transferred`` events move it: the collection in, the payouts out), and the tranche units are
the tokens ``<pool_id><name>`` (core ``TokenDefined`` and ``Minted``). Events::

    AbsPooled     pool (the record, with the deal at closing)
    AbsCollected  pool_id, seq, amount, carried_in, losses, period_ms, distribution
                  (``waterfall.Distribution.to_json``, the deal after it included), payouts
                  [[account, amount]…], carry {tranche: amount} (after it), by…
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade.writer import Data, Writer

ACCOUNT_PREFIX: Final = "abs:"
"""The pool's own account, ``abs:<pool_id>`` (member ids never contain ``:``)."""
TRANCHE_CLASS: Final = "abs_tranche"


def pool_key(pool_id: str) -> str:
    return f"abs/pool/{pool_id}"


def asset_key(kind: str, asset_id: str) -> str:
    return f"abs/asset/{kind}/{asset_id}"


def dist_prefix(pool_id: str) -> str:
    return f"abs/dist/{pool_id}/"


def dist_key(pool_id: str, seq: int) -> str:
    return f"{dist_prefix(pool_id)}{seq:08d}"


def account(pool_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{pool_id}"


def tranche_token(pool_id: str, name: str) -> str:
    return f"{pool_id}{name}"


def pool(view: StateView, pool_id: str) -> dict[str, Any] | None:
    return q.read(view, pool_key(pool_id))


def pooled_in(view: StateView, kind: str, asset_id: str) -> str | None:
    """The pool that holds this loan or receivable, if any."""
    record = q.read(view, asset_key(kind, asset_id))
    return None if record is None else str(record["pool_id"])


def distributions(view: StateView, pool_id: str, last: int = 20) -> list[dict[str, Any]]:
    """The pool's latest ``last`` distributions, oldest first."""
    found = [q.read(view, key) for key, _ in view.scan(dist_prefix(pool_id))]
    return [d for d in found if d is not None][-last:]


def _pooled(w: Writer, d: Data) -> None:
    record = d["pool"]
    if w.get(pool_key(record["pool_id"])) is not None:
        raise ValueError(f"pool {record['pool_id']} pooled twice: the event stream is inconsistent")
    w.put(pool_key(record["pool_id"]), record)
    for asset in record["assets"]:
        key = asset_key(asset["kind"], asset["id"])
        if w.get(key) is not None:
            raise ValueError(f"{asset['kind']} {asset['id']} pooled twice: the event stream is inconsistent")
        w.put(key, {"pool_id": record["pool_id"]})


def _lien(w: Writer, d: Data) -> None:
    """What doc did with a pooled receivable's lien: recorded on the pool's asset."""
    record = w.must(pool_key(d["pool_id"]))
    for asset in record["assets"]:
        if asset["kind"] == "receivable" and asset["id"] == d["doc_id"]:
            asset["lien"] = {"accepted": d["accepted"], "code": d["code"], "height": d["height"]}
    w.put(pool_key(d["pool_id"]), record)


def _status(deal: Data) -> str:
    """``defaulted`` once the trigger was reached, ``retired`` once no note remains, else ``performing``."""
    if deal["defaulted"]:
        return "defaulted"
    notes = any(t["balance"] or t["unpaid_interest"] for t in deal["tranches"])
    return "performing" if notes else "retired"


def _collected(w: Writer, d: Data) -> None:
    record = w.must(pool_key(d["pool_id"]))
    if d["seq"] != record["collections"] + 1:
        raise ValueError(f"pool {d['pool_id']} distribution {d['seq']} out of order: the event stream is inconsistent")
    dist = d["distribution"]
    record.update(
        deal=dist["deal"],
        carry=d["carry"],
        collections=d["seq"],
        last_time=d["time"],
        collected=record["collected"] + d["amount"],
        paid_out=record["paid_out"] + sum(amount for _, amount in d["payouts"]),
        status=_status(dist["deal"]),
    )
    w.put(pool_key(d["pool_id"]), record)
    summary = {k: v for k, v in dist.items() if k != "deal"}
    fields = ("seq", "amount", "carried_in", "payouts", "carry", "by", "tx_id", "height", "time")
    w.put(dist_key(d["pool_id"], d["seq"]), {**summary, **{k: d[k] for k in fields}})


MUTATORS: Final[dict[str, Callable[[Writer, Data], None]]] = {
    "AbsPooled": _pooled,
    "AbsCollected": _collected,
    "AbsLienRecorded": _lien,
}
