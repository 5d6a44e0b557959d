"""Payload schemas of the party transaction kinds, and the value types they share.

Why a model per kind: a payload is untrusted JSON from a client. Validating it against a frozen,
strict pydantic model (``extra="forbid"``; no coercion, so ``true`` is not ``1`` and ``"5"`` is not
``5``) before any rule runs means the rules only ever see well-formed values, and a bad payload
becomes ``INVALID_PAYLOAD "<field>: <reason>"`` instead of an exception in the consumer.

Lists that are sets by meaning (roles, kinds, keys, parties) refuse duplicates and are stored
sorted, so two clients that list the same set in a different order produce the same state.
Checks that need the block time (an expiry in the future) or the state (a member exists) are
made by the rules, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.core.text import CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB, plain_text

DAY_MS = 86_400_000
MAX_KEY_OVERLAP_MS = 30 * DAY_MS
"""Longest time an old key stays valid after a rotation."""
DEFAULT_KEY_OVERLAP_MS = 7 * DAY_MS
MAX_KYC_VALIDITY_MS = 5 * 366 * DAY_MS
MAX_DELEGATION_MS = 366 * DAY_MS
MAX_PROPOSAL_TIMEOUT_MS = 366 * DAY_MS
MAX_POWER = 10**9
"""Same bound as the consensus genesis (``GenesisValidator.power``)."""

KEY_PATTERN = r"^[0-9a-f]{64}$"
SIGNATURE_PATTERN = r"^[0-9a-f]{128}$"
MEMBER_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
KIND_PATTERN = r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*\.(?:[a-z][a-z0-9_]*|\*)$"
"""``svc.verb`` or ``svc.verb.verb``; a trailing ``*`` (``doc.*``) matches every kind below it."""
JURISDICTION_PATTERN = r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$"
"""ISO 3166-1 alpha-2, optionally with an ISO 3166-2 subdivision (``US-NY``)."""


def _plain_long_text(value: str) -> str:
    if CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB.search(value):
        raise ValueError("must not contain control characters (other than newline and tab) or lone surrogates")
    return value


def _distinct_sorted(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return sorted(values)


Namespace = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
"""A business-key namespace, as the doc service spells it (``MAEU``, ``NMFTA:MAEU``)."""
PublicKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
"""An Ed25519 public key: 64 lowercase hex digits."""
Signature = Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]
"""An Ed25519 signature: 128 lowercase hex digits."""
Sha256Hex = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
MemberId = Annotated[str, StringConstraints(pattern=MEMBER_ID_PATTERN)]
"""A member's permanent short name: lowercase letters, digits and inner hyphens, ≤ 64."""
RoleName = Annotated[str, StringConstraints(pattern=ROLE_PATTERN)]
KindPattern = Annotated[str, StringConstraints(pattern=KIND_PATTERN, max_length=64)]
Jurisdiction = Annotated[str, StringConstraints(pattern=JURISDICTION_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(plain_text)]
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_plain_long_text)]
Millis = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
Roles = Annotated[list[RoleName], Field(max_length=16), AfterValidator(_distinct_sorted)]
Kinds = Annotated[list[KindPattern], Field(max_length=64), AfterValidator(_distinct_sorted)]


class Payload(BaseModel):
    """Base of every payload: frozen, no unknown fields, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def kind_matches(patterns: Sequence[str], kind: str) -> bool:
    """True if ``kind`` is listed, or a listed ``svc.*`` pattern covers it."""
    for pattern in patterns:
        if pattern == kind or (pattern.endswith(".*") and kind.startswith(pattern[:-1])):
            return True
    return False


# --------------------------------------------------------------------------- rules


class Rules(Payload):
    """Voting rules. A proposal with council snapshot of size N, ``yes``/``no``/``abstain`` votes
    passes as soon as ``yes + no + abstain >= min(quorum, N)`` and
    ``yes * threshold_den > threshold_num * N``.

    ``threshold_num / threshold_den`` must lie in [1/2, 1): passing always needs a strict
    majority of the whole council, and a threshold of 1 (impossible) cannot be set. Quorum is
    capped at N so that a shrunken council can still change the rules.
    """

    quorum: int = Field(default=1, ge=1, le=1000)
    threshold_num: int = Field(default=1, ge=1, le=1000)
    threshold_den: int = Field(default=2, ge=1, le=1000)
    timeout_ms: int = Field(default=7 * DAY_MS, ge=1, le=MAX_PROPOSAL_TIMEOUT_MS)

    @model_validator(mode="after")
    def _threshold_is_a_majority(self) -> Self:
        if not (2 * self.threshold_num >= self.threshold_den > self.threshold_num):
            raise ValueError("threshold_num / threshold_den must be at least 1/2 and below 1")
        return self


DEFAULT_RULES = Rules()


# --------------------------------------------------------------------------- member kinds


class KeyProof(Payload):
    public_key: PublicKey
    proof: Signature
    """The key's signature over ``proofs.register_message(chain_id, organisation, public_key)``."""


class Register(Payload):
    """``party.register``: an admitted member sponsors an applicant organisation."""

    member_id: MemberId
    name: Text | None = None
    """Display name; defaults to ``member_id``."""
    organisation: Text
    jurisdiction: Jurisdiction
    roles: Annotated[Roles, Field(min_length=1)]
    keys: Annotated[list[KeyProof], Field(min_length=1, max_length=4)]

    @model_validator(mode="after")
    def _distinct_keys(self) -> Self:
        keys = [k.public_key for k in self.keys]
        if len(set(keys)) != len(keys):
            raise ValueError("keys: a public key is listed twice")
        return self


class Kyc(Payload):
    """``party.kyc``: a KYC provider attests a member's status until ``expires_at``."""

    member_id: MemberId
    status: Literal["verified", "pending", "failed", "revoked"]
    expires_at: Millis


class KycV2(Kyc):
    """``party.kyc`` under rules version 2: the provider also says whether the member is a
    qualified (professional) investor, which equity-anchored tokens require."""

    qualified_investor: bool = False


class Agreement(Payload):
    """``party.agreement``: a legal agreement, by SHA-256, signed by every listed party key."""

    agreement_hash: Sha256Hex
    parties: Annotated[list[PublicKey], Field(min_length=2, max_length=32), AfterValidator(_distinct_sorted)]
    signatures: dict[PublicKey, Signature]
    """``{party key: signature over proofs.agreement_message(...)}``."""
    title: Text | None = None


class RotateKey(Payload):
    """``party.key.rotate``: replace ``old_key`` (default: the sender) by ``new_key``."""

    new_key: PublicKey
    proof: Signature
    """``new_key``'s signature over ``proofs.rotate_message(chain_id, member_id, old_key, new_key)``."""
    old_key: PublicKey | None = None
    overlap_ms: int = Field(default=DEFAULT_KEY_OVERLAP_MS, ge=0, le=MAX_KEY_OVERLAP_MS)


NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class RegisterNode(Payload):
    """``party.node.register``: the sender's member runs a node called ``node_id`` under
    ``public_key`` (architecture: Nodes: node keys are registered on the chain, bound to a member)."""

    node_id: NodeId
    public_key: PublicKey
    proof: Signature
    """``public_key``'s signature over ``proofs.node_key_message(chain_id, member_id, node_id, public_key)``."""


class RotateNodeKey(Payload):
    """``party.node.rotate``: the node's member replaces its key; the new key counts from two
    heights on (as validator-set changes do), so whoever checks a signed checkpoint of a height
    knows which key signs it."""

    node_id: NodeId
    new_key: PublicKey
    proof: Signature
    """``new_key``'s signature over ``proofs.node_key_message(chain_id, member_id, node_id, new_key)``."""


class Delegate(Payload):
    """``party.delegate``: submit ``kinds`` on behalf of a named non-member until ``expires_at``.

    An empty ``kinds`` list revokes the delegation to that principal.
    """

    principal: Text
    principal_key: PublicKey | None = None
    kinds: Kinds
    expires_at: Millis | None = None
    """Required unless revoking."""


# --------------------------------------------------------------------------- governance


class AdmitMember(Payload):
    """Admit an applicant (or reinstate a suspended member); ``roles`` overrides the roles held."""

    type: Literal["admit_member"]
    member_id: MemberId
    roles: Roles | None = None


class SuspendMember(Payload):
    type: Literal["suspend_member"]
    member_id: MemberId


class AddValidator(Payload):
    """Add a validator, or change an existing validator's power."""

    type: Literal["add_validator"]
    public_key: PublicKey
    power: int = Field(ge=1, le=MAX_POWER)


class RemoveValidator(Payload):
    type: Literal["remove_validator"]
    public_key: PublicKey


class AssignNamespace(Payload):
    """Give a business-key namespace (a carrier's SCAC or ``NMFTA:<code>``, a warehouse's code…)
    to a member: from then on only that member registers documents under it, so no one can
    squat another issuer's B/L numbers. ``member_id: null`` frees the namespace again."""

    type: Literal["assign_namespace"]
    namespace: Namespace
    member_id: MemberId | None


class GrantRole(Payload):
    type: Literal["grant_role"]
    member_id: MemberId
    role: RoleName


class RevokeRole(Payload):
    type: Literal["revoke_role"]
    member_id: MemberId
    role: RoleName


class SetRoleKinds(Payload):
    """Create a role or replace the kinds it may submit."""

    type: Literal["set_role_kinds"]
    role: RoleName
    kinds: Kinds


class SetRules(Payload):
    type: Literal["set_rules"]
    rules: Rules


class SetChainParams(Payload):
    """Chain parameters the council governs (architecture: Execution): the empty-block interval (ms, 0 =
    never), after which a block is sealed on an idle chain so that clauses fire on time."""

    type: Literal["set_chain_params"]
    empty_block_interval_ms: int = Field(ge=0, le=24 * 3600 * 1000)


ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class Upgrade(Payload):
    """A software upgrade of the chain at ``height`` (architecture: Execution): services turned on with
    their genesis sections, and new rule versions of existing services. If the vote passes
    later than two heights before ``height``, it takes effect two heights after the vote."""

    type: Literal["upgrade"]
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    height: int = Field(ge=1, le=2**53 - 1)
    activate: Annotated[list[ServiceName], Field(max_length=8)] = Field(default_factory=list)
    rules: Annotated[dict[ServiceName, Annotated[int, Field(ge=2, le=10_000)]], Field(max_length=16)] = Field(
        default_factory=dict
    )
    sections: Annotated[dict[ServiceName, dict[str, Any]], Field(max_length=8)] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        problems = []
        if not self.activate and not self.rules:
            problems.append("an upgrade activates a service or changes a rule version")
        if len(set(self.activate)) != len(self.activate):
            problems.append("activate names a service twice")
        stray = sorted(set(self.sections) - set(self.activate))
        if stray:
            problems.append(f"sections for services the upgrade does not activate: {', '.join(stray)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SetServiceParam(Payload):
    """Rules version 2: a parameter of another service the council governs, as a JSON object
    party records under ``service_param/<service>/<key>`` (``value`` null deletes it). The
    service reads it from its projection of party and validates it itself; party only keeps
    the council's decision (e.g. trade's ``trc`` parameters, an ``asset_class/<name>``, a
    ``correction/<id>`` to carry out)."""

    type: Literal["set_service_param"]
    service: ServiceName
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")]
    value: dict[str, Any] | None


Action = Annotated[
    AdmitMember
    | SuspendMember
    | AddValidator
    | RemoveValidator
    | AssignNamespace
    | GrantRole
    | RevokeRole
    | SetRoleKinds
    | SetRules
    | SetChainParams
    | Upgrade
    | SetServiceParam,
    Field(discriminator="type"),
]


class Propose(Payload):
    """``party.propose``: put one governance action to the council."""

    action: Action
    description: LongText = ""


class Vote(Payload):
    """``party.vote``: one council member's vote on an open proposal."""

    proposal_id: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    choice: Literal["yes", "no", "abstain"]


def first_error(exc: ValidationError) -> str:
    """``<field>: <reason>`` for the first problem pydantic found."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error.get("loc", ())) or "payload"
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {reason}"
