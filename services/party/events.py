"""Party events and how each one changes the state (the ``mutate`` half of the domain).

Why events carry whole facts: an auditor replays ``mutate`` over the published events and must
reach the same bytes as the service (architecture: Execution). So an event says everything its writes need
(who, what, and the block position ``height``/``index``/``time``); ``mutate`` only combines it
with the current state, never with a clock or a transaction. Genesis uses the same events, so
there is one way for state to come about.

Event types (all version 1; ``data`` always also holds ``height``, ``index``, ``time``):

==================  ======================================================================
MemberRegistered    member_id, name, organisation, jurisdiction, roles, keys, primary_key,
                    sponsor (member id or null), sponsor_key (key or null)
MemberAdmitted      member_id, roles
MemberSuspended     member_id
KycRecorded         member_id, status, provider (key), expires_at
KeyRotated          member_id, old_key, new_key, valid_until, primary_key
RoleGranted         member_id, role
RoleRevoked         member_id, role
RoleKindsSet        role, kinds
RulesSet            rules {quorum, threshold_num, threshold_den, timeout_ms}
NamespaceAssigned   namespace, member_id (null: freed)
ChainParamsSet      empty_block_interval_ms
UpgradeScheduled    name, from_height (effective), activate, rules {service: version}, sections
ServiceParamSet     service, key, value (null deletes)
ValidatorAdded      public_key, power, from_height
ValidatorRemoved    public_key, from_height
AgreementRecorded   agreement_hash, title, parties (member ids), keys, recorded_by
ProposalCreated     proposal_id, proposer, proposer_key, action, description, deadline,
                    council (member ids), rules
VoteCast            proposal_id, member_id, key, choice
ProposalPassed      proposal_id
ProposalRejected    proposal_id, reason
ProposalVoided      proposal_id, reason
DelegationRecorded  member_id, principal, principal_key, kinds, expires_at
DelegationRevoked   member_id, principal
==================  ======================================================================

Member events, agreements and delegations also append to the history of each member involved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from traco.core.domain import Event, StateView, TxContext, encode
from traco.services.party import state as keys

Writes = dict[str, bytes | None]
Data = dict[str, Any]

_POSITION = ("height", "index", "time")


@dataclass(frozen=True)
class At:
    """Where in the chain an event happened: the block, the transaction's index, the block time."""

    height: int
    index: int
    time: int

    @classmethod
    def of(cls, tx: TxContext) -> At:
        return cls(tx.height, tx.index, tx.time)


def event(at: At, event_type: str, aggregate_id: str, **data: Any) -> Event:
    """A version-1 party event stamped with its chain position."""
    return Event(
        type=event_type,
        aggregate_id=aggregate_id,
        data={**data, "height": at.height, "index": at.index, "time": at.time},
    )


# --------------------------------------------------------------------------- members


def _member_registered(view: StateView, data: Data) -> Writes:
    base = {
        "member_id": data["member_id"],
        "name": data["name"],
        "organisation": data["organisation"],
        "jurisdiction": data["jurisdiction"],
        "roles": sorted(data["roles"]),
        "status": "applied",
        "kyc": None,
        "primary_key": data["primary_key"],
        "valid_until": None,
    }
    writes: Writes = {keys.member(key): encode(base) for key in data["keys"]}
    writes[keys.member_keys(data["member_id"])] = encode(
        {"primary_key": data["primary_key"], "keys": sorted(data["keys"])}
    )
    return writes


def _rewrite_member(view: StateView, member_id: str, change: Callable[[Data], Data]) -> Writes:
    """Apply ``change`` to every key entry of a member (they all carry the same record)."""
    index = keys.load(view, keys.member_keys(member_id))
    if index is None:
        raise ValueError(f"party event names unknown member {member_id!r}")
    writes: Writes = {}
    for key in index["keys"]:
        record = keys.load(view, keys.member(key))
        if record is None:
            raise ValueError(f"member {member_id!r} lists key {key} without a record")
        writes[keys.member(key)] = encode(change(record))
    return writes


def _member_admitted(view: StateView, data: Data) -> Writes:
    roles = sorted(data["roles"])
    return _rewrite_member(view, data["member_id"], lambda r: {**r, "status": "admitted", "roles": roles})


def _member_suspended(view: StateView, data: Data) -> Writes:
    return _rewrite_member(view, data["member_id"], lambda r: {**r, "status": "suspended"})


def _kyc_recorded(view: StateView, data: Data) -> Writes:
    kyc = {"status": data["status"], "provider": data["provider"], "expires_at": data["expires_at"]}
    if "qualified_investor" in data:  # rules version 2 and genesis records say it
        kyc["qualified_investor"] = data["qualified_investor"]
    return _rewrite_member(view, data["member_id"], lambda r: {**r, "kyc": kyc})


def _key_rotated(view: StateView, data: Data) -> Writes:
    member_id, old_key, new_key = data["member_id"], data["old_key"], data["new_key"]
    primary = data["primary_key"]

    def change(record: Data) -> Data:
        return {**record, "primary_key": primary}

    writes = _rewrite_member(view, member_id, change)
    old = keys.load(view, keys.member(old_key))
    if old is None:
        raise ValueError(f"KeyRotated names unknown key {old_key}")
    writes[keys.member(old_key)] = encode({**change(old), "valid_until": data["valid_until"]})
    writes[keys.member(new_key)] = encode({**change(old), "valid_until": None})
    index = keys.load(view, keys.member_keys(member_id)) or {"keys": []}
    writes[keys.member_keys(member_id)] = encode({"primary_key": primary, "keys": sorted({*index["keys"], new_key})})
    return writes


def _role_granted(view: StateView, data: Data) -> Writes:
    role = data["role"]
    return _rewrite_member(view, data["member_id"], lambda r: {**r, "roles": sorted({*r["roles"], role})})


def _role_revoked(view: StateView, data: Data) -> Writes:
    role = data["role"]
    return _rewrite_member(view, data["member_id"], lambda r: {**r, "roles": sorted(set(r["roles"]) - {role})})


# --------------------------------------------------------------------------- roles, rules, validators


def _role_kinds_set(view: StateView, data: Data) -> Writes:
    return {keys.role_kinds(data["role"]): encode({"kinds": sorted(data["kinds"])})}


def _rules_set(view: StateView, data: Data) -> Writes:
    return {keys.RULES: encode(dict(data["rules"]))}


def _service_param_set(view: StateView, data: Data) -> Writes:
    value = data["value"]
    return {keys.service_param(data["service"], data["key"]): None if value is None else encode(value)}


def _upgrade_scheduled(view: StateView, data: Data) -> Writes:
    name, height = data["name"], data["from_height"]
    record = {"height": height, **{k: data[k] for k in ("name", "activate", "rules", "sections")}}
    writes: Writes = {keys.upgrade(name): encode(record)}
    for service in data["activate"]:
        section = data["sections"].get(service)
        writes[keys.activation(service)] = encode({"height": height, "upgrade": name, "section": section})
    for service, version in data["rules"].items():
        writes[keys.rule_version(service, height)] = encode({"version": version, "upgrade": name})
    return writes


def _chain_params_set(view: StateView, data: Data) -> Writes:
    current = keys.load(view, keys.CHAIN_PARAMS) or {}
    return {keys.CHAIN_PARAMS: encode({**current, "empty_block_interval_ms": data["empty_block_interval_ms"]})}


def _schedule_validator(public_key: str, power: int, from_height: int) -> Writes:
    return {
        keys.validator(public_key): encode({"power": power, "from_height": from_height}),
        keys.validator_change(public_key, from_height): encode({"power": power}),
    }


def _validator_added(view: StateView, data: Data) -> Writes:
    return _schedule_validator(data["public_key"], data["power"], data["from_height"])


def _validator_removed(view: StateView, data: Data) -> Writes:
    return _schedule_validator(data["public_key"], 0, data["from_height"])


def _namespace_assigned(view: StateView, data: Data) -> Writes:
    owner = data["member_id"]
    return {keys.namespace(data["namespace"]): None if owner is None else encode({"member_id": owner})}


# --------------------------------------------------------------------------- nodes


def _node_registered(view: StateView, data: Data) -> Writes:
    """``node/<id>`` keeps every key the node had, each with the height it counts from."""
    record = {
        "node_id": data["node_id"],
        "member_id": data["member_id"],
        "keys": [{"public_key": data["public_key"], "from_height": data["from_height"]}],
    }
    return {keys.node(data["node_id"]): encode(record), keys.node_key(data["public_key"]): encode(data["node_id"])}


def _node_key_rotated(view: StateView, data: Data) -> Writes:
    record = keys.load(view, keys.node(data["node_id"]))
    if record is None:
        raise ValueError(f"party event names unknown node {data['node_id']!r}")
    entry = {"public_key": data["new_key"], "from_height": data["from_height"]}
    updated = {**record, "keys": [*record["keys"], entry]}
    return {keys.node(data["node_id"]): encode(updated), keys.node_key(data["new_key"]): encode(data["node_id"])}


# --------------------------------------------------------------------------- agreements, delegations


def _agreement_recorded(view: StateView, data: Data) -> Writes:
    record = {
        "agreement_hash": data["agreement_hash"],
        "title": data["title"],
        "parties": sorted(data["parties"]),
        "keys": sorted(data["keys"]),
        "recorded_by": data["recorded_by"],
        "height": data["height"],
        "time": data["time"],
    }
    return {keys.agreement(data["agreement_hash"]): encode(record)}


def _delegation_recorded(view: StateView, data: Data) -> Writes:
    record = {
        "member_id": data["member_id"],
        "principal": data["principal"],
        "principal_key": data["principal_key"],
        "kinds": sorted(data["kinds"]),
        "expires_at": data["expires_at"],
        "recorded_at": data["time"],
        "height": data["height"],
    }
    return {keys.delegation(data["member_id"], data["principal"]): encode(record)}


def _delegation_revoked(view: StateView, data: Data) -> Writes:
    return {keys.delegation(data["member_id"], data["principal"]): None}


# --------------------------------------------------------------------------- proposals


def _proposal_created(view: StateView, data: Data) -> Writes:
    proposal_id = data["proposal_id"]
    record = {
        "proposal_id": proposal_id,
        "proposer": data["proposer"],
        "proposer_key": data["proposer_key"],
        "action": data["action"],
        "description": data["description"],
        "created_at": data["time"],
        "created_height": data["height"],
        "deadline": data["deadline"],
        "council": sorted(data["council"]),
        "rules": data["rules"],
        "votes": {},
        "yes": 0,
        "no": 0,
        "abstain": 0,
        "status": "open",
        "closed_at": None,
        "closed_height": None,
        "reason": None,
    }
    return {keys.proposal(proposal_id): encode(record), keys.PROPOSAL_SEQ: encode({"last": proposal_id})}


def _load_proposal(view: StateView, proposal_id: int) -> Data:
    record = keys.load(view, keys.proposal(proposal_id))
    if record is None:
        raise ValueError(f"party event names unknown proposal {proposal_id}")
    return record


def _vote_cast(view: StateView, data: Data) -> Writes:
    record = _load_proposal(view, data["proposal_id"])
    choice = data["choice"]
    record = {**record, "votes": {**record["votes"], data["member_id"]: choice}, choice: record[choice] + 1}
    return {keys.proposal(data["proposal_id"]): encode(record)}


def _closed(view: StateView, data: Data, status: str) -> Writes:
    record = _load_proposal(view, data["proposal_id"])
    record = {
        **record,
        "status": status,
        "closed_at": data["time"],
        "closed_height": data["height"],
        "reason": data.get("reason"),
    }
    return {keys.proposal(data["proposal_id"]): encode(record)}


# One plain function per closing event, not closures built at import: a mutation tool sees
# (and mutates) only code that runs when called.
def _passed(view: StateView, data: Data) -> Writes:
    return _closed(view, data, "passed")


def _rejected(view: StateView, data: Data) -> Writes:
    return _closed(view, data, "rejected")


def _voided(view: StateView, data: Data) -> Writes:
    return _closed(view, data, "void")


# --------------------------------------------------------------------------- dispatch

_MUTATORS: Mapping[str, Callable[[StateView, Data], Writes]] = {
    "MemberRegistered": _member_registered,
    "MemberAdmitted": _member_admitted,
    "MemberSuspended": _member_suspended,
    "KycRecorded": _kyc_recorded,
    "KeyRotated": _key_rotated,
    "RoleGranted": _role_granted,
    "RoleRevoked": _role_revoked,
    "RoleKindsSet": _role_kinds_set,
    "RulesSet": _rules_set,
    "ChainParamsSet": _chain_params_set,
    "UpgradeScheduled": _upgrade_scheduled,
    "ServiceParamSet": _service_param_set,
    "ValidatorAdded": _validator_added,
    "ValidatorRemoved": _validator_removed,
    "NamespaceAssigned": _namespace_assigned,
    "NodeRegistered": _node_registered,
    "NodeKeyRotated": _node_key_rotated,
    "AgreementRecorded": _agreement_recorded,
    "DelegationRecorded": _delegation_recorded,
    "DelegationRevoked": _delegation_revoked,
    "ProposalCreated": _proposal_created,
    "VoteCast": _vote_cast,
    "ProposalPassed": _passed,
    "ProposalRejected": _rejected,
    "ProposalVoided": _voided,
}

EVENT_TYPES = frozenset(_MUTATORS)

_MEMBER_HISTORY = frozenset(
    {
        "MemberRegistered",
        "MemberAdmitted",
        "MemberSuspended",
        "KycRecorded",
        "KeyRotated",
        "RoleGranted",
        "RoleRevoked",
        "DelegationRecorded",
        "DelegationRevoked",
    }
)


def _history(event_type: str, data: Data) -> Writes:
    if event_type in _MEMBER_HISTORY:
        involved = [data["member_id"]]
    elif event_type == "AgreementRecorded":
        involved = list(data["parties"])
    else:
        return {}
    entry = encode(
        {
            "type": event_type,
            "height": data["height"],
            "index": data["index"],
            "time": data["time"],
            "data": {k: v for k, v in data.items() if k not in _POSITION},
        }
    )
    return {keys.history(m, data["height"], data["index"], event_type): entry for m in involved}


def mutate(view: StateView, ev: Event) -> Writes:
    """The writes one party event makes. An unknown type or version is a bug, so it raises."""
    mutator = _MUTATORS.get(ev.type)
    if mutator is None or ev.version != 1:
        raise ValueError(f"unknown party event {ev.type!r} version {ev.version}")
    data = dict(ev.data)
    return {**mutator(view, data), **_history(ev.type, data)}
