"""Payload schemas of the ``doc.*`` transaction kinds.

Why a frozen, strict model per kind: a payload is untrusted JSON. Validating it before any rule
runs (no coercion: ``"5"`` is not ``5``, ``true`` is not ``1``; unknown fields refused) means the
rules only see well-formed values and a bad payload becomes ``INVALID_PAYLOAD "<field>:
<reason>"`` instead of an exception in the consumer. The client builders in ``client.py``
validate with the same models, so a client finds its mistake before signing.

Checks that need the block time (an expiry in the future) or state (the document exists) are
the rules', not these models'. Metadata is free-form JSON but bounded (``MAX_METADATA_BYTES``
canonical bytes, ``MAX_METADATA_DEPTH`` levels) and float-free: a float in state would make a
node's bytes depend on its JSON library, and amounts are integers in minor units anyway.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from traco.core.canonical import MAX_SAFE_INTEGER, canonicalize
from traco.core.text import plain_text
from traco.services.doc import tables

MAX_METADATA_BYTES: Final = 4096
MAX_METADATA_DEPTH: Final = 4
MAX_RECIPIENTS: Final = 32
SEALED_BOX_OVERHEAD: Final = 48  # X25519 ephemeral public key (32) + Poly1305 tag (16)
MIN_SHARED_KEY_BYTES: Final = 16
MAX_SHARED_KEY_BYTES: Final = 64

HEX64_PATTERN: Final = r"^[0-9a-f]{64}$"
NAMESPACE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
"""Who allocates the reference, e.g. ``NMFTA:MAEU`` (code list provider and carrier code), an
LEI (``LEI:529900T8BM49AURSDO55``), or ``MEMBER:<member id>`` for a member's own numbering."""
REFERENCE_PATTERN: Final = r"^[A-Za-z0-9](?:[A-Za-z0-9 ._/#:-]{0,62}[A-Za-z0-9])?$"
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"
UNLOCODE_PATTERN: Final = r"^[A-Z]{2}[A-Z2-9]{3}$"


def _json_value(value: object, depth: int) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError("integers must lie within ±(2**53 - 1); send larger numbers as strings")
        return
    if isinstance(value, float):
        raise ValueError("floats are not allowed; use integers (minor units) or strings")
    if depth >= MAX_METADATA_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, list):
        for item in value:
            _json_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 64:
                raise ValueError("object keys must be strings of 1 to 64 characters")
            _json_value(item, depth + 1)
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    _json_value(value, 0)
    try:
        size = len(canonicalize(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"is {size} bytes as canonical JSON; the limit is {MAX_METADATA_BYTES}")
    return value


def _known_milestone(value: str) -> str:
    if value not in tables.MILESTONE_ROLES:
        raise ValueError(f"unknown milestone {value!r:.40}; one of {', '.join(tables.MILESTONE_ROLES)}")
    return value


def _sealed_box(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be standard base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("must be canonical base64 (padded, no stray bits)")
    low, high = SEALED_BOX_OVERHEAD + MIN_SHARED_KEY_BYTES, SEALED_BOX_OVERHEAD + MAX_SHARED_KEY_BYTES
    if not low <= len(raw) <= high:
        raise ValueError(f"a sealed key must be {low} to {high} bytes, not {len(raw)}")
    return value


Hex64 = Annotated[str, StringConstraints(pattern=HEX64_PATTERN)]
PublicKey = Annotated[str, StringConstraints(pattern=HEX64_PATTERN)]
"""An Ed25519 public key: 64 lowercase hex digits (a member key)."""
DocType = Literal[
    "bill_of_lading",
    "warehouse_receipt",
    "letter_of_credit",
    "invoice",
    "packing_list",
    "certificate_of_origin",
    "insurance_certificate",
    "contract",
]
Millis = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
Metadata = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(plain_text)]
SealedBox = Annotated[str, StringConstraints(max_length=200), AfterValidator(_sealed_box)]


class Payload(BaseModel):
    """Base of every payload: frozen, no unknown fields, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class BusinessKey(Payload):
    """What makes a document unique in the world, besides its bytes.

    ``namespace`` says who allocated ``reference``; ``scope`` says what the reference names:
    ``document`` (default: one document of this type, e.g. a carrier's B/L number) or ``goods``
    (the goods themselves, e.g. a lot number: then no second document of *any* type may claim
    the same namespace and reference). See ``queries.business_key_index``.
    """

    namespace: Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN)]
    reference: Annotated[str, StringConstraints(pattern=REFERENCE_PATTERN)]
    scope: Literal["document", "goods"] = "document"


class Register(Payload):
    """``doc.register``: anchor a document (its SHA-256, never the file) as a unique asset."""

    file_hash: Hex64
    type: DocType
    business_key: BusinessKey
    metadata: Metadata = Field(default_factory=dict)
    holder: PublicKey | None = None
    """First holder (an admitted member's key); default: the issuer."""
    negotiable: bool | None = None
    """Default: by type (``tables.NEGOTIABLE_TYPES``); ``false`` registers a straight B/L."""


MAX_NAMED_PARTIES: Final = 16


class RegisterV2(Register):
    """``doc.register`` under rules version 2: ``parties`` names, by key, the members besides the
    issuer and the holder who are parties of record (notify party, consignee, an L/C's
    applicant): they, too, may report milestones on the document. Version 1 refuses the field."""

    parties: Annotated[list[PublicKey], Field(max_length=MAX_NAMED_PARTIES)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_parties(self) -> Self:
        if len(set(self.parties)) != len(self.parties):
            raise ValueError("parties: a key is listed twice")
        return self


class Event(Payload):
    """``doc.event``: a behaviour record (milestone) against a document."""

    doc_id: Hex64
    milestone: Annotated[str, StringConstraints(max_length=32), AfterValidator(_known_milestone)]
    occurred_at: Millis | None = None
    """When it happened (ms, UTC), not after the block time; default: the block time."""
    location: Annotated[str, StringConstraints(pattern=UNLOCODE_PATTERN)] | None = None
    """UN/LOCODE, e.g. ``NLRTM``."""
    details: Metadata = Field(default_factory=dict)


class Transfer(Payload):
    """``doc.transfer``: endorse a negotiable document to ``to`` (an admitted member's key)."""

    doc_id: Hex64
    to: PublicKey


class Surrender(Payload):
    """``doc.surrender``: the holder surrenders the document; final."""

    doc_id: Hex64
    reason: Literal["delivery", "switch_to_paper", "cancellation"] = "delivery"


class Pledge(Payload):
    """``doc.pledge``: pledge the document to a financier for ``amount`` minor units until
    ``expires_at`` (ms, after the block time)."""

    doc_id: Hex64
    financier: PublicKey
    amount: Annotated[int, Field(gt=0, le=MAX_SAFE_INTEGER)]
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]
    expires_at: Millis
    reference: Text | None = None
    """The financier's loan or facility reference, if any."""


class Release(Payload):
    """``doc.release``: the financier releases its pledge (or the holder, once it expired)."""

    doc_id: Hex64


class Amend(Payload):
    """``doc.amend``: the issuer registers a new version (new file) of a document."""

    doc_id: Hex64
    file_hash: Hex64
    metadata: Metadata | None = None
    """The new version's metadata; default: the old version's."""
    reason: Text | None = None


class HolderConsent(Payload):
    """The holder's consent to an amendment: one of the holder member's current keys and its
    signature over ``consent.amend_message`` (the chain, the version amended, the new file
    hash and metadata)."""

    key: PublicKey
    signature: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]


class AmendV2(Amend):
    """``doc.amend`` under rules version 2: ``holder_consent`` is required when the document is a
    title document (negotiable) held by a member other than the issuer. Version 1 refuses it."""

    holder_consent: HolderConsent | None = None


class PledgeAccept(Payload):
    """``doc.pledge.accept`` (rules v2): the financier accepts the pledge offered to it on
    ``doc_id``, which puts it in force."""

    doc_id: Hex64


class PledgeExtend(Payload):
    """``doc.pledge.extend`` (rules v2): the financier moves its pledge's expiry later."""

    doc_id: Hex64
    expires_at: Millis


class ShareKey(Payload):
    """``doc.share_key``: per recipient key, an X25519 sealed box (base64) of the file's key."""

    doc_id: Hex64
    keys: Annotated[dict[PublicKey, SealedBox], Field(min_length=1, max_length=MAX_RECIPIENTS)]


HoldId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
"""A hold's operation id, chosen by whoever creates it; unique forever (``core.holds``)."""
Notary = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{64}|service:[a-z][a-z0-9_]{0,31})$")]
"""A member's key, or ``service:<name>`` for a service that decides by command."""


class Hold(Payload):
    """``doc.hold``: the holder holds the title for ``beneficiary`` (an admitted member's key)
    until ``expires_height`` and/or ``expires_at`` (ms); ``notary`` decides instead of the
    beneficiary when named."""

    hold_id: HoldId
    doc_id: Hex64
    beneficiary: PublicKey
    notary: Notary | None = None
    expires_height: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)] | None = None
    expires_at: Millis | None = None


class HoldExecute(Payload):
    """``doc.hold.execute``: the decider moves the held title to the beneficiary."""

    hold_id: HoldId


class HoldRelease(Payload):
    """``doc.hold.release``: the beneficiary refuses, or the notary decides against."""

    hold_id: HoldId


class HoldRenew(Payload):
    """``doc.hold.renew``: the holder moves the expiry later (no bound earlier or dropped)."""

    hold_id: HoldId
    expires_height: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)] | None = None
    expires_at: Millis | None = None


MemberId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
ManagedReference = Annotated[str, StringConstraints(pattern=r"^[a-z]+:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
"""``<flow>:<id>`` of the later service's record the pledge secures (``loan:<request_id>``)."""


class PledgePlace(Payload):
    """``doc.pledge.place`` (a command only): the commanding service pledges the document, with
    the holder's authority, to ``financier`` (a member id) for ``amount`` until ``expires_at``;
    the pledge is *managed* by that service (see ``managed.py``)."""

    doc_id: Hex64
    financier: MemberId
    amount: Annotated[int, Field(gt=0, le=MAX_SAFE_INTEGER)]
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]
    expires_at: Millis
    reference: ManagedReference


class PledgeManaged(Payload):
    """``doc.pledge.discharge`` / ``doc.pledge.enforce`` (commands only): end the managed pledge
    ``reference`` on the document — released to the holder, or its title moved to the financier."""

    doc_id: Hex64
    reference: ManagedReference


class LienPlace(Payload):
    """``doc.lien.place`` (a command only): the commanding service records that the document
    backs its record ``reference`` (``abs:<pool_id>``), with the holder's authority."""

    doc_id: Hex64
    reference: ManagedReference


COMMAND_MODELS: Final[dict[str, type[Payload]]] = {
    tables.KIND_LIEN_PLACE: LienPlace,
    tables.KIND_PLEDGE_PLACE: PledgePlace,
    tables.KIND_PLEDGE_DISCHARGE: PledgeManaged,
    tables.KIND_PLEDGE_ENFORCE: PledgeManaged,
}
"""Kinds that exist only as commands of a later service (``managed.py``), never as transactions."""

MODELS: Final[dict[str, type[Payload]]] = {
    tables.KIND_REGISTER: RegisterV2,
    tables.KIND_EVENT: Event,
    tables.KIND_TRANSFER: Transfer,
    tables.KIND_SURRENDER: Surrender,
    tables.KIND_PLEDGE: Pledge,
    tables.KIND_PLEDGE_ACCEPT: PledgeAccept,
    tables.KIND_PLEDGE_EXTEND: PledgeExtend,
    tables.KIND_RELEASE: Release,
    tables.KIND_AMEND: AmendV2,
    tables.KIND_SHARE_KEY: ShareKey,
    tables.KIND_HOLD: Hold,
    tables.KIND_HOLD_EXECUTE: HoldExecute,
    tables.KIND_HOLD_RELEASE: HoldRelease,
    tables.KIND_HOLD_RENEW: HoldRenew,
}


V1_MODELS: Final[dict[str, type[Payload]]] = {tables.KIND_REGISTER: Register, tables.KIND_AMEND: Amend}
"""Where rules version 1's schema differs from the newest (``MODELS``): without the v2 fields,
so version 1 still refuses them as unknown (``INVALID_PAYLOAD``), as it always did."""


def parse(kind: str, payload: Mapping[str, Any], version: int = 2) -> Payload | str:
    """The validated payload of ``kind`` under ``version`` of the rules, or the ``"<field>:
    <reason>"`` of its first error."""
    model = COMMAND_MODELS.get(kind) or (V1_MODELS.get(kind, MODELS[kind]) if version < 2 else MODELS[kind])
    if not isinstance(payload, Mapping):
        return "payload: must be a JSON object"
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        return describe(exc)


def describe(exc: ValidationError) -> str:
    """``"<field>: <reason>"`` of a validation error's first problem."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error.get("loc", ())) or "payload"
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {reason}"
