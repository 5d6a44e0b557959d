"""Pure read functions over the party state: who is a member, what may a key submit, who validates.

Why: the doc service (and trade, bridge) decide "may this sender do this?" against the party
state as of the end of the previous block (architecture: Execution), and the runtime feeds the validator set to
consensus. They call these functions on a ``StateView`` instead of decoding party keys
themselves, so the party layout can change behind one module. Nothing here writes, reads a
clock or does I/O; ``time`` is always the caller's block time in ms.

Key validity: a key is valid at ``time`` while its record has ``valid_until`` null, or
``time < valid_until`` (a rotated-out key during its overlap). Membership is per member, not
per key: every valid key of an admitted member has the member's roles.

``council`` returns **member ids** (sorted), not keys: a council seat belongs to the member and
survives key rotation, and a member votes once whatever key it signs with.

Per block: read through an upstream view as a block's execution wraps it
(``core.domain.UpstreamView``), the questions every transaction asks — ``member``,
``member_by_id``, ``roles_of``, ``may_submit`` — are answered once per block
(``core.domain.remembered``), and the records come back read-only (``MappingProxyType``):
one is shared by every later caller in the block.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from traco.core.domain import StateView, UpstreamView, remembered
from traco.core.timefmt import iso_utc
from traco.services.party import state as keys
from traco.services.party.models import DEFAULT_RULES, kind_matches
from traco.services.party.state import canonical_namespace, namespace_spellings

__all__ = [
    "COUNCIL_ROLE",
    "acting_for",
    "activation_height",
    "agreement",
    "agreements_of",
    "canonical_namespace",
    "chain_params",
    "council",
    "delegation",
    "delegations",
    "history",
    "is_admitted",
    "kyc_problem",
    "kyc_valid",
    "may_submit",
    "member",
    "member_by_id",
    "member_keys",
    "members",
    "namespace_owner",
    "namespace_owners",
    "namespace_spellings",
    "node",
    "node_key_at",
    "nodes",
    "proposal",
    "proposals",
    "role_kinds",
    "roles_of",
    "rules",
    "rules_version",
    "scheduled_validators",
    "service_param",
    "service_params",
    "upgrade",
    "upgrade_section",
    "validator_set",
]

COUNCIL_ROLE = "council"


# --------------------------------------------------------------------------- members and keys


def _shared(view: StateView, record: dict[str, Any] | None) -> Mapping[str, Any] | None:
    """``record`` as it may be remembered for the block: read-only if ``view`` remembers."""
    return MappingProxyType(record) if record is not None and isinstance(view, UpstreamView) else record


def member(view: StateView, key: str, time: int) -> Mapping[str, Any] | None:
    """The member record of ``key`` if the key is valid at ``time`` (any status), else ``None``."""

    def find() -> Mapping[str, Any] | None:
        record = keys.load(view, keys.member(key))
        if record is None:
            return None
        valid_until = record["valid_until"]
        if valid_until is not None and time >= valid_until:
            return None
        return _shared(view, record)

    return remembered(view, ("party.member", key, time), find)


def is_admitted(view: StateView, key: str, time: int) -> bool:
    """True if ``key`` is a valid key of an admitted (not applied, not suspended) member."""
    record = member(view, key, time)
    return record is not None and record["status"] == "admitted"


def roles_of(view: StateView, key: str, time: int) -> frozenset[str]:
    """The roles of the member holding ``key``; empty unless admitted and the key valid."""

    def find() -> frozenset[str]:
        record = member(view, key, time)
        if record is None or record["status"] != "admitted":
            return frozenset()
        return frozenset(record["roles"])

    return remembered(view, ("party.roles_of", key, time), find)


def may_submit(view: StateView, key: str, kind: str, time: int) -> bool:
    """True if ``key`` is a valid key of an admitted member one of whose roles lists ``kind``
    (exactly, or through a ``svc.*`` pattern)."""

    def find() -> bool:
        return any(kind_matches(_kinds_of(view, role), kind) for role in sorted(roles_of(view, key, time)))

    return remembered(view, ("party.may_submit", key, kind, time), find)


def member_by_id(view: StateView, member_id: str) -> Mapping[str, Any] | None:
    """The record of a member by id, as seen through its primary key (any status)."""

    def find() -> Mapping[str, Any] | None:
        index = keys.load(view, keys.member_keys(member_id))
        if index is None:
            return None
        return _shared(view, keys.load(view, keys.member(index["primary_key"])))

    return remembered(view, ("party.member_by_id", member_id), find)


def namespace_owner(view: StateView, namespace: str) -> str | None:
    """The member id a business-key namespace is assigned to (``None``: open to any issuer)."""
    record = keys.load(view, keys.namespace(namespace))
    return None if record is None else str(record["member_id"])


def namespace_owners(view: StateView, namespace: str) -> list[str]:
    """Rules version 2: the member ids (sorted, distinct) that own ``namespace`` under any of its
    spellings (``namespace_spellings``): the canonical assignment, or on a chain upgraded from
    version 1 the old spellings' (a version-2 assignment replaces those). Empty: open to any
    issuer."""
    owners = {owner for spelling in namespace_spellings(namespace) if (owner := namespace_owner(view, spelling))}
    return sorted(owners)


def member_keys(view: StateView, member_id: str) -> list[str]:
    """Every key the member has ever held (current and rotated-out), sorted."""
    index = keys.load(view, keys.member_keys(member_id))
    return [] if index is None else list(index["keys"])


def members(view: StateView) -> list[dict[str, Any]]:
    """Every member record (one per member, via its primary key), by member id."""
    out = []
    for _, raw in view.scan(keys.MEMBER_KEYS):
        record = keys.load(view, keys.member(orjson.loads(raw)["primary_key"]))
        if record is not None:
            out.append(record)
    return out


def kyc_valid(view: StateView, key: str, time: int) -> bool:
    """True if the member holding ``key`` has a ``verified`` KYC attestation not yet expired."""
    record = member(view, key, time)
    if record is None or record["kyc"] is None:
        return False
    kyc = record["kyc"]
    return bool(kyc["status"] == "verified" and time < kyc["expires_at"])


def kyc_problem(view: StateView, key: str, time: int) -> str | None:
    """Why the member holding ``key`` may not do what needs KYC at ``time`` (``None``: it may):
    no attestation, one whose status is not ``verified``, or one expired by ``time``. Services
    that enforce KYC (doc under rules version 2, trade) refuse with ``KYC_REQUIRED`` and this text."""
    record = member(view, key, time)
    if record is None:
        return f"key {key[:16]}… belongs to no member at this time"
    kyc = record["kyc"]
    who = f"member {record['member_id']!r}"
    if kyc is None:
        return f"{who} has no KYC attestation"
    if kyc["status"] != "verified":
        return f"{who}'s KYC status is {kyc['status']}, not verified"
    if time >= kyc["expires_at"]:
        return f"{who}'s KYC attestation expired at {iso_utc(kyc['expires_at'])}"
    return None


def council(view: StateView, time: int) -> list[str]:
    """Member ids (sorted) of admitted members holding the ``council`` role whose primary key is
    valid at ``time``."""
    return [
        record["member_id"]
        for record in members(view)
        if record["status"] == "admitted"
        and COUNCIL_ROLE in record["roles"]
        and member(view, record["primary_key"], time) is not None
    ]


def history(view: StateView, member_id: str) -> list[dict[str, Any]]:
    """A member's history in chain order: ``{"type", "height", "index", "time", "data"}`` each."""
    return [orjson.loads(raw) for _, raw in view.scan(f"{keys.HISTORY}{member_id}/")]


# --------------------------------------------------------------------------- roles and rules


def _kinds_of(view: StateView, role: str) -> list[str]:
    record = keys.load(view, keys.role_kinds(role))
    return [] if record is None else list(record["kinds"])


def role_kinds(view: StateView) -> dict[str, list[str]]:
    """The whole role table: role -> kinds (and ``svc.*`` patterns) it may submit."""
    return {key.removeprefix(keys.ROLE_KINDS): orjson.loads(raw)["kinds"] for key, raw in view.scan(keys.ROLE_KINDS)}


def service_param(view: StateView, service: str, key: str) -> dict[str, Any] | None:
    """A parameter of ``service`` the council set (``set_service_param``), else ``None``."""
    return keys.load(view, keys.service_param(service, key))


def service_params(view: StateView, service: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """``(key, value)`` of every parameter of ``service`` whose key starts with ``prefix``."""
    start = keys.service_param(service, prefix)
    cut = len(keys.service_param(service, ""))
    return [(key[cut:], orjson.loads(raw)) for key, raw in view.scan(start)]


def upgrade(view: StateView, name: str) -> dict[str, Any] | None:
    """An upgrade the council scheduled (``upgrade`` action), by name."""
    return keys.load(view, keys.upgrade(name))


def activation_height(view: StateView, service: str) -> int | None:
    """The height from which ``service`` (not in the genesis) executes, if an upgrade set one."""
    record = keys.load(view, keys.activation(service))
    return None if record is None else int(record["height"])


def upgrade_section(view: StateView, service: str) -> dict[str, Any] | None:
    """The genesis section an upgrade gave a service it activates."""
    record = keys.load(view, keys.activation(service))
    return None if record is None else record.get("section")


def rules_version(view: StateView, service: str, height: int) -> int | None:
    """The version of ``service``'s rules in force at ``height``: the last an upgrade set at or
    before it; None when none did (the genesis version stands)."""
    version: int | None = None
    for key, raw in view.scan(f"rule_version/{service}/"):
        if int(key.rsplit("/", 1)[1]) > height:
            break
        version = int(orjson.loads(raw)["version"])
    return version


def chain_params(view: StateView) -> dict[str, int]:
    """Chain parameters the council set (``set_chain_params``); empty while genesis's stand."""
    return keys.load(view, keys.CHAIN_PARAMS) or {}


def rules(view: StateView) -> dict[str, int]:
    """The voting rules for new proposals (the defaults if genesis set none)."""
    record = keys.load(view, keys.RULES)
    return DEFAULT_RULES.model_dump() if record is None else record


# --------------------------------------------------------------------------- validators


def validator_set(view: StateView, height: int) -> list[tuple[str, int]]:
    """``(public key, power)`` of the validators in effect at ``height``, sorted by public key.

    A change voted in at height h is in effect from h + 2; earlier heights keep the set they had.
    """
    out = []
    for key, raw in view.scan(keys.VALIDATOR):
        public_key = key.removeprefix(keys.VALIDATOR)
        latest = orjson.loads(raw)
        power = latest["power"] if latest["from_height"] <= height else _power_at(view, public_key, height)
        if power > 0:
            out.append((public_key, power))
    return out


def _power_at(view: StateView, public_key: str, height: int) -> int:
    power = 0
    for key, raw in view.scan(f"{keys.VALIDATOR_CHANGE}{public_key}/"):
        if int(key.rsplit("/", 1)[1]) > height:
            break
        power = orjson.loads(raw)["power"]
    return int(power)


def scheduled_validators(view: StateView) -> dict[str, int]:
    """The validator set once every voted change is in effect: public key -> power."""
    out = {}
    for key, raw in view.scan(keys.VALIDATOR):
        power = orjson.loads(raw)["power"]
        if power > 0:
            out[key.removeprefix(keys.VALIDATOR)] = int(power)
    return out


# --------------------------------------------------------------------------- proposals, agreements


def _effective(record: dict[str, Any], time: int) -> dict[str, Any]:
    if record["status"] == "open" and time > record["deadline"]:
        return {**record, "status": "expired"}
    return record


def proposal(view: StateView, proposal_id: int, time: int) -> dict[str, Any] | None:
    """A proposal with its tally; an open proposal past its deadline shows status ``expired``."""
    record = keys.load(view, keys.proposal(proposal_id))
    return None if record is None else _effective(record, time)


def proposals(view: StateView, time: int, status: str | None = None) -> list[dict[str, Any]]:
    """Every proposal (optionally only those with effective ``status``), by id."""
    found = [_effective(orjson.loads(raw), time) for _, raw in view.scan(keys.PROPOSAL)]
    found.sort(key=lambda record: int(record["proposal_id"]))
    return [record for record in found if status is None or record["status"] == status]


def agreement(view: StateView, agreement_hash: str) -> dict[str, Any] | None:
    return keys.load(view, keys.agreement(agreement_hash))


def agreements_of(view: StateView, member_id: str) -> list[dict[str, Any]]:
    """Agreements to which ``member_id`` is a party, by hash."""
    found = (orjson.loads(raw) for _, raw in view.scan(keys.AGREEMENT))
    return [record for record in found if member_id in record["parties"]]


# --------------------------------------------------------------------------- delegations


def delegation(view: StateView, member_id: str, principal: str) -> dict[str, Any] | None:
    return keys.load(view, keys.delegation(member_id, principal))


def delegations(view: StateView, member_id: str) -> list[dict[str, Any]]:
    """A member's delegations (expired ones included), by principal id."""
    return [orjson.loads(raw) for _, raw in view.scan(f"{keys.DELEGATION}{member_id}/")]


def acting_for(view: StateView, member_key: str, principal: str, kind: str, time: int) -> bool:
    """True if the member holding ``member_key`` may submit ``kind`` on behalf of ``principal``
    at ``time``: it may submit ``kind`` itself, and an unexpired delegation from ``principal``
    lists ``kind`` (or a covering ``svc.*``)."""
    record = member(view, member_key, time)
    if record is None or not may_submit(view, member_key, kind, time):
        return False
    found = delegation(view, record["member_id"], principal)
    return found is not None and time < found["expires_at"] and kind_matches(found["kinds"], kind)


# --------------------------------------------------------------------------- nodes


def node(view: StateView, node_id: str) -> dict[str, Any] | None:
    """A registered node: its member and every key it had, each with the height it counts from."""
    return keys.load(view, keys.node(node_id))


def nodes(view: StateView) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for _, raw in view.scan(keys.NODE)]


def node_key_at(view: StateView, node_id: str, height: int) -> str | None:
    """The key node ``node_id`` signs with at ``height`` (None if it is not registered by then)."""
    record = node(view, node_id)
    if record is None:
        return None
    current = None
    for entry in record["keys"]:
        if entry["from_height"] <= height:
            current = entry["public_key"]
    return current
