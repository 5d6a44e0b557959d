"""The ``data`` of every doc event type (see ``asyncapi_events`` for why these models exist).

Every doc event carries the document (``doc_id``), who submitted (``by``: a member reference,
since title follows the member, not one key) and the transaction's stamp.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from traco.schemas.asyncapi_events import EventData, HoldRecord, Key, Millis
from traco.schemas.base import Hex32


class MemberRef(EventData):
    """A party as doc records it: title follows the member, not one key."""

    member_id: str = Field(description="member id (the key itself if party knows no id)")
    key: Key | Annotated[str, StringConstraints(pattern=r"^service:[a-z][a-z0-9_]{0,31}$")] = Field(
        description="the member's key, or service:<name> when a service's clause acted by command (a loan default)"
    )


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
    accepted: Stamp | None = Field(default=None, description="doc rules v2: the financier's acceptance")
    manager: str | None = Field(
        default=None, description="a managed pledge's service (service:trade): only its commands end it"
    )


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
    parties: list[MemberRef] | None = Field(default=None, description="doc rules v2: named at registration")
    offers: dict[str, PledgeTerms] | None = Field(
        default=None, description="doc rules v2: open pledge offers by financier member id"
    )


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


class PledgeOffered(DocData):
    """Doc rules v2: the holder offers a pledge; it binds only when the financier accepts."""

    offer: PledgeTerms
    holder: MemberRef


class PledgeOffersWithdrawn(DocData):
    """Doc rules v2: the holder withdraws its open offers (``doc.release`` with none in force)."""

    financiers: list[MemberRef]


class PledgeExtended(DocData):
    """Doc rules v2: the financier moves its pledge's expiry later."""

    pledge_id: Hex32
    previous_expires_at: Millis
    expires_at: Millis


class PledgeReleased(DocData):
    pledge_id: Hex32 = Field(description="tx id of the pledge")
    financier: MemberRef
    expired: bool


class PledgeEnforced(DocData):
    """A managed pledge enforced by its service's command (trade's loan default): the title
    moves from the holder to the financier and the pledge ends."""

    pledge_id: Hex32 = Field(description="tx id (or command id) of the pledge")
    from_: MemberRef = Field(alias="from")
    to: MemberRef


class Lien(EventData):
    manager: str = Field(description="the later service whose record the document backs (service:trade)")
    reference: str = Field(description="that record (abs:<pool_id>)")
    tx_id: Hex32 = Field(description="the command's id")
    height: int = Field(ge=1)
    time: Millis


class DocumentLiened(DocData):
    """The document backs a later service's record (a receivable in a securitisation pool):
    from now on it cannot move, be pledged, held or amended."""

    lien: Lien


class DocumentAmended(DocData):
    new_doc_id: Hex32
    document: DocumentRecord = Field(description="the new version's record")
    reason: str | None
    lapsed_pledge: str | None


class DocumentKeyShared(DocData):
    keys: dict[Hex32, str] = Field(description="recipient key: X25519 sealed box of the file key, base64")


class TitleHeld(DocData):
    hold: HoldRecord
    beneficiary: MemberRef


class TitleHoldExecuted(DocData):
    hold: HoldRecord
    to: MemberRef = Field(description="the new holder")
    ended_pledge: str | None = Field(description="tx id of the pledge in force that the execution ended")


class TitleHoldReleased(DocData):
    hold: HoldRecord


class TitleHoldRenewed(DocData):
    hold: HoldRecord = Field(description="with its new expiry")
    previous: HoldRecord


class ClauseActor(EventData):
    member_id: str = Field(description="``service:doc``: the clause, not a member")
    key: str


class TitleHoldExpired(EventData):
    """Emitted by the ``hold_expiry`` clause, not by a transaction: no tx id."""

    doc_id: Hex32
    hold: HoldRecord
    by: ClauseActor
    tx_id: None
    height: int = Field(ge=1)
    time: Millis
