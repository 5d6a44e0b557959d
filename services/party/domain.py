"""The party service's rules (TracoParty, architecture: The code (party)): members, keys, KYC, agreements,
delegations and council governance, as pure functions for ``traco.core.domain``.

Why pure: every validator-adjacent replica, the auditor's replay and the tests run exactly this
code over the same transactions and must reach the same bytes. So nothing here reads a clock
(block time ``tx.time`` in ms only), draws randomness, uses floats or does I/O; a bad
transaction is a ``Rejected`` value with a receipt code (``codes.py``), never an exception.

How a transaction is decided (``PartyDomain.execute``): the sender must be a currently valid key
of an admitted member (else ``NOT_A_MEMBER``) whose roles list the kind (else
``NOT_PERMITTED``); the payload must match the kind's model in ``models.py`` (else
``INVALID_PAYLOAD "<field>: <reason>"``); then the kind's own rules run. Accepted transactions
return events (``events.py``), which ``mutate`` turns into writes.

Payloads (keys hex lowercase, times ms since the epoch, all integers):

* ``party.register`` ``{member_id, name?, organisation, jurisdiction, roles: [role],
  keys: [{public_key, proof}]}`` — an admitted member sponsors an applicant; each key's
  ``proof`` signs ``proofs.register_message(chain_id, organisation, public_key)``. The applicant
  is ``applied``; only a council vote (``admit_member``) admits it, with the roles applied for
  unless the proposal says otherwise.
* ``party.kyc`` ``{member_id, status: verified|pending|failed|revoked, expires_at}`` — by a
  ``kyc_provider``, about any other member (applicants included); ``expires_at`` after the
  block time, at most ~5 years ahead.
* ``party.agreement`` ``{agreement_hash, parties: [key], signatures: {key: sig}, title?}`` — two
  or more admitted members (one key each; the sender's member among them) each sign
  ``proofs.agreement_message(chain_id, agreement_hash, parties)``. A hash is recorded once.
* ``party.key.rotate`` ``{new_key, proof, old_key?, overlap_ms?}`` — replaces ``old_key``
  (default the sender; a key of the sender's member not already rotating out) by ``new_key``,
  whose ``proof`` signs ``proofs.rotate_message(chain_id, member_id, old_key, new_key)``. The old
  key stays valid for ``overlap_ms`` (default 7 days, 0..30 days; 0 revokes it at once, for a
  compromised key). The new key becomes primary if the old one was. Rules version 2
  (``versions.py``): the sender's own key must not be rotating out itself (``NOT_PERMITTED``).
* ``party.propose`` ``{action, description?}`` and ``party.vote`` ``{proposal_id, choice:
  yes|no|abstain}`` — see ``governance.py``. Actions (tagged by ``type``): ``admit_member
  {member_id, roles?}``, ``suspend_member {member_id}``, ``add_validator {public_key, power}``,
  ``remove_validator {public_key}``, ``assign_namespace {namespace, member_id | null}``,
  ``grant_role {member_id, role}``, ``revoke_role {member_id, role}``, ``set_role_kinds {role,
  kinds}``, ``set_rules {rules: {quorum, threshold_num, threshold_den, timeout_ms}}``,
  ``set_chain_params {empty_block_interval_ms}``.
* ``party.delegate`` ``{principal, principal_key?, kinds: [kind or svc.*], expires_at?}`` — the
  sender's member submits ``kinds`` for a named non-member until ``expires_at`` (at most ~1
  year ahead); each kind must be one the member may submit itself. ``principal_key`` may not be
  a member key. Repeating replaces; empty ``kinds`` revokes (then ``expires_at`` may be
  omitted). See ``queries.acting_for``.

State layout (values are canonical JSON objects):

* ``member/<key>`` → ``{member_id, name, organisation, jurisdiction, roles: [sorted], status:
  applied|admitted|suspended, kyc: {status, provider, expires_at} | null, primary_key,
  valid_until: ms | null}`` — one entry per key a member holds or held; all carry the same
  record except ``valid_until`` (set on a rotated-out key; the key is valid while
  ``time < valid_until``). Entries are never deleted, so a key can never be registered twice.
* ``member_keys/<member_id>`` → ``{primary_key, keys: [sorted, every key ever]}``.
* ``role_kinds/<role>`` → ``{kinds: [sorted kinds and svc.* patterns]}``.
* ``rules`` → ``{quorum, threshold_num, threshold_den, timeout_ms}`` (governance.py).
* ``proposal/<id>`` (id = 1, 2, ... in order) → ``{proposal_id, proposer (member id),
  proposer_key, action, description, created_at, created_height, deadline, council: [member
  ids], rules, votes: {member_id: choice}, yes, no, abstain, status: open|passed|rejected|void,
  closed_at, closed_height, reason}``; ``proposal_seq`` → ``{last: id}``.
* ``agreement/<sha256>`` → ``{agreement_hash, title, parties: [member ids], keys, recorded_by,
  height, time}``.
* ``validator/<key>`` → ``{power, from_height}``: the latest scheduled change (``power`` 0 =
  removed from ``from_height`` on); ``validator_change/<key>/<from_height:012d>`` → ``{power}``
  is the full schedule, so ``queries.validator_set(h)`` answers for any past height.
  Genesis validators have ``from_height`` 0.
* ``namespace/<NAMESPACE upper-case>`` → ``{member_id}``: who alone registers documents under
  that business-key namespace (the doc service checks it). Rules version 2 writes only the
  canonical form (``state.canonical_namespace``: ``NMFTA:MAEU`` is ``MAEU``) and drops the
  version-1 spellings of it; ``queries.namespace_owners`` reads every spelling.
* ``delegation/<member_id>/<sha256(principal)>`` → ``{member_id, principal, principal_key,
  kinds, expires_at, recorded_at, height}``.
* ``history/<member_id>/<height:012d>/<index:06d>/<event type>`` → ``{type, height, index,
  time, data}``: a member's own events and agreements, in chain order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from traco.core.domain import Accepted, Event, Outcome, Rejected, StateView, TxContext
from traco.core.timefmt import duration, iso_utc
from traco.schemas.genesis import Genesis
from traco.services.party import governance, queries
from traco.services.party import state as keys
from traco.services.party.codes import Code, reject
from traco.services.party.events import At, event, mutate
from traco.services.party.genesis import genesis_state_events
from traco.services.party.models import (
    MAX_DELEGATION_MS,
    MAX_KYC_VALIDITY_MS,
    Agreement,
    Delegate,
    Kyc,
    KycV2,
    Payload,
    Propose,
    Register,
    RegisterNode,
    RotateKey,
    RotateNodeKey,
    Vote,
    first_error,
)
from traco.services.party.proofs import (
    agreement_message,
    node_key_message,
    register_message,
    rotate_message,
    verify_hex,
)
from traco.services.party.versions import rules_v2

__all__ = ["KINDS", "PARTY", "PartyDomain"]

Sender = Mapping[str, Any]
"""The sender's member record (``member/<key>``), already known to be admitted and valid."""


def _short(key: str) -> str:
    return f"{key[:16]}…"


# --------------------------------------------------------------------------- member kinds


def register(view: StateView, tx: TxContext, sender: Sender, p: Register) -> Outcome:
    if view.get(keys.member_keys(p.member_id)) is not None:
        return reject(Code.ALREADY_REGISTERED, f"member id {p.member_id!r} is taken")
    for proof in p.keys:
        holder = keys.load(view, keys.member(proof.public_key))
        if holder is not None:
            return reject(
                Code.ALREADY_REGISTERED, f"key {_short(proof.public_key)} belongs to member {holder['member_id']!r}"
            )
    for role in p.roles:
        if view.get(keys.role_kinds(role)) is None:
            return reject(Code.UNKNOWN_ROLE, f"role {role!r} is not in the role table")
    for proof in p.keys:
        message = register_message(tx.chain_id, p.organisation, proof.public_key)
        if not verify_hex(proof.public_key, message, proof.proof):
            return reject(Code.BAD_KEY_PROOF, f"the proof for key {_short(proof.public_key)} does not verify")
    registered = event(
        At.of(tx),
        "MemberRegistered",
        f"member:{p.member_id}",
        member_id=p.member_id,
        name=p.name or p.member_id,
        organisation=p.organisation,
        jurisdiction=p.jurisdiction,
        roles=list(p.roles),
        keys=[proof.public_key for proof in p.keys],
        primary_key=p.keys[0].public_key,
        sponsor=sender["member_id"],
        sponsor_key=tx.sender,
    )
    return Accepted((registered,), {"member_id": p.member_id, "status": "applied"})


def kyc(view: StateView, tx: TxContext, sender: Sender, p: Kyc | KycV2) -> Outcome:
    target = queries.member_by_id(view, p.member_id)
    if target is None:
        return reject(Code.UNKNOWN_MEMBER, f"no member with id {p.member_id!r}")
    if target["member_id"] == sender["member_id"]:
        return reject(Code.NOT_PERMITTED, "a KYC provider cannot attest its own organisation")
    if not tx.time < p.expires_at <= tx.time + MAX_KYC_VALIDITY_MS:
        return reject(
            Code.INVALID_PAYLOAD,
            f"expires_at: must be after the block time {iso_utc(tx.time)}"
            f" and at most {duration(MAX_KYC_VALIDITY_MS)} after it",
        )
    recorded = event(
        At.of(tx),
        "KycRecorded",
        f"member:{p.member_id}",
        member_id=p.member_id,
        status=p.status,
        provider=tx.sender,
        expires_at=p.expires_at,
        **({"qualified_investor": p.qualified_investor} if isinstance(p, KycV2) else {}),
    )
    return Accepted((recorded,), {"member_id": p.member_id, "status": p.status})


def agreement(view: StateView, tx: TxContext, sender: Sender, p: Agreement) -> Outcome:
    if view.get(keys.agreement(p.agreement_hash)) is not None:
        return reject(Code.DUPLICATE_AGREEMENT, f"agreement {_short(p.agreement_hash)} is already recorded")
    strangers = sorted(set(p.signatures) - set(p.parties))
    if strangers:
        return reject(Code.INVALID_PAYLOAD, f"signatures.{strangers[0]}: not one of the listed parties")
    parties: dict[str, str] = {}
    for key in p.parties:
        record = queries.member(view, key, tx.time)
        if record is None:
            return reject(Code.UNKNOWN_MEMBER, f"party key {_short(key)} is not a valid member key")
        if record["status"] != "admitted":
            return reject(Code.NOT_A_MEMBER, f"party {record['member_id']!r} is {record['status']}, not admitted")
        if record["member_id"] in parties.values():
            return reject(Code.INVALID_PAYLOAD, f"parties: member {record['member_id']!r} is listed with two keys")
        parties[key] = record["member_id"]
    if sender["member_id"] not in parties.values():
        return reject(Code.NOT_PERMITTED, f"the sender's member {sender['member_id']!r} is not a party")
    message = agreement_message(tx.chain_id, p.agreement_hash, p.parties)
    for key in p.parties:
        signature = p.signatures.get(key)
        if signature is None:
            return reject(Code.MISSING_SIGNATURE, f"party {parties[key]!r} (key {_short(key)}) has not signed")
        if not verify_hex(key, message, signature):
            return reject(Code.BAD_SIGNATURE, f"the signature of party {parties[key]!r} does not verify")
    recorded = event(
        At.of(tx),
        "AgreementRecorded",
        f"agreement:{p.agreement_hash}",
        agreement_hash=p.agreement_hash,
        title=p.title,
        parties=sorted(parties.values()),
        keys=list(p.parties),
        recorded_by=sender["member_id"],
    )
    return Accepted((recorded,), {"agreement_hash": p.agreement_hash})


def rotate_key(view: StateView, tx: TxContext, sender: Sender, p: RotateKey) -> Outcome:
    member_id = sender["member_id"]
    if rules_v2(tx) and sender["valid_until"] is not None:
        return reject(
            Code.NOT_PERMITTED,
            f"sender key {_short(tx.sender)} is itself being rotated out (valid until"
            f" {iso_utc(sender['valid_until'])}); only a current key of {member_id!r} may rotate keys",
        )
    old_key = p.old_key or tx.sender
    old = queries.member(view, old_key, tx.time)
    if old is None or old["member_id"] != member_id:
        return reject(Code.NOT_PERMITTED, f"key {_short(old_key)} is not a valid key of member {member_id!r}")
    if old["valid_until"] is not None:
        return reject(Code.NOT_PERMITTED, f"key {_short(old_key)} is already being rotated out")
    holder = keys.load(view, keys.member(p.new_key))
    if holder is not None:
        return reject(Code.ALREADY_REGISTERED, f"key {_short(p.new_key)} belongs to member {holder['member_id']!r}")
    if not verify_hex(p.new_key, rotate_message(tx.chain_id, member_id, old_key, p.new_key), p.proof):
        return reject(Code.BAD_KEY_PROOF, f"the proof for new key {_short(p.new_key)} does not verify")
    valid_until = tx.time + p.overlap_ms
    primary = p.new_key if old_key == old["primary_key"] else old["primary_key"]
    rotated = event(
        At.of(tx),
        "KeyRotated",
        f"member:{member_id}",
        member_id=member_id,
        old_key=old_key,
        new_key=p.new_key,
        valid_until=valid_until,
        primary_key=primary,
    )
    return Accepted((rotated,), {"member_id": member_id, "valid_until": valid_until, "primary_key": primary})


def register_node(view: StateView, tx: TxContext, sender: Sender, p: RegisterNode) -> Outcome:
    """A node of the sender's member, under a key it proves it holds; ids and keys are unique."""
    member_id = sender["member_id"]
    if queries.node(view, p.node_id) is not None:
        return reject(Code.ALREADY_REGISTERED, f"node {p.node_id!r} is already registered")
    problem = _node_key_problem(view, tx, member_id, p.node_id, p.public_key, p.proof)
    if problem is not None:
        return problem
    registered = event(
        At.of(tx), "NodeRegistered", f"node:{p.node_id}",
        node_id=p.node_id, member_id=member_id, public_key=p.public_key, from_height=tx.height,
    )  # fmt: skip
    return Accepted((registered,), {"node_id": p.node_id, "member_id": member_id})


def rotate_node_key(view: StateView, tx: TxContext, sender: Sender, p: RotateNodeKey) -> Outcome:
    """The node's own member replaces its key, counting from two heights on."""
    member_id = sender["member_id"]
    record = queries.node(view, p.node_id)
    if record is None:
        return reject(Code.UNKNOWN_NODE, f"no node {p.node_id!r} is registered")
    if record["member_id"] != member_id:
        return reject(Code.NOT_PERMITTED, f"node {p.node_id!r} belongs to member {record['member_id']!r}")
    problem = _node_key_problem(view, tx, member_id, p.node_id, p.new_key, p.proof)
    if problem is not None:
        return problem
    from_height = tx.height + NODE_KEY_DELAY
    rotated = event(
        At.of(tx), "NodeKeyRotated", f"node:{p.node_id}",
        node_id=p.node_id, member_id=member_id, old_key=queries.node_key_at(view, p.node_id, tx.height),
        new_key=p.new_key, from_height=from_height,
    )  # fmt: skip
    return Accepted((rotated,), {"node_id": p.node_id, "from_height": from_height})


NODE_KEY_DELAY = 2
"""A rotated node key counts from this many heights after the rotation (as validator changes)."""


def _node_key_problem(
    view: StateView, tx: TxContext, member_id: str, node_id: str, public_key: str, proof: str
) -> Rejected | None:
    if view.get(keys.node_key(public_key)) is not None:
        return reject(Code.ALREADY_REGISTERED, f"key {_short(public_key)} is already a node key")
    if not verify_hex(public_key, node_key_message(tx.chain_id, member_id, node_id, public_key), proof):
        return reject(Code.BAD_KEY_PROOF, f"the proof for node key {_short(public_key)} does not verify")
    return None


def delegate(view: StateView, tx: TxContext, sender: Sender, p: Delegate) -> Outcome:
    member_id = sender["member_id"]
    aggregate = f"delegation:{member_id}:{keys.principal_id(p.principal)}"
    if not p.kinds:
        if queries.delegation(view, member_id, p.principal) is None:
            return reject(Code.UNKNOWN_DELEGATION, f"{member_id!r} has no delegation from {p.principal!r} to revoke")
        revoked = event(At.of(tx), "DelegationRevoked", aggregate, member_id=member_id, principal=p.principal)
        return Accepted((revoked,), {"revoked": True})
    if p.principal_key is not None and view.get(keys.member(p.principal_key)) is not None:
        return reject(Code.INVALID_PAYLOAD, "principal_key: belongs to a member, which submits for itself")
    if p.expires_at is None or not tx.time < p.expires_at <= tx.time + MAX_DELEGATION_MS:
        return reject(
            Code.INVALID_PAYLOAD,
            f"expires_at: must be after the block time {iso_utc(tx.time)}"
            f" and at most {duration(MAX_DELEGATION_MS)} after it",
        )
    for kind in p.kinds:
        if not queries.may_submit(view, tx.sender, kind, tx.time):
            return reject(Code.NOT_PERMITTED, f"{member_id!r} may not submit {kind!r} itself, so cannot delegate it")
    recorded = event(
        At.of(tx),
        "DelegationRecorded",
        aggregate,
        member_id=member_id,
        principal=p.principal,
        principal_key=p.principal_key,
        kinds=list(p.kinds),
        expires_at=p.expires_at,
    )
    return Accepted((recorded,), {"member_id": member_id, "expires_at": p.expires_at})


# --------------------------------------------------------------------------- the domain


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Route(Generic[P]):
    """A transaction kind's payload model (``v2``: the one where rules version 2 is in force and
    the schema grew) and the rule that decides it."""

    model: type[P]
    handler: Callable[[StateView, TxContext, Sender, P], Outcome]
    v2: type[P] | None = None


def _run(route: Route[Any], view: StateView, tx: TxContext, sender: Sender) -> Outcome:
    """Validate the payload against the route's model, then run its rule with the parsed value.

    A plain function rather than a closure built per kind at import: a mutation tool sees (and
    mutates) only code that runs when called."""
    if not isinstance(tx.payload, Mapping):
        return reject(Code.INVALID_PAYLOAD, "payload: must be a JSON object")
    chosen = route.v2 if route.v2 is not None and rules_v2(tx) else route.model
    try:
        payload = chosen.model_validate(dict(tx.payload))
    except ValidationError as exc:
        return reject(Code.INVALID_PAYLOAD, first_error(exc))
    return route.handler(view, tx, sender, payload)


_ROUTES: Mapping[str, Route[Any]] = {
    "party.register": Route(Register, register),
    "party.kyc": Route(Kyc, kyc, KycV2),
    "party.agreement": Route(Agreement, agreement),
    "party.key.rotate": Route(RotateKey, rotate_key),
    "party.propose": Route(Propose, governance.propose),
    "party.vote": Route(Vote, governance.vote),
    "party.delegate": Route(Delegate, delegate),
    "party.node.register": Route(RegisterNode, register_node),
    "party.node.rotate": Route(RotateNodeKey, rotate_node_key),
}

KINDS = frozenset(_ROUTES)


class PartyDomain:
    """The party service's ``traco.core.domain.Domain``."""

    service = "party"
    kinds = KINDS

    def genesis(self, section: Mapping[str, Any] | None, chain: Genesis) -> list[Event]:
        """Party's state at height 0: its genesis section (members, roles, rules), the chain's
        validator set, and the chain's registered nodes (``genesis.genesis_state_events``)."""
        if section is None:
            return []
        return genesis_state_events(section, chain)

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        """Decide one ``party.*`` transaction against the party state (party has no upstream)."""
        route = _ROUTES.get(tx.kind)
        if route is None:
            return reject(Code.UNKNOWN_KIND, f"{tx.kind!r} is not a party transaction kind")
        sender = queries.member(state, tx.sender, tx.time)
        if sender is None:
            known = state.get(keys.member(tx.sender)) is not None
            why = "was rotated out" if known else "belongs to no member"
            return reject(Code.NOT_A_MEMBER, f"sender key {_short(tx.sender)} {why}")
        if sender["status"] != "admitted":
            return reject(Code.NOT_A_MEMBER, f"sender {sender['member_id']!r} is {sender['status']}, not admitted")
        if not queries.may_submit(state, tx.sender, tx.kind, tx.time):
            roles = ", ".join(sender["roles"]) or "none"
            who = sender["member_id"]
            return reject(Code.NOT_PERMITTED, f"member {who!r} (roles: {roles}) may not submit {tx.kind}")
        return _run(route, state, tx, sender)

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        """The writes of one party event (``events.mutate``)."""
        return mutate(state, event)


PARTY = PartyDomain()
