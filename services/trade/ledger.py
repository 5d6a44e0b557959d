"""What every trade rule needs: the context of one decision, party's reads behind a Protocol,
and the balance and eligibility checks that decide whether an amount may move.

Balances (``queries.balance``) keep ``total`` and ``held`` (part of total); a founders' lock
(``queries.locked``) keeps a further part in place until a height; ``available`` is what is
left. A movement larger than ``available`` is refused with the code that names what stands in
the way, checked in this order: ``INSUFFICIENT_FUNDS`` (more than the total), ``HELD`` (more
than the total minus held), ``LOCKED_UNTIL`` (the lock). ``FROZEN`` comes first of all: a frozen
account moves nothing, whatever its balance.

Party is read only through ``traco.services.party.queries`` (behind ``PartyQueries``), as of the
end of the previous block; trade never imports party's code. KYC and qualified-investor status
are read from the member record's ``kyc`` (``{"status", "expires_at", "qualified_investor"?}``):
a member is KYC-valid while ``status == "verified"`` and the block time is before
``expires_at``; qualified while also ``qualified_investor`` is ``true`` (party records it with
the KYC attestation; until it does, no one is qualified — fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from traco.core.domain import Event, Rejected, StateView, TxContext
from traco.services.trade import queries as q
from traco.services.trade.codes import Code, reject


class PartyQueries(Protocol):
    """The reads of party's state the trade rules use (``traco.services.party.queries``)."""

    def member(self, view: StateView, key: str, time: int) -> Mapping[str, Any] | None: ...

    def member_by_id(self, view: StateView, member_id: str) -> Mapping[str, Any] | None: ...

    def roles_of(self, view: StateView, key: str, time: int) -> frozenset[str]: ...

    def may_submit(self, view: StateView, key: str, kind: str, time: int) -> bool: ...

    def service_param(self, view: StateView, service: str, key: str) -> dict[str, Any] | None: ...

    def service_params(self, view: StateView, service: str, prefix: str) -> list[tuple[str, dict[str, Any]]]: ...


@dataclass(frozen=True)
class Context:
    """Everything one rule may look at."""

    state: StateView
    members: StateView
    party: PartyQueries
    tx: TxContext
    sender: str
    """The sender's member id (its account)."""
    upstream: Mapping[str, StateView] = field(default_factory=dict)
    """Every upstream service's state as of the previous block (party's is also ``members``)."""

    @property
    def upstream_doc(self) -> StateView | None:
        """Doc's state as trade keeps it (documents, title holds, milestones by height)."""
        return self.upstream.get("doc")

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """Doc's record of a document (``doc/<doc_id>`` in doc's layout) as of the previous block."""
        view = self.upstream_doc
        return None if view is None else q.read(view, f"doc/{doc_id}")

    def title_hold(self, hold_id: str) -> dict[str, Any] | None:
        """Doc's record of a title hold (``hold/<hold_id>`` in doc's layout) as of the previous block."""
        view = self.upstream_doc
        return None if view is None else q.read(view, f"hold/{hold_id}")

    @property
    def stamp(self) -> dict[str, Any]:
        return {"tx_id": self.tx.tx_id, "height": self.tx.height, "time": self.tx.time}

    def event(self, type_: str, aggregate: str, **data: Any) -> Event:
        return Event(type_, aggregate, {**data, "by": self.sender, **self.stamp})

    def member(self, account: str) -> Mapping[str, Any] | None:
        """The admitted member ``account``, else ``None``."""
        record = self.party.member_by_id(self.members, account)
        return record if record is not None and record.get("status") == "admitted" else None

    def kyc_valid(self, account: str) -> bool:
        record = self.member(account)
        kyc = record.get("kyc") if record is not None else None
        if not isinstance(kyc, Mapping) or kyc.get("status") != "verified":
            return False
        expires_at = kyc.get("expires_at")
        return isinstance(expires_at, int) and self.tx.time < expires_at

    def qualified(self, account: str) -> bool:
        record = self.member(account)
        kyc = record.get("kyc") if record is not None else None
        return self.kyc_valid(account) and isinstance(kyc, Mapping) and kyc.get("qualified_investor") is True

    def has_role(self, role: str) -> bool:
        return role in self.party.roles_of(self.members, self.tx.sender, self.tx.time)


def sender_account(party: PartyQueries, members: StateView, tx: TxContext) -> str | None:
    """The member id behind the sending key; a command's authority ``service:<name>`` stands
    for itself."""
    if tx.sender.startswith("service:"):
        return tx.sender
    record = party.member(members, tx.sender, tx.time)
    if record is None or record.get("status") != "admitted":
        return None
    member_id = record.get("member_id")
    return member_id if isinstance(member_id, str) and member_id else None


def token_and_class(state: StateView, token: str) -> tuple[dict[str, Any], dict[str, Any]] | Rejected:
    record = q.token(state, token)
    if record is None:
        return reject(Code.UNKNOWN_TOKEN, f"there is no token {token}")
    cls = q.asset_class(state, record["asset_class"])
    if cls is None:
        raise LookupError(f"token {token} names a missing asset class {record['asset_class']}")
    return record, cls


def can_spend(ctx: Context, token: str, account: str, amount: int) -> Rejected | None:
    """``None`` if ``account`` may move ``amount`` of ``token`` now, else the refusal."""
    freeze = q.frozen(ctx.state, token, account)
    if freeze is not None:
        return reject(Code.FROZEN, f"{account}'s {token} is frozen since height {freeze['height']}: {freeze['reason']}")
    bal = q.balance(ctx.state, token, account)
    lock = q.locked(ctx.state, token, account, ctx.tx.height)
    if amount <= bal["total"] - bal["held"] - lock:
        return None
    if amount > bal["total"]:
        return reject(Code.INSUFFICIENT_FUNDS, f"{account} has {bal['total']} {token}; {amount} needed")
    if amount > bal["total"] - bal["held"]:
        return reject(
            Code.HELD,
            f"{account} has {bal['total']} {token} but {bal['held']} of it is held; a held amount cannot move",
        )
    until = q.lock(ctx.state, token, account)
    return reject(
        Code.LOCKED_UNTIL,
        f"{lock} of {account}'s {token} is locked until height {until['until_height'] if until else '?'}",
    )


def can_receive(ctx: Context, cls: Mapping[str, Any], token: str, account: str) -> Rejected | None:
    """``None`` if ``account`` may receive ``token`` under its class's holder eligibility."""
    if account.startswith("service:"):
        return None
    if ctx.member(account) is None:
        return reject(Code.NOT_A_MEMBER, f"{account} is not an admitted member")
    if q.frozen(ctx.state, token, account) is not None:
        return reject(Code.FROZEN, f"{account}'s {token} is frozen; it cannot receive {token}")
    rule = cls["eligibility"]
    if rule == "kyc" and not ctx.kyc_valid(account):
        return reject(Code.NOT_ELIGIBLE, f"{token} may only be held by KYC-verified members; {account} is not")
    if rule == "qualified" and not ctx.qualified(account):
        return reject(Code.NOT_QUALIFIED, f"{token} may only be held by qualified investors; {account} is not one")
    return None
