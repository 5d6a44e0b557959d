"""What the council governs in trade, read from party (rules version 2's ``set_service_param``).

Party cannot command trade (commands go from a later service to an earlier one), so a council
decision about trade is recorded in party's state as ``service_param/trade/<key>`` and trade
reads it from its projection of party as of the previous block — every replica alike. Trade
validates each value itself; one it cannot use is ignored (and stays visible in party), never
half applied.

- ``trc``: ``{max_reserve_age_ms?, redemption_fees?, compliance_role?}`` laid over the genesis
  TRC parameters (the governed maximum age, fee schedule and compliance role).
- ``asset_class/<name>``: an asset class the council added (the fields of a genesis class);
  ``trade.equity.define`` may name it, and the token then keeps a copy of it.
- ``correction/<id>``: ``{token, from, to, amount, reason}``, a corrective transfer the
  council voted; the clause ``correction`` carries it out once, at the end of the first block
  that sees it, moving available (even frozen) funds, or records why it could not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from traco.core.domain import BlockContext, ClauseEffect, Event, StateView
from traco.services.trade import queries as q
from traco.services.trade.codes import SERVICE
from traco.services.trade.genesis import AssetClass, FeeTier
from traco.services.trade.payloads import Account, Amount, Text, TokenId

CLAUSE_CORRECTION = "correction"
AUTHORITY = f"service:{SERVICE}"


class CouncilParams(Protocol):
    """The party reads of council-set parameters (``traco.services.party.queries``)."""

    def service_param(self, view: StateView, service: str, key: str) -> dict[str, Any] | None: ...

    def service_params(self, view: StateView, service: str, prefix: str) -> list[tuple[str, dict[str, Any]]]: ...


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class TrcOverrides(_Strict):
    max_reserve_age_ms: int | None = None
    redemption_fees: tuple[FeeTier, ...] | None = None
    compliance_role: str | None = None


class Correction(_Strict):
    token: TokenId
    from_: Account
    to: Account
    amount: Amount
    reason: Text


def _valid(model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate(value)
    except (ValidationError, TypeError):
        return None


def trc_params(params: Mapping[str, Any], party: CouncilParams, members: StateView) -> dict[str, Any]:
    """The genesis TRC parameters with the council's overrides laid over them."""
    raw = party.service_param(members, SERVICE, "trc")
    found = _valid(TrcOverrides, raw) if raw is not None else None
    if found is None:
        return dict(params)
    overrides = found.model_dump(mode="json", exclude_none=True)
    if "max_reserve_age_ms" in overrides and overrides["max_reserve_age_ms"] <= 0:
        return dict(params)
    return {**params, **overrides}


def council_class(party: CouncilParams, members: StateView, name: str) -> dict[str, Any] | None:
    """An asset class the council added, validated as a genesis class would be."""
    return _as_class(name, party.service_param(members, SERVICE, f"asset_class/{name}"))


def council_classes(party: CouncilParams, members: StateView) -> list[dict[str, Any]]:
    """Every usable asset class the council added, in name order."""
    found = []
    for key, raw in party.service_params(members, SERVICE, "asset_class/"):
        cls = _as_class(key.removeprefix("asset_class/"), raw)
        if cls is not None:
            found.append({**cls, "defined_by": "council"})
    return found


def _as_class(name: str, raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The council's value for class ``name``, validated as a genesis class would be."""
    found = _valid(AssetClass, {**raw, "name": name}) if isinstance(raw, Mapping) else None
    return None if found is None else found.model_dump(mode="json")


def corrections(
    state: StateView, party: CouncilParams, members: StateView, block: BlockContext
) -> Iterator[ClauseEffect]:
    """Every corrective transfer the council voted that trade has not yet carried out, one at a
    time: the caller applies each before the next is decided (two corrections of one account
    see each other)."""
    for key, raw in party.service_params(members, SERVICE, "correction/"):
        correction_id = key.removeprefix("correction/")
        if q.read(state, correction_key(correction_id)) is not None:
            continue
        stamp = {"by": AUTHORITY, "tx_id": None, "height": block.height, "time": block.time}
        value = dict(raw) if isinstance(raw, Mapping) else {}
        if "from" in value:
            value["from_"] = value.pop("from")
        found = _valid(Correction, value)
        problem = "the council's correction does not decode" if found is None else _problem(state, found)
        outcome = {"correction_id": correction_id, "applied": problem is None, "problem": problem, **stamp}
        events = [Event("CorrectionDecided", f"correction:{correction_id}", outcome)]
        if problem is None:
            moved = {"token": found.token, "from": found.from_, "to": found.to, "amount": found.amount}
            events.insert(0, Event("Transferred", f"token:{found.token}", {**moved, "memo": found.reason, **stamp}))
        yield ClauseEffect(CLAUSE_CORRECTION, correction_id, tuple(events))


def _problem(state: StateView, c: Correction) -> str | None:
    if q.token(state, c.token) is None:
        return f"there is no token {c.token}"
    if c.from_ == c.to:
        return "a correction from an account to itself moves nothing"
    bal = q.balance(state, c.token, c.from_)
    if c.amount > bal["total"] - bal["held"]:
        return f"{c.from_} has {bal['total'] - bal['held']} {c.token} not held; {c.amount} to correct"
    return None


def correction_key(correction_id: str) -> str:
    return f"correction/{correction_id}"


__all__ = ["CLAUSE_CORRECTION", "CouncilParams", "corrections", "council_class", "council_classes", "trc_params"]
