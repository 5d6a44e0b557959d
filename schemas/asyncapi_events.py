"""The ``data`` of every domain event type, as models, so the integration contract is typed.

Why here and not in the services: a service builds an event's ``data`` as a plain JSON object
(``traco.core.domain.Event``) because its rules must stay free of wire concerns; an integrator
still needs to know what each event carries. These models are that description, and nothing
executes with them. They cannot drift unnoticed: ``tests/test_schemas_export.py`` runs the
party and doc rules' own test suites, records the ``data`` of every event they apply, and
validates each one here (strict types, no unknown fields), and it fails when a service gains
an event type this file does not describe.

Conventions that hold for every event (DESIGN §7): integers for amounts and times (ms since
the epoch, UTC, block time); keys are 64 lowercase hex digits; party events carry their
position ``height``/``index``/``time``, doc events ``tx_id``/``height``/``time`` and the
submitter ``by``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from traco.schemas.base import Hex32

Key = Annotated[Hex32, Field(description="an Ed25519 public key, 64 lowercase hex digits")]
Millis = Annotated[int, Field(ge=0, description="ms since the epoch, UTC (block time)")]


class EventData(BaseModel):
    """Base of every event's ``data``: strict, closed."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)


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
    provider: Key
    expires_at: Millis


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


# --------------------------------------------------------------------------- doc


class MemberRef(EventData):
    """A party as doc records it: title follows the member, not one key."""

    member_id: str = Field(description="member id (the key itself if party knows no id)")
    key: Key


class Stamp(EventData):
    tx_id: Hex32
    height: int = Field(ge=1)
    time: Millis


class StoredBusinessKey(EventData):
    namespace: str
    reference: str
    scope: Literal["document", "goods"]
    index: str = Field(description="the uniqueness index key the reference was normalised to")


class PledgeTerms(EventData):
    financier: MemberRef
    amount: int = Field(gt=0, description="minor units")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    expires_at: Millis
    reference: str | None
    tx_id: Hex32
    height: int = Field(ge=1)
    time: Millis


class DocumentRecord(EventData):
    """A document as the registry stores it (``doc/<doc_id>``)."""

    doc_id: Hex32
    lineage: Hex32 = Field(description="doc_id of the first version")
    version: int = Field(ge=1)
    previous: Hex32 | None
    next: Hex32 | None
    type: str
    negotiable: bool
    file_hash: Hex32
    business_key: StoredBusinessKey
    metadata: dict[str, Any]
    issuer: MemberRef
    holder: MemberRef
    status: Literal["active", "surrendered", "superseded"]
    pledge: PledgeTerms | None
    surrender: dict[str, Any] | None
    last_milestone: dict[str, Any] | None
    registered: Stamp
    updated: Stamp
    history_length: int = Field(ge=0)


class DocData(EventData):
    doc_id: Hex32
    by: MemberRef = Field(description="who submitted the transaction")
    tx_id: Hex32
    height: int = Field(ge=1)
    time: Millis


class DocumentRegistered(DocData):
    document: DocumentRecord


class MilestoneRecorded(DocData):
    milestone: str
    occurred_at: Millis
    location: str | None = Field(description="UN/LOCODE")
    details: dict[str, Any]


class TitleTransferred(DocData):
    from_: MemberRef = Field(alias="from")
    to: MemberRef
    lapsed_pledge: str | None = Field(description="an expired pledge this transfer cleared")


class DocumentSurrendered(DocData):
    holder: MemberRef
    reason: Literal["delivery", "switch_to_paper", "cancellation"]
    lapsed_pledge: str | None


class DocumentPledged(DocData):
    pledge: PledgeTerms
    holder: MemberRef
    lapsed_pledge: str | None


class PledgeReleased(DocData):
    pledge_id: Hex32 = Field(description="tx id of the pledge")
    financier: MemberRef
    expired: bool


class DocumentAmended(DocData):
    new_doc_id: Hex32
    document: DocumentRecord = Field(description="the new version's record")
    reason: str | None
    lapsed_pledge: str | None


class DocumentKeyShared(DocData):
    keys: dict[Hex32, str] = Field(description="recipient key: X25519 sealed box of the file key, base64")


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


EVENT_DATA: dict[str, dict[str, type[EventData]]] = {
    "chain": {m.__name__: m for m in (Anchored, ValidatorSetChanged)},
    "party": {
        m.__name__: m
        for m in (
            MemberRegistered,
            MemberAdmitted,
            MemberSuspended,
            KycRecorded,
            KeyRotated,
            RoleGranted,
            RoleRevoked,
            RoleKindsSet,
            RulesSet,
            ValidatorAdded,
            ValidatorRemoved,
            NamespaceAssigned,
            NodeRegistered,
            NodeKeyRotated,
            AgreementRecorded,
            ProposalCreated,
            VoteCast,
            ProposalPassed,
            ProposalRejected,
            ProposalVoided,
            DelegationRecorded,
            DelegationRevoked,
        )
    },
    "doc": {
        m.__name__: m
        for m in (
            DocumentRegistered,
            MilestoneRecorded,
            TitleTransferred,
            DocumentSurrendered,
            DocumentPledged,
            PledgeReleased,
            DocumentAmended,
            DocumentKeyShared,
        )
    },
}
"""service -> event type -> the model of its ``data``."""
