"""Council governance: ``party.propose`` and ``party.vote`` (architecture: The code (party)).

The rule, precisely. When a proposal is made, the service snapshots

* the **council**: the member ids of the admitted members holding the ``council`` role, and
* the **rules** in force: ``quorum``, ``threshold_num / threshold_den``, ``timeout_ms``,

into the proposal; later changes to either affect only later proposals. With N the size of the
snapshot and ``yes``, ``no``, ``abstain`` the votes cast so far, after each vote:

* **passed** if ``yes + no + abstain >= min(quorum, N)`` and ``yes * den > num * N``;
* **rejected** if it can no longer pass: ``(yes + not_yet_voted) * den <= num * N``;
* otherwise still **open**. It is **expired** (a query-time status; nothing is written) once the
  block time is past ``deadline = created_at + timeout_ms``; a vote then gets
  ``PROPOSAL_EXPIRED``. A vote at exactly the deadline still counts.

Because ``num / den`` is at least 1/2, a proposal never passes without yes votes from a strict
majority of the snapshot council (the default rules are exactly that: quorum 1, 1/2, 7 days).
Only members in the snapshot vote, once each, by member id (rotating a key does not give a
second vote); a snapshot member who has since lost the council role or been suspended can no
longer vote, which can only make passing harder, never easier.

The deciding vote applies the action in the same transaction: ``VoteCast``, ``ProposalPassed``
and the action's events. If the action no longer fits the state by then (the member was
admitted meanwhile, the validator already removed...), the proposal is closed as ``void``
(``ProposalVoided`` with the reason) and nothing else changes; the vote itself stands.

Guards against governing oneself into a corner: an action may not leave the council empty,
strip the council role of ``party.propose``/``party.vote``, or empty the validator set.
Validator changes take effect at ``height + 2`` of the deciding vote (architecture: Consensus, Nodes).

Rules version 2 (``versions.py``): ``assign_namespace`` works on the canonical namespace
(``state.canonical_namespace``): ``NMFTA:MAEU`` and ``MAEU`` are one namespace with one owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import TypeAdapter

from traco.core.domain import Accepted, Event, Outcome, Rejected, StateView, TxContext, encode
from traco.core.timefmt import iso_utc
from traco.services.party import queries
from traco.services.party import state as keys
from traco.services.party.codes import Code, reject
from traco.services.party.events import At, event
from traco.services.party.models import (
    Action,
    AddValidator,
    AdmitMember,
    AssignNamespace,
    GrantRole,
    Propose,
    RemoveValidator,
    RevokeRole,
    SetChainParams,
    SetRoleKinds,
    SetRules,
    SetServiceParam,
    SuspendMember,
    Upgrade,
    Vote,
    kind_matches,
)

VALIDATOR_DELAY = 2
"""A validator-set change voted in at height h is in effect from h + VALIDATOR_DELAY."""

MAX_SERVICE_PARAM_BYTES = 8192
"""The largest parameter value the council may set for a service."""

UPGRADE_DELAY = 2
"""An upgrade voted in at height h takes effect at its stated height, and never before h + 2:
validators and services learn it from party's state of h, and the earliest height any of them
decides with that state is h + 2 (as with validator changes)."""

GOVERNANCE_KINDS = ("party.propose", "party.vote")

_ACTION = TypeAdapter[Action](Action)

Status = Literal["open", "passed", "rejected"]


def decide(council_size: int, rules: Mapping[str, int], yes: int, no: int, abstain: int) -> Status:
    """The state of a tally under ``rules`` (see the module docstring)."""
    num, den = rules["threshold_num"], rules["threshold_den"]
    cast = yes + no + abstain
    if cast >= min(rules["quorum"], council_size) and yes * den > num * council_size:
        return "passed"
    if (yes + council_size - cast) * den <= num * council_size:
        return "rejected"
    return "open"


# --------------------------------------------------------------------------- actions


def check_action(view: StateView, action: Action, time: int, version: int = 1) -> Rejected | None:
    """Why ``action`` cannot apply to the state ``view`` (a rejection), or ``None`` if it can;
    ``version``: the version of party's rules in force (``versions.py``)."""
    match action:
        case AdmitMember() | SuspendMember() | GrantRole() | RevokeRole():
            target = queries.member_by_id(view, action.member_id)
            if target is None:
                return reject(Code.UNKNOWN_MEMBER, f"no member with id {action.member_id!r}")
            return _check_member_action(view, action, target, time)
        case AddValidator(public_key=key, power=power):
            if queries.scheduled_validators(view).get(key) == power:
                return reject(Code.INVALID_ACTION, f"validator {key[:16]}… already has power {power}")
            return None
        case RemoveValidator(public_key=key):
            scheduled = queries.scheduled_validators(view)
            if key not in scheduled:
                return reject(Code.UNKNOWN_VALIDATOR, f"{key[:16]}… is not in the validator set")
            if len(scheduled) == 1:
                return reject(Code.INVALID_ACTION, "removing the last validator would stop the chain")
            return None
        case AssignNamespace(namespace=namespace, member_id=member_id):
            if version >= 2:
                owners = queries.namespace_owners(view, namespace)
            else:
                owner = queries.namespace_owner(view, namespace)
                owners = [] if owner is None else [owner]
            if member_id is None:
                return (
                    None
                    if owners
                    else reject(Code.INVALID_ACTION, f"namespace {namespace!r} is not assigned to anyone")
                )
            if queries.member_by_id(view, member_id) is None:
                return reject(Code.UNKNOWN_MEMBER, f"no member with id {member_id!r}")
            if owners == [member_id]:
                return reject(Code.INVALID_ACTION, f"namespace {namespace!r} is already {member_id!r}'s")
            return None
        case SetRoleKinds(role=role, kinds=kinds):
            if role == queries.COUNCIL_ROLE and not all(kind_matches(kinds, k) for k in GOVERNANCE_KINDS):
                return reject(Code.INVALID_ACTION, "the council role must keep party.propose and party.vote")
            return None
        case SetRules() | SetChainParams():
            return None
        case Upgrade():
            return _check_upgrade(view, action)
        case SetServiceParam(value=value):
            if version < 2:
                return reject(Code.INVALID_PAYLOAD, "action: set_service_param is not an action of rules version 1")
            if value is not None and len(encode(value)) > MAX_SERVICE_PARAM_BYTES:
                return reject(Code.INVALID_ACTION, f"value: at most {MAX_SERVICE_PARAM_BYTES} bytes of canonical JSON")
            return None
    raise AssertionError(f"unhandled action {action!r}")  # pragma: no cover - the union is closed


def _check_member_action(
    view: StateView, action: AdmitMember | SuspendMember | GrantRole | RevokeRole, target: Mapping[str, Any], time: int
) -> Rejected | None:
    who = action.member_id
    match action:
        case AdmitMember(roles=roles):
            if target["status"] == "admitted":
                return reject(Code.INVALID_ACTION, f"member {who!r} is already admitted")
            return _check_roles_exist(view, target["roles"] if roles is None else roles)
        case SuspendMember():
            if target["status"] != "admitted":
                return reject(Code.INVALID_ACTION, f"member {who!r} is {target['status']}, not admitted")
            return _check_council_survives(view, who, time)
        case GrantRole(role=role):
            if role in target["roles"]:
                return reject(Code.INVALID_ACTION, f"member {who!r} already holds role {role!r}")
            return _check_roles_exist(view, [role])
        case RevokeRole(role=role):
            if role not in target["roles"]:
                return reject(Code.INVALID_ACTION, f"member {who!r} does not hold role {role!r}")
            if role == queries.COUNCIL_ROLE:
                return _check_council_survives(view, who, time)
            return None
    raise AssertionError(f"unhandled action {action!r}")  # pragma: no cover - the union is closed


def _check_roles_exist(view: StateView, roles: list[str]) -> Rejected | None:
    for role in roles:
        if view.get(keys.role_kinds(role)) is None:
            return reject(Code.UNKNOWN_ROLE, f"role {role!r} is not in the role table")
    return None


def _check_upgrade(view: StateView, action: Upgrade) -> Rejected | None:
    """Every problem at once: a name used before, a service already activated, a rule version
    that does not move up."""
    problems = []
    if queries.upgrade(view, action.name) is not None:
        problems.append(f"an upgrade named {action.name!r} exists")
    for service in action.activate:
        if queries.activation_height(view, service) is not None:
            problems.append(f"{service} is already activated")
    for service, version in sorted(action.rules.items()):
        current = queries.rules_version(view, service, 2**53)
        if current is not None and version <= current:
            problems.append(f"{service} rules version {version} is not after the scheduled {current}")
    return reject(Code.INVALID_ACTION, "; ".join(problems)) if problems else None


def _check_council_survives(view: StateView, member_id: str, time: int) -> Rejected | None:
    if queries.council(view, time) == [member_id]:
        return reject(Code.INVALID_ACTION, f"{member_id!r} is the last council member; the council would be empty")
    return None


def action_events(view: StateView, action: Action, at: At, version: int = 1) -> list[Event]:
    """The events that carry out ``action`` (already checked with ``check_action``) under
    ``version`` of party's rules."""
    match action:
        case AdmitMember(member_id=member_id, roles=roles):
            target = queries.member_by_id(view, member_id)
            assert target is not None
            granted = target["roles"] if roles is None else roles
            return [event(at, "MemberAdmitted", f"member:{member_id}", member_id=member_id, roles=sorted(granted))]
        case SuspendMember(member_id=member_id):
            return [event(at, "MemberSuspended", f"member:{member_id}", member_id=member_id)]
        case GrantRole(member_id=member_id, role=role):
            return [event(at, "RoleGranted", f"member:{member_id}", member_id=member_id, role=role)]
        case RevokeRole(member_id=member_id, role=role):
            return [event(at, "RoleRevoked", f"member:{member_id}", member_id=member_id, role=role)]
        case AddValidator(public_key=key, power=power):
            start = at.height + VALIDATOR_DELAY
            return [event(at, "ValidatorAdded", f"validator:{key}", public_key=key, power=power, from_height=start)]
        case RemoveValidator(public_key=key):
            start = at.height + VALIDATOR_DELAY
            return [event(at, "ValidatorRemoved", f"validator:{key}", public_key=key, from_height=start)]
        case AssignNamespace(namespace=namespace, member_id=member_id) if version >= 2:
            return namespace_events(view, at, namespace, member_id)
        case AssignNamespace(namespace=namespace, member_id=member_id):
            name = namespace.upper()
            return [event(at, "NamespaceAssigned", f"namespace:{name}", namespace=name, member_id=member_id)]
        case SetRoleKinds(role=role, kinds=kinds):
            return [event(at, "RoleKindsSet", f"role:{role}", role=role, kinds=list(kinds))]
        case SetRules(rules=rules):
            return [event(at, "RulesSet", "rules", rules=rules.model_dump())]
        case SetChainParams(empty_block_interval_ms=interval):
            return [event(at, "ChainParamsSet", "chain_params", empty_block_interval_ms=interval)]
        case SetServiceParam(service=service, key=key, value=value):
            return [event(at, "ServiceParamSet", f"service:{service}", service=service, key=key, value=value)]
        case Upgrade():
            effective = max(action.height, at.height + UPGRADE_DELAY)
            body = action.model_dump(exclude={"type", "height"})
            return [event(at, "UpgradeScheduled", f"upgrade:{action.name}", **body, from_height=effective)]
    raise AssertionError(f"unhandled action {action!r}")  # pragma: no cover - the union is closed


def namespace_events(view: StateView, at: At, namespace: str, member_id: str | None) -> list[Event]:
    """Rules version 2: free every version-1 spelling of ``namespace`` still in the state, then
    assign (or free) its canonical form, so one namespace has one owner."""
    name = keys.canonical_namespace(namespace)
    freed = [
        event(at, "NamespaceAssigned", f"namespace:{spelling}", namespace=spelling, member_id=None)
        for spelling in keys.namespace_spellings(namespace)
        if spelling != name and queries.namespace_owner(view, spelling) is not None
    ]
    return [*freed, event(at, "NamespaceAssigned", f"namespace:{name}", namespace=name, member_id=member_id)]


# --------------------------------------------------------------------------- transactions


def propose(view: StateView, tx: TxContext, sender: Mapping[str, Any], payload: Propose) -> Outcome:
    """``party.propose``: check the action now, snapshot council and rules, open the proposal."""
    problem = check_action(view, payload.action, tx.time, tx.rules)
    if problem is not None:
        return problem
    council = queries.council(view, tx.time)
    if not council:
        return reject(Code.NO_COUNCIL, "there is no admitted council member to vote on a proposal")
    rules = queries.rules(view)
    seq = keys.load(view, keys.PROPOSAL_SEQ)
    proposal_id = 1 if seq is None else int(seq["last"]) + 1
    deadline = tx.time + int(rules["timeout_ms"])
    created = event(
        At.of(tx),
        "ProposalCreated",
        f"proposal:{proposal_id}",
        proposal_id=proposal_id,
        proposer=sender["member_id"],
        proposer_key=tx.sender,
        action=payload.action.model_dump(),
        description=payload.description,
        deadline=deadline,
        council=council,
        rules=dict(rules),
    )
    return Accepted((created,), {"proposal_id": proposal_id, "deadline": deadline, "council": council})


def vote(view: StateView, tx: TxContext, sender: Mapping[str, Any], payload: Vote) -> Outcome:
    """``party.vote``: count one council member's vote; the deciding vote closes the proposal."""
    pid = payload.proposal_id
    record = keys.load(view, keys.proposal(pid))
    if record is None:
        return reject(Code.UNKNOWN_PROPOSAL, f"no proposal {pid}")
    if record["status"] != "open":
        return reject(Code.PROPOSAL_CLOSED, f"proposal {pid} is already {record['status']}")
    if tx.time > record["deadline"]:
        return reject(
            Code.PROPOSAL_EXPIRED,
            f"proposal {pid} expired at {iso_utc(record['deadline'])} (block time {iso_utc(tx.time)})",
        )
    member_id = sender["member_id"]
    if member_id not in record["council"]:
        return reject(Code.NOT_PERMITTED, f"{member_id!r} was not on the council when proposal {pid} was made")
    if member_id in record["votes"]:
        return reject(Code.ALREADY_VOTED, f"{member_id!r} already voted {record['votes'][member_id]} on proposal {pid}")

    at = At.of(tx)
    aggregate = f"proposal:{pid}"
    tally = {"yes": record["yes"], "no": record["no"], "abstain": record["abstain"]}
    tally[payload.choice] += 1
    cast = event(at, "VoteCast", aggregate, proposal_id=pid, member_id=member_id, key=tx.sender, choice=payload.choice)
    events = [cast]
    status: str = decide(len(record["council"]), record["rules"], **tally)
    if status == "passed":
        action = _ACTION.validate_python(record["action"])
        problem = check_action(view, action, tx.time, tx.rules)
        if problem is None:
            events.append(event(at, "ProposalPassed", aggregate, proposal_id=pid))
            events.extend(action_events(view, action, at, tx.rules))
        else:
            status = "void"
            events.append(event(at, "ProposalVoided", aggregate, proposal_id=pid, reason=problem.message))
    elif status == "rejected":
        reason = "the remaining votes can no longer reach the threshold"
        events.append(event(at, "ProposalRejected", aggregate, proposal_id=pid, reason=reason))
    return Accepted(tuple(events), {"proposal_id": pid, "status": status, **tally})
