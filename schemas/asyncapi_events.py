"""The ``data`` of every domain event type, as models, so the integration contract is typed.

Why here and not in the services: a service builds an event's ``data`` as a plain JSON object
(``traco.core.domain.Event``) because its rules must stay free of wire concerns; an integrator
still needs to know what each event carries. These models are that description, and nothing
executes with them. They cannot drift unnoticed: ``tests/test_schemas_export.py`` runs the
party and doc rules' own test suites, records the ``data`` of every event they apply, and
validates each one here (strict types, no unknown fields), and it fails when a service gains
an event type these files do not describe. Doc's events are in ``asyncapi_events_doc``; the
registry of all of them is ``asyncapi_models.EVENT_DATA``.

Conventions that hold for every event (architecture: Execution): integers for amounts and times (ms since
the epoch, UTC, block time); keys are 64 lowercase hex digits; party events carry their
position ``height``/``index``/``time``, doc events ``tx_id``/``height``/``time`` and the
submitter ``by``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from traco.schemas.base import Hex32

Key = Annotated[Hex32, Field(description="an Ed25519 public key, 64 lowercase hex digits")]
Millis = Annotated[int, Field(ge=0, description="ms since the epoch, UTC (block time)")]


class EventData(BaseModel):
    """Base of every event's ``data``: strict, closed."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)


class HoldRecord(EventData):
    """A hold as ``core/holds.py`` writes it: parties by member id (or ``service:<name>``)."""

    hold_id: str
    owner: str
    beneficiary: str
    notary: str | None
    asset: str = Field(description="the doc_id held")
    amount: int = Field(ge=1)
    expires_height: int | None
    expires_time: Millis | None
    created_height: int = Field(ge=1)
    created_time: Millis
    status: Literal["ordered", "executed", "released_by_beneficiary", "released_by_notary", "expired"]
    executed: int = Field(ge=0)
    returned: int = Field(ge=0)
    closed_height: int | None
    closed_by: str | None


# --------------------------------------------------------------------------- party


class PartyData(EventData):
    height: int = Field(ge=0, description="block height (0: genesis)")
    index: int = Field(ge=0, description="the transaction's index in its block (genesis: the event's)")
    time: Millis


class VotingRules(EventData):
    quorum: int
    threshold_num: int
    threshold_den: int
    timeout_ms: int


class MemberRegistered(PartyData):
    member_id: str
    name: str
    organisation: str
    jurisdiction: str
    roles: list[str]
    keys: list[Key]
    primary_key: Key
    sponsor: str | None = Field(description="sponsoring member id; null at genesis")
    sponsor_key: Key | None


class MemberAdmitted(PartyData):
    member_id: str
    roles: list[str]


class MemberSuspended(PartyData):
    member_id: str


class KycRecorded(PartyData):
    member_id: str
    status: Literal["verified", "pending", "failed", "revoked"]
    provider: Key | None = Field(description="the KYC provider's key; null when recorded at genesis")
    expires_at: Millis
    qualified_investor: bool | None = Field(
        default=None, description="rules version 2: whether the member is a qualified investor"
    )


class KeyRotated(PartyData):
    member_id: str
    old_key: Key
    new_key: Key
    valid_until: Millis = Field(description="the old key is valid while block time < valid_until")
    primary_key: Key


class RoleGranted(PartyData):
    member_id: str
    role: str


class RoleRevoked(PartyData):
    member_id: str
    role: str


class RoleKindsSet(PartyData):
    role: str
    kinds: list[str] = Field(description="kinds and svc.* patterns the role may submit")


class RulesSet(PartyData):
    rules: VotingRules


class ChainParamsSet(PartyData):
    empty_block_interval_ms: int = Field(ge=0, description="idle time after which an empty block is sealed; 0: never")


class ServiceParamSet(PartyData):
    service: str
    key: str
    value: dict[str, Any] | None = Field(description="the parameter (a JSON object); null deletes it")


class UpgradeScheduled(PartyData):
    name: str
    from_height: int = Field(ge=1, description="the height the upgrade takes effect")
    activate: list[str] = Field(description="services turned on")
    rules: dict[str, int] = Field(description="service: the rule version in force from from_height")
    sections: dict[str, dict[str, Any]] = Field(description="service: its genesis section")


class ValidatorAdded(PartyData):
    public_key: Key
    power: int = Field(ge=1)
    from_height: int = Field(ge=0, description="the first height the change counts for")


class ValidatorRemoved(PartyData):
    public_key: Key
    from_height: int = Field(ge=0)


class NamespaceAssigned(PartyData):
    namespace: str
    member_id: str | None = Field(description="the owner; null frees the namespace")
    replaces: list[str] | None = Field(
        default=None, description="rules version 2: old spellings of the namespace, removed"
    )


class NodeRegistered(PartyData):
    member_id: str
    node_id: str
    public_key: Key
    from_height: int = Field(ge=0, description="the key signs checkpoints from this height on")


class NodeKeyRotated(PartyData):
    member_id: str
    node_id: str
    old_key: Key
    new_key: Key
    from_height: int = Field(ge=0)


class AgreementRecorded(PartyData):
    agreement_hash: Hex32
    title: str | None
    parties: list[str] = Field(description="member ids")
    keys: list[Key]
    recorded_by: str = Field(description="member id of the submitter")


class ProposalCreated(PartyData):
    proposal_id: int = Field(ge=1)
    proposer: str
    proposer_key: Key
    action: dict[str, Any] = Field(description="the governance action, as in the party.propose payload")
    description: str
    deadline: Millis
    council: list[str] = Field(description="member ids who may vote")
    rules: VotingRules


class VoteCast(PartyData):
    proposal_id: int = Field(ge=1)
    member_id: str
    key: Key
    choice: Literal["yes", "no", "abstain"]


class ProposalPassed(PartyData):
    proposal_id: int = Field(ge=1)


class ProposalRejected(PartyData):
    proposal_id: int = Field(ge=1)
    reason: str


class ProposalVoided(PartyData):
    proposal_id: int = Field(ge=1)
    reason: str


class DelegationRecorded(PartyData):
    member_id: str
    principal: str
    principal_key: Key | None
    kinds: list[str]
    expires_at: Millis


class DelegationRevoked(PartyData):
    member_id: str
    principal: str


# --------------------------------------------------------------------------- chain


class Anchored(EventData):
    digest: Hex32
    label: str
    height: int = Field(ge=1)
    tx_id: Hex32
    sender: Key
    time: Millis


class ValidatorEntry(EventData):
    public_key: Key
    power: int = Field(ge=1)


class ValidatorSetChanged(EventData):
    from_height: int = Field(ge=2)
    validators: list[ValidatorEntry]
