"""The decision half of the doc service: one pure function per ``doc.*`` kind.

Each rule gets a ``Context`` (own state after the earlier transactions of the block, party's
state as of the previous block, the transaction) and a validated payload, and returns
``Accepted`` with the events that say what happened, or ``Rejected`` with a receipt code. Rules
never write: ``mutations.py`` turns the events into state, so a replay of the events alone
rebuilds the same bytes.

Check order is part of the rules (it decides which code a receipt carries when several apply):
the document's existence and finality first (``UNKNOWN_DOCUMENT``, ``SURRENDERED``,
``SUPERSEDED``), then the sender's authority (``NOT_HOLDER``, ``NOT_ISSUER``, ``WRONG_ROLE``, ``NOT_NAMESPACE_OWNER``),
then the document's encumbrance (``ALREADY_PLEDGED``, ``PLEDGED``), then the counterparty
(``NOT_A_MEMBER``, ``NOT_FINANCIER``). Block-time checks on the payload (an expiry that is
already past) come before all of them, as payload checks do.

Parties are identified by member id, not key: a holder who rotates its key (party's
``party.key.rotate``) still holds its documents. Every party reference in state is
``{"member_id", "key"}``, the key being the one used at the time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from traco.core.domain import Accepted, Event, Outcome, Rejected, StateView, TxContext
from traco.core.timefmt import iso_utc
from traco.services.doc import consent, payloads, queries, tables
from traco.services.doc.tables import Code, reject
from traco.services.doc.versions import parties_of_record, rules_v2


class PartyQueries(Protocol):
    """The reads of party's state the doc rules use (``traco.services.party.queries``)."""

    def member(self, view: StateView, key: str, time: int) -> Mapping[str, Any] | None: ...

    def is_admitted(self, view: StateView, key: str, time: int) -> bool: ...

    def roles_of(self, view: StateView, key: str, time: int) -> frozenset[str]: ...

    def may_submit(self, view: StateView, key: str, kind: str, time: int) -> bool: ...

    def namespace_owner(self, view: StateView, namespace: str) -> str | None: ...

    def namespace_owners(self, view: StateView, namespace: str) -> list[str]: ...

    def canonical_namespace(self, namespace: str) -> str: ...

    def namespace_spellings(self, namespace: str) -> list[str]: ...

    def kyc_problem(self, view: StateView, key: str, time: int) -> str | None: ...

    def member_by_id(self, view: StateView, member_id: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class Context:
    """Everything one rule may look at."""

    state: StateView
    members: StateView
    party: PartyQueries
    tx: TxContext
    sender: dict[str, str]
    """The sender as ``{"member_id", "key"}``."""

    @property
    def stamp(self) -> dict[str, Any]:
        return {"tx_id": self.tx.tx_id, "height": self.tx.height, "time": self.tx.time}

    def admitted(self, key: str) -> dict[str, str] | None:
        """``{"member_id", "key"}`` of an admitted member's key at block time, else ``None``."""
        if not self.party.is_admitted(self.members, key, self.tx.time):
            return None
        return member_ref(self.party, self.members, key, self.tx.time)

    def roles(self, key: str) -> frozenset[str]:
        return frozenset(self.party.roles_of(self.members, key, self.tx.time))

    def event(self, type_: str, record: Mapping[str, Any], data: Mapping[str, Any]) -> Event:
        """A domain event about ``record``'s lineage, stamped with the sender and the block."""
        body = {"doc_id": record["doc_id"], **data, "by": self.sender, **self.stamp}
        return Event(type=type_, aggregate_id=record["lineage"], data=body)


def member_ref(party: PartyQueries, members: StateView, key: str, time: int) -> dict[str, str] | None:
    """``{"member_id", "key"}`` for a key party knows at ``time``; the key stands in for a
    missing member id."""
    record = party.member(members, key, time)
    if record is None:
        return None
    member_id = record.get("member_id")
    return {"member_id": member_id if isinstance(member_id, str) and member_id else key, "key": key}


def same_member(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    return a is not None and b is not None and a["member_id"] == b["member_id"]


def _who(ref: Mapping[str, Any]) -> str:
    return f"member {ref['member_id']}"


def _active(ctx: Context, doc_id: str, surrendered_ok: bool = False) -> dict[str, Any] | Rejected:
    """The document if it exists and is neither surrendered nor superseded.

    ``surrendered_ok``: surrender ends title (no transfer, pledge, amendment after it), not the
    record of what happens to the goods: a B/L is surrendered to the carrier *for* the release
    and delivery of the cargo, and damage, payment or a dispute can follow. Milestones are
    behaviour records (on-time delivery, disputes feed credit scores), so they stay open.
    """
    record = queries.document(ctx.state, doc_id)
    if record is None:
        return reject(Code.UNKNOWN_DOCUMENT, f"there is no document {doc_id}")
    if record["status"] == "surrendered" and not surrendered_ok:
        height = record["surrender"]["height"]
        return reject(Code.SURRENDERED, f"document {doc_id} was surrendered at height {height}; that is final")
    if record["status"] == "superseded":
        head = queries.current(ctx.state, doc_id)
        newest = head["doc_id"] if head is not None else record["next"]
        return reject(Code.SUPERSEDED, f"document {doc_id} was amended; act on its newest version {newest}")
    return record


def _not_holder(record: Mapping[str, Any], action: str) -> Rejected:
    return reject(
        Code.NOT_HOLDER,
        f"only the holder of document {record['doc_id']} ({_who(record['holder'])}) may {action} it",
    )


def _pledged(record: Mapping[str, Any], pledge: Mapping[str, Any], action: str) -> Rejected:
    return reject(
        Code.PLEDGED,
        f"document {record['doc_id']} is pledged to {_who(pledge['financier'])} until {iso_utc(pledge['expires_at'])};"
        f" it cannot be {action} until the pledge is released or expires",
    )


def held(record: Mapping[str, Any], action: str) -> Rejected | None:
    """``HELD`` while a hold (``holds.py``) keeps the title for someone: it cannot move, be
    pledged, amended or held again until the hold is executed, released or expires. ``LIEN``
    while it backs a later service's record (``managed.lien``): the same, for as long as that
    record stands."""
    lien = record.get("lien")
    if isinstance(lien, dict):
        return reject(
            Code.LIEN,
            f"document {record['doc_id']} backs {lien['reference']} ({lien['manager']}); it cannot be {action}",
        )
    hold_id = record.get("hold")
    if not isinstance(hold_id, str):
        return None
    return reject(
        Code.HELD,
        f"document {record['doc_id']} is held (hold {hold_id}); it cannot be {action}"
        " until the hold is executed, released or expires",
    )


def _lapsed(record: Mapping[str, Any]) -> str | None:
    """The tx id of an expired, unreleased pledge that an action is about to clear."""
    pledge = record.get("pledge")
    return pledge["tx_id"] if isinstance(pledge, dict) else None


# --------------------------------------------------------------------------- kinds


def register(ctx: Context, p: payloads.Register) -> Outcome:
    allowed = tables.ISSUER_ROLES[p.type]
    roles = ctx.roles(ctx.tx.sender)
    if not roles & allowed:
        return reject(
            Code.WRONG_ROLE,
            f"a {p.type} is issued by a {' or '.join(sorted(allowed))};"
            f" the sender's roles are {', '.join(sorted(roles)) or 'none'}",
        )
    v2 = rules_v2(ctx.tx)
    namespace = p.business_key.namespace
    if v2:  # one canonical namespace: any spelling's owner owns them all
        owners = ctx.party.namespace_owners(ctx.members, namespace)
    else:
        owner = ctx.party.namespace_owner(ctx.members, namespace)
        owners = [] if owner is None else [owner]
    if owners and ctx.sender["member_id"] not in owners:
        return reject(
            Code.NOT_NAMESPACE_OWNER,
            f"business-key namespace {namespace} is assigned to member {' and '.join(owners)};"
            " only it registers documents under it",
        )
    negotiable = p.type in tables.NEGOTIABLE_TYPES if p.negotiable is None else p.negotiable
    if negotiable and p.type not in tables.NEGOTIABLE_TYPES:
        kinds = ", ".join(sorted(tables.NEGOTIABLE_TYPES))
        return reject(Code.INVALID_PAYLOAD, f"negotiable: a {p.type} cannot be negotiable; only {kinds} can")
    taken = queries.read(ctx.state, queries.hash_key(p.file_hash))
    if taken is not None:
        return reject(
            Code.DUPLICATE_DOCUMENT, f"a file with SHA-256 {p.file_hash} is already registered as {taken['doc_id']}"
        )
    key = p.business_key
    # Version 2 indexes the canonical namespace, and a claim under any old spelling still counts.
    spellings = ctx.party.namespace_spellings(key.namespace) if v2 else [key.namespace]
    conflicts = [i for ns in spellings for i in queries.conflicting_business_keys(p.type, ns, key.reference, key.scope)]
    for index in dict.fromkeys(conflicts):
        claim = queries.read(ctx.state, index)
        if claim is not None:
            return reject(
                Code.DUPLICATE_BUSINESS_KEY,
                f"business key {key.namespace}/{key.reference} ({key.scope} scope) is already claimed"
                f" by document {claim['doc_id']} (index {index})",
            )
    holder: dict[str, str] | None = ctx.sender
    if p.holder is not None and p.holder != ctx.tx.sender:
        holder = ctx.admitted(p.holder)
        if holder is None:
            return reject(Code.NOT_A_MEMBER, f"holder: {p.holder} is not an admitted member's key")
    named = _named_parties(ctx, p, holder or ctx.sender) if v2 else None
    if isinstance(named, Rejected):
        return named
    index_namespace = ctx.party.canonical_namespace(key.namespace) if v2 else key.namespace
    doc_id = ctx.tx.tx_id
    record = {
        "doc_id": doc_id,
        "lineage": doc_id,
        "version": 1,
        "previous": None,
        "next": None,
        "type": p.type,
        "negotiable": negotiable,
        "file_hash": p.file_hash,
        "business_key": {
            "namespace": key.namespace,
            "reference": key.reference,
            "scope": key.scope,
            "index": queries.business_key_index(p.type, index_namespace, key.reference, key.scope),
        },
        "metadata": p.metadata,
        "issuer": ctx.sender,
        "holder": holder,
        "status": "active",
        "pledge": None,
        "surrender": None,
        "last_milestone": None,
        "registered": ctx.stamp,
        "updated": ctx.stamp,
        "history_length": 0,
    }
    if named is not None:
        record["parties"] = named
    event = ctx.event("DocumentRegistered", record, {"document": record})
    return Accepted((event,), {"doc_id": doc_id})


def _named_parties(ctx: Context, p: payloads.Register, holder: dict[str, str]) -> list[dict[str, str]] | Rejected:
    """Version 2: the parties of record named at registration — the holder and the members
    listed in ``parties`` (each an admitted member), one per member, by member id."""
    found = {holder["member_id"]: holder}
    for key in getattr(p, "parties", []):
        ref = ctx.admitted(key)
        if ref is None:
            return reject(Code.NOT_A_MEMBER, f"parties: {key} is not an admitted member's key")
        found.setdefault(ref["member_id"], ref)
    return [found[member_id] for member_id in sorted(found)]


def event(ctx: Context, p: payloads.Event) -> Outcome:
    if p.occurred_at is not None and p.occurred_at > ctx.tx.time:
        return reject(
            Code.INVALID_PAYLOAD,
            f"occurred_at: {iso_utc(p.occurred_at)} is after the block time {iso_utc(ctx.tx.time)}",
        )
    record = _active(ctx, p.doc_id, surrendered_ok=True)
    if isinstance(record, Rejected):
        return record
    allowed = tables.MILESTONE_ROLES[p.milestone]
    roles = ctx.roles(ctx.tx.sender)
    if not roles & allowed:
        return reject(
            Code.WRONG_ROLE,
            f"milestone {p.milestone!r} is reported by a {' or '.join(sorted(allowed))};"
            f" the sender's roles are {', '.join(sorted(roles)) or 'none'}",
        )
    if rules_v2(ctx.tx) and ctx.sender["member_id"] not in parties_of_record(ctx.state, record, ctx.tx.time):
        return reject(
            Code.NOT_A_PARTY,
            f"{_who(ctx.sender)} is not a party of record of document {p.doc_id} (its issuer, holder,"
            " the parties named at registration, or the financier of a pledge in force)",
        )
    data = {
        "milestone": p.milestone,
        "occurred_at": ctx.tx.time if p.occurred_at is None else p.occurred_at,
        "location": p.location,
        "details": p.details,
    }
    return Accepted((ctx.event("MilestoneRecorded", record, data),), {"doc_id": p.doc_id})


def _free_title(ctx: Context, doc_id: str, action: str, done: str) -> dict[str, Any] | Rejected:
    """A live, negotiable document whose holder is the sender and which no pledge in force
    encumbers: what giving up title (transfer, surrender) needs, in the rules' check order."""
    record = _active(ctx, doc_id)
    if isinstance(record, Rejected):
        return record
    if not record["negotiable"]:
        return reject(Code.NOT_NEGOTIABLE, f"document {doc_id} ({record['type']}) is not negotiable")
    if not same_member(ctx.sender, record["holder"]):
        return _not_holder(record, action)
    refused = held(record, done)
    if refused is not None:
        return refused
    pledge = queries.pledge_in_force(record, ctx.tx.time)
    if pledge is not None:
        return _pledged(record, pledge, done)
    return record


def transfer(ctx: Context, p: payloads.Transfer) -> Outcome:
    record = _free_title(ctx, p.doc_id, "transfer", "transferred")
    if isinstance(record, Rejected):
        return record
    to = ctx.admitted(p.to)
    if to is None:
        return reject(Code.NOT_A_MEMBER, f"to: {p.to} is not an admitted member's key")
    if same_member(to, record["holder"]):
        return reject(Code.INVALID_PAYLOAD, f"to: {_who(to)} already holds document {p.doc_id}")
    data = {"from": record["holder"], "to": to, "lapsed_pledge": _lapsed(record)}
    return Accepted((ctx.event("TitleTransferred", record, data),), {"doc_id": p.doc_id, "holder": to})


def surrender(ctx: Context, p: payloads.Surrender) -> Outcome:
    record = _free_title(ctx, p.doc_id, "surrender", "surrendered")
    if isinstance(record, Rejected):
        return record
    data = {"holder": record["holder"], "reason": p.reason, "lapsed_pledge": _lapsed(record)}
    return Accepted((ctx.event("DocumentSurrendered", record, data),), {"doc_id": p.doc_id})


def amend(ctx: Context, p: payloads.Amend) -> Outcome:
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    if not same_member(ctx.sender, record["issuer"]):
        return reject(
            Code.NOT_ISSUER, f"only the issuer of document {p.doc_id} ({_who(record['issuer'])}) may amend it"
        )
    refused = held(record, "amended")
    if refused is not None:
        return refused
    active = queries.pledge_in_force(record, ctx.tx.time)
    if active is not None:
        return _pledged(record, active, "amended")
    if rules_v2(ctx.tx):
        refused = _holder_consent(ctx, record, p)
        if refused is not None:
            return refused
    taken = queries.read(ctx.state, queries.hash_key(p.file_hash))
    if taken is not None:
        return reject(
            Code.DUPLICATE_DOCUMENT, f"a file with SHA-256 {p.file_hash} is already registered as {taken['doc_id']}"
        )
    new_id = ctx.tx.tx_id
    new = {
        **record,
        "doc_id": new_id,
        "version": record["version"] + 1,
        "previous": record["doc_id"],
        "next": None,
        "file_hash": p.file_hash,
        "metadata": record["metadata"] if p.metadata is None else p.metadata,
        "pledge": None,
        "registered": ctx.stamp,
        "updated": ctx.stamp,
    }
    if "offers" in record:  # version 2: offers were for the old file, not the new one
        new["offers"] = {}
    data = {"new_doc_id": new_id, "document": new, "reason": p.reason, "lapsed_pledge": _lapsed(record)}
    return Accepted((ctx.event("DocumentAmended", record, data),), {"doc_id": new_id, "previous": p.doc_id})


def _holder_consent(ctx: Context, record: Mapping[str, Any], p: payloads.Amend) -> Rejected | None:
    """Version 2: a title document (negotiable) held by a member other than the issuer is
    amended only with the holder's signature over the amendment (``consent.py``)."""
    if not record["negotiable"] or same_member(record["holder"], record["issuer"]):
        return None
    given = getattr(p, "holder_consent", None)
    holder = record["holder"]
    if given is None:
        return reject(
            Code.HOLDER_CONSENT_REQUIRED,
            f"document {p.doc_id} is held by {_who(holder)}; amending it needs holder_consent, the holder's"
            " signature over the amendment",
        )
    signer = ctx.party.member(ctx.members, given.key, ctx.tx.time)
    if signer is None or signer.get("member_id") != holder["member_id"]:
        return reject(
            Code.HOLDER_CONSENT_REQUIRED, f"holder_consent.key: not a current key of the holder, {_who(holder)}"
        )
    message = consent.amend_message(ctx.tx.chain_id, p.doc_id, p.file_hash, p.metadata)
    if not consent.verifies(given.key, message, given.signature):
        return reject(
            Code.HOLDER_CONSENT_REQUIRED,
            "holder_consent.signature: does not verify over this amendment (chain, document, file hash, metadata)",
        )
    return None


def share_key(ctx: Context, p: payloads.ShareKey) -> Outcome:
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    if not (same_member(ctx.sender, record["holder"]) or same_member(ctx.sender, record["issuer"])):
        return reject(Code.NOT_HOLDER, f"only the holder or the issuer of document {p.doc_id} may share its key")
    for recipient in sorted(p.keys):
        if not ctx.party.is_admitted(ctx.members, recipient, ctx.tx.time):
            return reject(Code.NOT_A_MEMBER, f"keys.{recipient}: not an admitted member's key")
    data = {"keys": {recipient: p.keys[recipient] for recipient in sorted(p.keys)}}
    return Accepted((ctx.event("DocumentKeyShared", record, data),), {"doc_id": p.doc_id, "recipients": len(p.keys)})


Rule = Callable[[Context, Any], Outcome]

RULES: dict[str, Rule] = {
    tables.KIND_REGISTER: register,
    tables.KIND_EVENT: event,
    tables.KIND_TRANSFER: transfer,
    tables.KIND_SURRENDER: surrender,
    tables.KIND_AMEND: amend,
    tables.KIND_SHARE_KEY: share_key,
}
