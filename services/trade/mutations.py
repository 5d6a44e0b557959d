"""The state half of the trade service: how each event changes the key/value state.

``mutate(state, event)`` is a pure function of the state and the event alone, so an auditor who
replays ``events.trade`` into an empty store (genesis events first) arrives at the same bytes as
the service that executed the blocks. Every amount an event moves is in the event; nothing is
recomputed here from parameters, so a replay never depends on how a rule computed it.

Events (all version 1):

========================  =====================================================================
``AssetClassDefined``     ``asset_class`` (the record)
``TokenDefined``          ``token`` (the record, supply 0)
``Configured``            ``area`` (trc | coco | equity), ``params``
``Allocated``             ``token``, ``account``, ``amount`` (genesis: credit and supply)
``PoolFunded``            ``token``, ``amount`` (genesis: the Coco incentive pool)
``LockSet``               ``token``, ``account``, ``amount``, ``until_height``
``Transferred``           ``token``, ``from``, ``to``, ``amount``, ``memo``
``HoldCreated``           ``hold`` (ordered)
``HoldExecuted``,         ``hold`` (closed: ``executed`` to the beneficiary, ``returned`` to
``HoldReleased``,         the owner)
``HoldExpired``
``HoldRenewed``           ``hold`` (new expiry), ``previous`` {expires_height, expires_time}
``AttestationSigned``     ``seq``, ``custodian``, ``reserve``, ``as_of``
``ReserveAttested``       ``seq``, ``reserve``, ``as_of``, ``signers``, ``supply``, ``pending``,
                          ``paid_since``, ``shortfall``
``Minted`` / ``Burned``   ``token``, ``account``, ``amount``
``RedemptionRequested``   ``redemption`` (the record)
``RedemptionPaid``        ``redemption_id``, ``by``
``AccountFrozen``,        ``token``, ``account``, ``reason``, ``by``
``AccountUnfrozen``
``CocoEpochPaid``         ``epoch``, ``amount``, ``holders_share``, ``payouts`` [[account,
                          amount]…], ``paid`` (Σ payouts)
``EquityDefined``         ``equity`` (terms, custodied shares 0)
``SharesDeposited``       ``token``, ``shares``
``ExerciseFiled``         ``exercise`` (the record)
``ExerciseSettled``       ``exercise_id``, ``accepted``, ``shares``, ``reason``
``CommandSent``           ``command_id``, ``target``, ``kind``, ``payload``, ``by``
``CommandSettled``        ``command_id``, ``accepted``, ``code``, ``result``
========================  =====================================================================

Every event also carries ``tx_id``, ``height`` and ``time`` where a transaction or clause caused
it (genesis events carry height 0).
"""

from __future__ import annotations

from collections.abc import Callable

from traco.core.domain import Event, StateView
from traco.core.holds import Hold
from traco.services.trade import queries as q
from traco.services.trade.flow_models import FLOW_MUTATORS
from traco.services.trade.writer import Data, Writer, Writes, credit, supply


def mutate(state: StateView, event: Event) -> Writes:
    """The writes that apply ``event`` to ``state``; an unknown event type is a bug (raises)."""
    handler = _MUTATORS.get(event.type)
    if handler is not None:
        return handler(Writer(state), event.data)
    flow_handler = FLOW_MUTATORS.get(event.type)
    if flow_handler is None:
        raise ValueError(f"the trade service has no event type {event.type!r}")
    writer = Writer(state)
    flow_handler(writer, event.data)
    return writer.writes


def _asset_class(w: Writer, d: Data) -> Writes:
    w.put(q.class_key(d["asset_class"]["name"]), d["asset_class"])
    return w.writes


def _token(w: Writer, d: Data) -> Writes:
    w.put(q.token_key(d["token"]["token"]), d["token"])
    return w.writes


def _configured(w: Writer, d: Data) -> Writes:
    w.put(q.params_key(d["area"]), d["params"])
    return w.writes


def _allocated(w: Writer, d: Data) -> Writes:
    credit(w, d["token"], d["account"], total=d["amount"])
    supply(w, d["token"], d["amount"])
    return w.writes


def _pool_funded(w: Writer, d: Data) -> Writes:
    w.put(q.POOL, {"amount": (w.get(q.POOL) or {"amount": 0})["amount"] + d["amount"]})
    return w.writes


def _lock_set(w: Writer, d: Data) -> Writes:
    w.put(q.lock_key(d["token"], d["account"]), {"amount": d["amount"], "until_height": d["until_height"]})
    return w.writes


def _transferred(w: Writer, d: Data) -> Writes:
    credit(w, d["token"], d["from"], total=-d["amount"])
    credit(w, d["token"], d["to"], total=d["amount"])
    return w.writes


def _index(w: Writer, hold: Hold, add: bool) -> None:
    keys = []
    if hold.expires_height is not None:
        keys.append(q.expiry_height_key(hold.expires_height, hold.hold_id))
    if hold.expires_time is not None:
        keys.append(q.expiry_time_key(hold.expires_time, hold.hold_id))
        bucket = q.bucket_key(q.time_bucket(hold.expires_time))
        count = (w.get(bucket) or {"count": 0})["count"] + (1 if add else -1)
        if count > 0:
            w.put(bucket, {"count": count})
        else:
            w.delete(bucket)
    for key in keys:
        if add:
            w.put(key, {})
        else:
            w.delete(key)


def _hold_created(w: Writer, d: Data) -> Writes:
    hold = Hold.from_json(d["hold"])
    credit(w, hold.asset, hold.owner, held=hold.amount)
    w.put(q.hold_key(hold.hold_id), hold.to_json())
    _index(w, hold, add=True)
    return w.writes


def _hold_closed(w: Writer, d: Data) -> Writes:
    closed = Hold.from_json(d["hold"])
    before = Hold.from_json(w.must(q.hold_key(closed.hold_id)))
    if not before.is_open or closed.executed + closed.returned != before.amount:
        raise ValueError(f"hold {closed.hold_id} cannot close as {closed.status}: the event stream is inconsistent")
    credit(w, before.asset, before.owner, total=-closed.executed, held=-before.amount)
    if closed.executed:
        credit(w, before.asset, before.beneficiary, total=closed.executed)
    _index(w, before, add=False)
    w.put(q.hold_key(closed.hold_id), closed.to_json())
    return w.writes


def _hold_renewed(w: Writer, d: Data) -> Writes:
    renewed = Hold.from_json(d["hold"])
    before = Hold.from_json(w.must(q.hold_key(renewed.hold_id)))
    _index(w, before, add=False)
    _index(w, renewed, add=True)
    w.put(q.hold_key(renewed.hold_id), renewed.to_json())
    return w.writes


def _attestation_signed(w: Writer, d: Data) -> Writes:
    w.put(q.attestation_key(d["seq"], d["custodian"]), {"reserve": d["reserve"], "as_of": d["as_of"]})
    return w.writes


def _reserve_attested(w: Writer, d: Data) -> Writes:
    for key, _ in list(w.state.scan(q.ATTESTATIONS)):
        if int(key[len(q.ATTESTATIONS) :].split("/", 1)[0]) <= d["seq"]:
            w.delete(key)
    previous = w.get(q.RESERVE)
    paid_after = [p for p in (previous or {}).get("paid_after", []) if p["time"] > d["as_of"]]
    fields: tuple[str, ...] = ("seq", "reserve", "as_of", "signers", "supply", "pending", "paid_since")
    fields = (*fields, "shortfall", "tx_id", "height", "time")
    w.put(q.RESERVE, {**{k: d[k] for k in fields}, "paid_after": paid_after})
    return w.writes


def _minted(w: Writer, d: Data) -> Writes:
    credit(w, d["token"], d["account"], total=d["amount"])
    supply(w, d["token"], d["amount"])
    return w.writes


def _burned(w: Writer, d: Data) -> Writes:
    credit(w, d["token"], d["account"], total=-d["amount"])
    supply(w, d["token"], -d["amount"])
    return w.writes


def _redemption_requested(w: Writer, d: Data) -> Writes:
    record = d["redemption"]
    w.put(q.redemption_key(record["redemption_id"]), record)
    w.put(q.PENDING, {"amount": (w.get(q.PENDING) or {"amount": 0})["amount"] + record["amount"]})
    return w.writes


def _redemption_paid(w: Writer, d: Data) -> Writes:
    key = q.redemption_key(d["redemption_id"])
    record = w.must(key)
    record.update(status="paid", paid={"by": d["by"], "tx_id": d["tx_id"], "height": d["height"], "time": d["time"]})
    w.put(key, record)
    w.put(q.PENDING, {"amount": w.must(q.PENDING)["amount"] - record["amount"]})
    reserve = w.get(q.RESERVE)
    if reserve is not None:
        reserve["paid_after"] = [*reserve["paid_after"], {"time": d["time"], "amount": record["amount"]}]
        w.put(q.RESERVE, reserve)
    return w.writes


def _frozen(w: Writer, d: Data) -> Writes:
    fields = ("reason", "by", "tx_id", "height", "time")
    w.put(q.frozen_key(d["token"], d["account"]), {k: d[k] for k in fields})
    return w.writes


def _unfrozen(w: Writer, d: Data) -> Writes:
    w.delete(q.frozen_key(d["token"], d["account"]))
    return w.writes


def _epoch_paid(w: Writer, d: Data) -> Writes:
    params = w.must(q.params_key("coco"))
    for account, amount in d["payouts"]:
        credit(w, params["token"], account, total=amount)
    supply(w, params["token"], d["paid"])
    pool = w.must(q.POOL)["amount"] - d["paid"]
    if pool < 0:
        raise ValueError("the Coco pool would go negative: the event stream is inconsistent")
    w.put(q.POOL, {"amount": pool})
    progress = w.get(q.EPOCH) or {"next": 0, "paid": 0}
    w.put(q.EPOCH, {"next": d["epoch"] + 1, "paid": progress["paid"] + d["paid"]})
    fields = ("epoch", "amount", "holders_share", "paid", "height", "time")
    w.put(q.epoch_paid_key(d["epoch"]), {**{k: d[k] for k in fields}, "holders": len(d["payouts"])})
    return w.writes


def _class_adopted(w: Writer, d: Data) -> Writes:
    w.put(q.class_key(d["asset_class"]["name"]), d["asset_class"])
    return w.writes


def _correction_decided(w: Writer, d: Data) -> Writes:
    w.put(f"correction/{d['correction_id']}", {k: d[k] for k in ("applied", "problem", "height", "time")})
    return w.writes


def _equity_defined(w: Writer, d: Data) -> Writes:
    w.put(q.equity_key(d["equity"]["token"]), d["equity"])
    return w.writes


def _statement_listed(w: Writer, d: Data) -> Writes:
    record = w.must(q.equity_key(d["token"]))
    entry = {**d["statement"], "height": d["height"], "time": d["time"]}
    record["statements"] = [*record.get("statements", []), entry]
    w.put(q.equity_key(d["token"]), record)
    return w.writes


def _shares_deposited(w: Writer, d: Data) -> Writes:
    record = w.must(q.equity_key(d["token"]))
    record["custodied_shares"] += d["shares"]
    w.put(q.equity_key(d["token"]), record)
    return w.writes


def _exercise_filed(w: Writer, d: Data) -> Writes:
    w.put(q.exercise_key(d["exercise"]["exercise_id"]), d["exercise"])
    return w.writes


def _exercise_settled(w: Writer, d: Data) -> Writes:
    key = q.exercise_key(d["exercise_id"])
    record = w.must(key)
    record.update(status="settled" if d["accepted"] else "refused", reason=d["reason"], settled_height=d["height"])
    w.put(key, record)
    if d["shares"]:
        equity = w.must(q.equity_key(record["token"]))
        equity["custodied_shares"] -= d["shares"]
        w.put(q.equity_key(record["token"]), equity)
    return w.writes


def _command_sent(w: Writer, d: Data) -> Writes:
    fields = ("command_id", "target", "kind", "payload", "by", "tx_id", "height")
    w.put(q.command_key(d["command_id"]), {**{k: d[k] for k in fields}, "status": "pending"})
    return w.writes


def _command_settled(w: Writer, d: Data) -> Writes:
    key = q.command_key(d["command_id"])
    record = w.must(key)
    record.update(
        status="accepted" if d["accepted"] else "refused", code=d["code"], result=d["result"], settled=d["height"]
    )
    w.put(key, record)
    return w.writes


_MUTATORS: dict[str, Callable[[Writer, Data], Writes]] = {
    "AssetClassDefined": _asset_class,
    "TokenDefined": _token,
    "Configured": _configured,
    "Allocated": _allocated,
    "PoolFunded": _pool_funded,
    "LockSet": _lock_set,
    "Transferred": _transferred,
    "HoldCreated": _hold_created,
    "HoldExecuted": _hold_closed,
    "HoldReleased": _hold_closed,
    "HoldExpired": _hold_closed,
    "HoldRenewed": _hold_renewed,
    "AttestationSigned": _attestation_signed,
    "ReserveAttested": _reserve_attested,
    "Minted": _minted,
    "Burned": _burned,
    "RedemptionRequested": _redemption_requested,
    "RedemptionPaid": _redemption_paid,
    "AccountFrozen": _frozen,
    "AccountUnfrozen": _unfrozen,
    "CocoEpochPaid": _epoch_paid,
    "EquityDefined": _equity_defined,
    "AssetClassAdopted": _class_adopted,
    "CorrectionDecided": _correction_decided,
    "CustodyStatementListed": _statement_listed,
    "SharesDeposited": _shares_deposited,
    "ExerciseFiled": _exercise_filed,
    "ExerciseSettled": _exercise_settled,
    "CommandSent": _command_sent,
    "CommandSettled": _command_settled,
}

EVENT_TYPES = frozenset(_MUTATORS) | frozenset(FLOW_MUTATORS)
