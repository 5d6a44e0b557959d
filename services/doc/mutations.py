"""The state half of the doc service: how each domain event changes the key/value state.

``mutate(state, event)`` is a pure function of the state and the event alone (never the
transaction), so an auditor who replays the ``events.doc`` stream into an empty store arrives at
the same bytes as the service that executed the blocks. Every event also appends one entry to
its document's history (``hist/<lineage>/<seq>``), which is what ``doc verify`` shows with block
heights.

Events (all version 1; ``data`` always has ``doc_id``, ``by``, ``tx_id``, ``height``, ``time``):

========================  ===================================================================
``DocumentRegistered``    ``document`` (the full new record)
``MilestoneRecorded``     ``milestone``, ``occurred_at``, ``location``, ``details``
``TitleTransferred``      ``from``, ``to``, ``lapsed_pledge``
``DocumentSurrendered``   ``holder``, ``reason``, ``lapsed_pledge``
``DocumentPledged``       ``pledge`` (terms), ``holder``, ``lapsed_pledge``
``PledgeReleased``        ``pledge_id``, ``financier``, ``expired``
``PledgeEnforced``        ``pledge_id``, ``from`` (the holder), ``to`` (the financier): a managed
                          pledge enforced by its service's command (``managed.py``)
``DocumentLiened``        ``lien`` {manager, reference, tx_id, height, time}: the document backs
                          a later service's record (``managed.lien``); offers are cleared
``DocumentAmended``       ``new_doc_id``, ``document`` (the new version's record), ``reason``,
                          ``lapsed_pledge``
``DocumentKeyShared``     ``keys`` ({recipient key: sealed box})
``PledgeOffered``         ``offer`` (terms, as a pledge's), ``holder`` — rules v2
``PledgeOffersWithdrawn`` ``financiers`` (member refs whose offers the holder withdrew) — v2
``PledgeExtended``        ``pledge_id``, ``previous_expires_at``, ``expires_at`` — rules v2
``TitleHeld``             ``hold`` (``core.holds.Hold`` as JSON), ``beneficiary`` (member ref)
``TitleHoldExecuted``     ``hold`` (closed), ``to`` (the new holder), ``ended_pledge``
``TitleHoldReleased``     ``hold`` (closed)
``TitleHoldRenewed``      ``hold`` (new expiry), ``previous``
``TitleHoldExpired``      ``hold`` (closed by the ``hold_expiry`` clause; ``tx_id`` null)
========================  ===================================================================

``lapsed_pledge`` names an expired, never-released pledge that the action clears: an expired
pledge counts as released, so it does not survive a change of holder, a surrender or an amendment.

Under rules version 2 a document record may carry ``offers`` ({financier member id: terms}) and
``parties`` (member refs named at registration); a ``DocumentPledged`` from an acceptance has
``pledge.accepted`` (the accepting transaction's stamp) and consumes that financier's offer. A
title change clears ``offers``; records without the key (version 1) are written as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from traco.core.domain import Event, StateView, encode
from traco.services.doc import queries

Writes = dict[str, bytes | None]


def mutate(state: StateView, event: Event) -> Writes:
    """The writes that apply ``event`` to ``state``; an unknown event type is a bug (raises)."""
    try:
        handler = _MUTATORS[event.type]
    except KeyError:
        raise ValueError(f"the doc service has no event type {event.type!r}") from None
    return handler(state, event.data)


def _load(state: StateView, doc_id: str) -> dict[str, Any]:
    record = queries.document(state, doc_id)
    if record is None:
        raise LookupError(f"event for unknown document {doc_id}: the event stream is inconsistent")
    return record


def _stamp(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"tx_id": data["tx_id"], "height": data["height"], "time": data["time"]}


def _append(writes: Writes, record: dict[str, Any], type_: str, data: Mapping[str, Any], details: Any) -> None:
    """Append a history entry for ``record``'s lineage and bump its counter."""
    seq = record["history_length"]
    entry = {"seq": seq, "type": type_, "doc_id": data["doc_id"], "by": data["by"], **_stamp(data), "details": details}
    writes[queries.history_key(record["lineage"], seq)] = encode(entry)
    record["history_length"] = seq + 1


def _store(writes: Writes, record: dict[str, Any], data: Mapping[str, Any]) -> Writes:
    record["updated"] = _stamp(data)
    writes[queries.doc_key(record["doc_id"])] = encode(record)
    return writes


def _registered(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = dict(data["document"])
    writes: Writes = {
        queries.hash_key(record["file_hash"]): encode({"doc_id": record["doc_id"]}),
        record["business_key"]["index"]: encode({"doc_id": record["doc_id"]}),
    }
    details = {k: record[k] for k in ("type", "file_hash", "business_key", "issuer", "holder", "negotiable")}
    _append(writes, record, "DocumentRegistered", data, details)
    return _store(writes, record, data)


def _milestone(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    details = {k: data[k] for k in ("milestone", "occurred_at", "location", "details")}
    reached = {
        "doc_id": data["doc_id"],
        "milestone": data["milestone"],
        "by": data["by"]["member_id"],
        "occurred_at": data["occurred_at"],
        "tx_id": data["tx_id"],
    }
    writes[queries.milestone_at_key(data["height"], record["lineage"], record["history_length"])] = encode(reached)
    _append(writes, record, "MilestoneRecorded", data, details)
    record["last_milestone"] = {"milestone": data["milestone"], "occurred_at": data["occurred_at"], **_stamp(data)}
    return _store(writes, record, data)


def _clear_offers(record: dict[str, Any]) -> None:
    """Rules v2: a title change or an acceptance ends every open pledge offer. Only a record
    that has ``offers`` (made under version 2) changes, so version-1 bytes stay as they were."""
    if record.get("offers"):
        record["offers"] = {}


def _transferred(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    _append(writes, record, "TitleTransferred", data, {"from": data["from"], "to": data["to"]})
    record["holder"] = data["to"]
    record["pledge"] = None
    _clear_offers(record)
    return _store(writes, record, data)


def _surrendered(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    _append(writes, record, "DocumentSurrendered", data, {"holder": data["holder"], "reason": data["reason"]})
    record["status"] = "surrendered"
    record["surrender"] = {"reason": data["reason"], **_stamp(data)}
    record["pledge"] = None
    _clear_offers(record)
    return _store(writes, record, data)


def _pledged(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    terms = data["pledge"]
    details = {k: terms[k] for k in ("financier", "amount", "currency", "expires_at", "reference")}
    _append(writes, record, "DocumentPledged", data, details)
    record["pledge"] = dict(terms)
    if record.get("offers"):  # rules v2: the accepted offer is consumed; others stand (blocked while in force)
        record["offers"] = {m: t for m, t in record["offers"].items() if m != terms["financier"]["member_id"]}
    return _store(writes, record, data)


def _offered(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    terms = data["offer"]
    details = {k: terms[k] for k in ("financier", "amount", "currency", "expires_at", "reference")}
    _append(writes, record, "PledgeOffered", data, details)
    record["offers"] = {**(record.get("offers") or {}), terms["financier"]["member_id"]: dict(terms)}
    return _store(writes, record, data)


def _offers_withdrawn(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    _append(writes, record, "PledgeOffersWithdrawn", data, {"financiers": data["financiers"]})
    record["offers"] = {}
    return _store(writes, record, data)


def _extended(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    details = {k: data[k] for k in ("pledge_id", "previous_expires_at", "expires_at")}
    _append(writes, record, "PledgeExtended", data, details)
    record["pledge"] = {**record["pledge"], "expires_at": data["expires_at"]}
    return _store(writes, record, data)


def _released(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    details = {"pledge_id": data["pledge_id"], "financier": data["financier"], "expired": data["expired"]}
    _append(writes, record, "PledgeReleased", data, details)
    record["pledge"] = None
    return _store(writes, record, data)


def _enforced(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    details = {"pledge_id": data["pledge_id"], "from": data["from"], "to": data["to"]}
    _append(writes, record, "PledgeEnforced", data, details)
    record["holder"] = data["to"]
    record["pledge"] = None
    _clear_offers(record)
    return _store(writes, record, data)


def _liened(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    _append(writes, record, "DocumentLiened", data, {"lien": data["lien"]})
    record["lien"] = dict(data["lien"])
    _clear_offers(record)
    return _store(writes, record, data)


def _amended(state: StateView, data: Mapping[str, Any]) -> Writes:
    old = _load(state, data["doc_id"])
    new = dict(data["document"])
    writes: Writes = {}
    details = {"new_doc_id": new["doc_id"], "file_hash": new["file_hash"], "reason": data["reason"]}
    _append(writes, old, "DocumentAmended", data, details)
    new["history_length"] = old["history_length"]
    old["status"] = "superseded"
    old["next"] = new["doc_id"]
    old["pledge"] = None
    writes[queries.hash_key(new["file_hash"])] = encode({"doc_id": new["doc_id"]})
    writes[new["business_key"]["index"]] = encode({"doc_id": new["doc_id"]})
    _store(writes, old, data)
    return _store(writes, new, data)


def _key_shared(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    writes: Writes = {}
    for recipient, sealed in data["keys"].items():
        share = {"sealed": sealed, "by": data["by"], **_stamp(data)}
        writes[queries.shared_key_key(record["doc_id"], recipient)] = encode(share)
    _append(writes, record, "DocumentKeyShared", data, {"recipients": sorted(data["keys"])})
    return _store(writes, record, data)


def _held(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    hold = data["hold"]
    writes: Writes = {queries.hold_key(hold["hold_id"]): encode({**hold, "beneficiary_ref": data["beneficiary"]})}
    writes.update(dict.fromkeys(queries.hold_due_keys(hold), encode(True)))
    details = {k: hold[k] for k in ("hold_id", "beneficiary", "notary", "expires_height", "expires_time")}
    _append(writes, record, "TitleHeld", data, details)
    record["hold"] = hold["hold_id"]
    return _store(writes, record, data)


def _hold_closed(state: StateView, data: Mapping[str, Any], type_: str) -> Writes:
    """A hold executed, released or expired: kept forever, closed, its due entries gone."""
    record = _load(state, data["doc_id"])
    hold = data["hold"]
    key = queries.hold_key(hold["hold_id"])
    stored = queries.read(state, key) or {}
    writes: Writes = {key: encode({**stored, **hold})}
    writes.update(dict.fromkeys(queries.hold_due_keys(hold)))
    details = {k: hold[k] for k in ("hold_id", "status", "closed_by")}
    if type_ == "TitleHoldExecuted":
        details["to"] = data["to"]
        record["holder"] = data["to"]
        _clear_offers(record)
        if data.get("ended_pledge") is not None:
            record["pledge"] = None
    _append(writes, record, type_, data, details)
    record["hold"] = None
    return _store(writes, record, data)


def _hold_renewed(state: StateView, data: Mapping[str, Any]) -> Writes:
    record = _load(state, data["doc_id"])
    hold = data["hold"]
    key = queries.hold_key(hold["hold_id"])
    stored = queries.read(state, key) or {}
    writes: Writes = dict.fromkeys(queries.hold_due_keys(data["previous"]))
    writes.update(dict.fromkeys(queries.hold_due_keys(hold), encode(True)))
    writes[key] = encode({**stored, **hold})
    details = {k: hold[k] for k in ("hold_id", "expires_height", "expires_time")}
    _append(writes, record, "TitleHoldRenewed", data, details)
    return _store(writes, record, data)


_MUTATORS: dict[str, Callable[[StateView, Mapping[str, Any]], Writes]] = {
    "TitleHeld": _held,
    "TitleHoldExecuted": lambda state, data: _hold_closed(state, data, "TitleHoldExecuted"),
    "TitleHoldReleased": lambda state, data: _hold_closed(state, data, "TitleHoldReleased"),
    "TitleHoldExpired": lambda state, data: _hold_closed(state, data, "TitleHoldExpired"),
    "TitleHoldRenewed": _hold_renewed,
    "DocumentRegistered": _registered,
    "MilestoneRecorded": _milestone,
    "TitleTransferred": _transferred,
    "DocumentSurrendered": _surrendered,
    "DocumentPledged": _pledged,
    "PledgeOffered": _offered,
    "PledgeOffersWithdrawn": _offers_withdrawn,
    "PledgeExtended": _extended,
    "PledgeReleased": _released,
    "PledgeEnforced": _enforced,
    "DocumentLiened": _liened,
    "DocumentAmended": _amended,
    "DocumentKeyShared": _key_shared,
}

EVENT_TYPES = frozenset(_MUTATORS)
