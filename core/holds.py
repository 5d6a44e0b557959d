"""Holds: one pure primitive for every asset that can be reserved for someone (architecture: Execution).

An owner *holds* an asset — an amount of a token in trade, a document's title (amount 1) in doc
— for a beneficiary until an expiry; while held it cannot move. The beneficiary (or a notary
named to decide instead) executes it, in full or in part with the rest returned, or releases it
back; at expiry the owning service's clause returns it to the owner. Escrow, delivery against
payment, loans and the bridge are built on this one record and these few functions.

Anchor: ERC-1996 *Holdable Token* (``hold``, ``executeHold``, ``releaseHold``, ``renewHold``,
``retrieveHoldData``, ``balanceOnHold``; statuses Ordered, Executed, ReleasedByNotary,
ReleasedByPayee, ReleasedOnExpiration). Comments below cite its function names.

How a service uses it (pure; the service stores ``Hold.to_json()`` and indexes by expiry):

- ``create(...)`` decides a new hold against the owner's *available* balance and the ids ever
  used; it returns the ``Hold`` (status ``ordered``) or a ``Rejected``.
- ``execute(hold, by, amount, height, time)`` and ``release(hold, by, height, time)`` decide
  the two ways a decider closes it; ``renew(hold, by, ...)`` extends its expiry.
- ``is_due(hold, height, time)`` says whether the service's clause (``end_block``) must close it
  now; ``expire(hold, height, by)`` is that closing (``by``: the service, ``service:<name>``).
- A closed hold is kept forever, so its id is never reused and anyone can see how it ended.

Boundary (exact, and the same for both services): a hold with expiry height ``eh`` and/or
expiry time ``et`` is *live* at a block of height ``h`` and time ``t`` while ``h < eh`` and
``t < et`` (an absent bound never binds). From the first block where ``h >= eh`` or ``t >= et``
it is *due*: no transaction of that block may execute, release or renew it (``HOLD_EXPIRED``),
and the clause at the end of that very block returns it to the owner.

Deviations from ERC-1996 (each makes the primitive stricter or more useful):

- Expiry is enforced by a clause at the end of the block, not lazily when someone calls
  ``releaseHold`` after it: the owner gets the asset back on an idle chain too, and a reader of
  the state never sees an expired hold that still looks ordered.
- Operation ids are unique forever (``HOLD_EXISTS``), including ids of closed holds: ERC-1996
  leaves reuse after a hold ends to implementations, and reuse lets a replayed instruction act
  twice.
- Without a notary the beneficiary decides (executes) itself; ERC-1996 always needs a notary.
  With a notary, only the notary executes; the beneficiary may still release (refuse) — giving
  up one's own claim needs no one's consent.
- The owner cannot release before expiry (ERC-1996's holder may only release after
  expiration, which here is the clause's job): a hold is a promise to the beneficiary.
- Renewal (``renewHold``) only by the owner, only while live, and only to a later expiry: no
  bound may move earlier or disappear, and at least one must move later. Shortening a promise
  would need the beneficiary's consent, which is a release and a new hold.
- Expiry may be a height, a block time, or both (first reached wins), and is mandatory: a hold
  without an expiry would lock an asset forever if the beneficiary vanished.
- Amounts are integers in minor units; a partial execution returns ``amount - executed`` to the
  owner in the same step, never later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from traco.core.domain import Rejected
from traco.core.timefmt import iso_utc

SERVICE_PREFIX: Final = "service:"
"""A notary that is a service acting by command (``service:<name>``) rather than a member."""


class HoldStatus(StrEnum):
    ORDERED = "ordered"
    EXECUTED = "executed"
    RELEASED_BY_BENEFICIARY = "released_by_beneficiary"
    RELEASED_BY_NOTARY = "released_by_notary"
    EXPIRED = "expired"


class HoldCode(StrEnum):
    """Receipt codes the hold rules return (services may add their own around them)."""

    HOLD_EXISTS = "HOLD_EXISTS"
    UNKNOWN_HOLD = "UNKNOWN_HOLD"
    HOLD_CLOSED = "HOLD_CLOSED"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    NOT_BENEFICIARY = "NOT_BENEFICIARY"
    NOT_OWNER = "NOT_OWNER"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_EXPIRY = "INVALID_EXPIRY"
    SELF_HOLD = "SELF_HOLD"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"


@dataclass(frozen=True)
class Hold:
    """One hold, live or closed. ``executed`` went to the beneficiary, ``returned`` to the
    owner; while ordered both are 0, once closed ``executed + returned == amount``."""

    hold_id: str
    owner: str
    beneficiary: str
    notary: str | None
    asset: str
    amount: int
    expires_height: int | None
    expires_time: int | None
    created_height: int
    created_time: int
    status: HoldStatus = HoldStatus.ORDERED
    executed: int = 0
    returned: int = 0
    closed_height: int | None = None
    closed_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is HoldStatus.ORDERED

    @property
    def decider(self) -> str:
        """Who executes: the notary when one is named, else the beneficiary."""
        return self.notary if self.notary is not None else self.beneficiary

    def to_json(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id,
            "owner": self.owner,
            "beneficiary": self.beneficiary,
            "notary": self.notary,
            "asset": self.asset,
            "amount": self.amount,
            "expires_height": self.expires_height,
            "expires_time": self.expires_time,
            "created_height": self.created_height,
            "created_time": self.created_time,
            "status": self.status.value,
            "executed": self.executed,
            "returned": self.returned,
            "closed_height": self.closed_height,
            "closed_by": self.closed_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hold:
        return cls(
            hold_id=data["hold_id"],
            owner=data["owner"],
            beneficiary=data["beneficiary"],
            notary=data["notary"],
            asset=data["asset"],
            amount=data["amount"],
            expires_height=data["expires_height"],
            expires_time=data["expires_time"],
            created_height=data["created_height"],
            created_time=data["created_time"],
            status=HoldStatus(data["status"]),
            executed=data["executed"],
            returned=data["returned"],
            closed_height=data["closed_height"],
            closed_by=data["closed_by"],
        )


def _reject(code: HoldCode, message: str) -> Rejected:
    return Rejected(code.value, message)


def is_due(hold: Hold, height: int, time: int) -> bool:
    """True if ``hold`` is ordered and its expiry is reached at (``height``, ``time``): from
    that block on it can no longer be executed, released or renewed, and the clause closes it."""
    if not hold.is_open:
        return False
    by_height = hold.expires_height is not None and height >= hold.expires_height
    by_time = hold.expires_time is not None and time >= hold.expires_time
    return by_height or by_time


def _live(hold: Hold, height: int, time: int) -> Rejected | None:
    """The refusal for acting on a hold that is closed or due, else ``None``."""
    if not hold.is_open:
        return _reject(HoldCode.HOLD_CLOSED, f"hold {hold.hold_id} is already {hold.status.value}")
    if is_due(hold, height, time):
        return _reject(
            HoldCode.HOLD_EXPIRED,
            f"hold {hold.hold_id} expired (height {hold.expires_height}, time {_when(hold.expires_time)});"
            " it returns to its owner at the end of this block",
        )
    return None


def _when(time: int | None) -> str:
    return "none" if time is None else iso_utc(time)


def _check_expiry(expires_height: int | None, expires_time: int | None, height: int, time: int) -> str | None:
    if expires_height is None and expires_time is None:
        return "a hold needs an expiry height or time (or both)"
    if expires_height is not None and expires_height <= height:
        return f"expiry height {expires_height} must be after the current height {height}"
    if expires_time is not None and expires_time <= time:
        return f"expiry time {iso_utc(expires_time)} must be after the block time {iso_utc(time)}"
    return None


def create(
    *,
    hold_id: str,
    owner: str,
    beneficiary: str,
    notary: str | None,
    asset: str,
    amount: int,
    expires_height: int | None,
    expires_time: int | None,
    height: int,
    time: int,
    available: int,
    id_used: bool,
) -> Hold | Rejected:
    """``hold``/``holdFrom``: a new hold of ``amount`` of ``asset`` from ``owner``'s
    ``available`` (total minus held minus locked) for ``beneficiary``.

    ``id_used`` is whether any hold, open or closed, ever had this id (ids are unique forever).
    Check order: id, amount, parties, expiry, funds.
    """
    if id_used:
        return _reject(HoldCode.HOLD_EXISTS, f"a hold {hold_id} exists or existed; hold ids are never reused")
    if amount <= 0:
        return _reject(HoldCode.INVALID_AMOUNT, f"a hold's amount must be positive, not {amount}")
    if owner == beneficiary:
        return _reject(HoldCode.SELF_HOLD, "the owner cannot hold an asset for itself")
    if notary == owner:
        return _reject(HoldCode.SELF_HOLD, "the owner cannot be the notary of its own hold")
    problem = _check_expiry(expires_height, expires_time, height, time)
    if problem is not None:
        return _reject(HoldCode.INVALID_EXPIRY, problem)
    if amount > available:
        return _reject(HoldCode.INSUFFICIENT_FUNDS, f"{owner} has {available} of {asset} available; {amount} needed")
    return Hold(
        hold_id=hold_id,
        owner=owner,
        beneficiary=beneficiary,
        notary=notary,
        asset=asset,
        amount=amount,
        expires_height=expires_height,
        expires_time=expires_time,
        created_height=height,
        created_time=time,
    )


def execute(hold: Hold, by: str, amount: int | None, height: int, time: int) -> Hold | Rejected:
    """``executeHold``: the decider (notary, else beneficiary) sends ``amount`` (default all) to
    the beneficiary; the rest returns to the owner at once and the hold is closed."""
    refused = _live(hold, height, time)
    if refused is not None:
        return refused
    if by != hold.decider:
        who = "its notary" if hold.notary is not None else "its beneficiary"
        return _reject(HoldCode.NOT_BENEFICIARY, f"only {who} ({hold.decider}) may execute hold {hold.hold_id}")
    value = hold.amount if amount is None else amount
    if not 0 < value <= hold.amount:
        return _reject(HoldCode.INVALID_AMOUNT, f"execute between 1 and {hold.amount}, not {value}")
    return replace(
        hold,
        status=HoldStatus.EXECUTED,
        executed=value,
        returned=hold.amount - value,
        closed_height=height,
        closed_by=by,
    )


def release(hold: Hold, by: str, height: int, time: int) -> Hold | Rejected:
    """``releaseHold``: the beneficiary refuses, or the notary decides against; all returns to
    the owner. The owner cannot release (the clause does, at expiry)."""
    refused = _live(hold, height, time)
    if refused is not None:
        return refused
    if by == hold.beneficiary:
        status = HoldStatus.RELEASED_BY_BENEFICIARY
    elif hold.notary is not None and by == hold.notary:
        status = HoldStatus.RELEASED_BY_NOTARY
    else:
        return _reject(
            HoldCode.NOT_BENEFICIARY,
            f"only the beneficiary or the notary may release hold {hold.hold_id}; its owner gets it back at expiry",
        )
    return replace(hold, status=status, returned=hold.amount, closed_height=height, closed_by=by)


def renew(
    hold: Hold, by: str, expires_height: int | None, expires_time: int | None, height: int, time: int
) -> Hold | Rejected:
    """``renewHold``: the owner moves the expiry later, while the hold is live. No bound may move
    earlier or be dropped, and at least one must move later."""
    refused = _live(hold, height, time)
    if refused is not None:
        return refused
    if by != hold.owner:
        return _reject(HoldCode.NOT_OWNER, f"only the owner ({hold.owner}) may renew hold {hold.hold_id}")
    problems: list[str] = []
    later = False
    for name, old, new in (
        ("height", hold.expires_height, expires_height),
        ("time", hold.expires_time, expires_time),
    ):
        if old is None:
            if new is not None:
                problems.append(f"expiry {name} cannot be added where there was none (it would come earlier)")
            continue
        if new is None:
            problems.append(f"expiry {name} {old} cannot be dropped")
        elif new < old:
            problems.append(f"expiry {name} {new} is earlier than the current {old}")
        elif new > old:
            later = True
    if not problems and not later:
        problems.append("a renewal must move the expiry later")
    if problems:
        return _reject(HoldCode.INVALID_EXPIRY, "; ".join(problems))
    return replace(hold, expires_height=expires_height, expires_time=expires_time)


def expire(hold: Hold, height: int, by: str) -> Hold:
    """The clause's closing of a due hold: everything returns to the owner. ``by`` names the
    service whose clause closed it (``service:<name>``)."""
    return replace(hold, status=HoldStatus.EXPIRED, returned=hold.amount, closed_height=height, closed_by=by)


__all__ = [
    "SERVICE_PREFIX",
    "Hold",
    "HoldCode",
    "HoldStatus",
    "create",
    "execute",
    "expire",
    "is_due",
    "release",
    "renew",
]
