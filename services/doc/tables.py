"""The doc service's fixed tables: document types, who may issue them, who may report which
milestone, who may finance, and the receipt codes.

Why tables and not code: these are business facts a consortium argues about ("may a port
report *discharged*?"), so they live in one place as data the rules look up, and a change is a
one-line diff that reviewers can read. They are part of the chain's rules all the same: every
node must run the same tables, so changing one is a software upgrade at an agreed height, not a
runtime setting.

Roles are party's business roles (architecture: The code (party), issue 3): exporter, importer, carrier, warehouse,
bank, insurer, factor, custodian, regulator, kyc_provider, council. Customs authorities and
chambers of commerce are members with the ``regulator`` role; ports and surveyors have no role of
their own yet, so milestones they would report are reported by the carrier or the regulator.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from traco.core.domain import Rejected

SERVICE: Final = "doc"

KIND_REGISTER: Final = "doc.register"
KIND_EVENT: Final = "doc.event"
KIND_TRANSFER: Final = "doc.transfer"
KIND_SURRENDER: Final = "doc.surrender"
KIND_PLEDGE: Final = "doc.pledge"
KIND_RELEASE: Final = "doc.release"
KIND_AMEND: Final = "doc.amend"
KIND_SHARE_KEY: Final = "doc.share_key"
KIND_PLEDGE_ACCEPT: Final = "doc.pledge.accept"
KIND_PLEDGE_EXTEND: Final = "doc.pledge.extend"
KIND_HOLD: Final = "doc.hold"
KIND_HOLD_EXECUTE: Final = "doc.hold.execute"
KIND_HOLD_RELEASE: Final = "doc.hold.release"
KIND_HOLD_RENEW: Final = "doc.hold.renew"

HOLD_KINDS: Final = frozenset({KIND_HOLD, KIND_HOLD_EXECUTE, KIND_HOLD_RELEASE, KIND_HOLD_RENEW})

KIND_PLEDGE_PLACE: Final = "doc.pledge.place"
KIND_PLEDGE_DISCHARGE: Final = "doc.pledge.discharge"
KIND_PLEDGE_ENFORCE: Final = "doc.pledge.enforce"
KIND_LIEN_PLACE: Final = "doc.lien.place"
MANAGED_PLEDGE_KINDS: Final = frozenset(
    {KIND_PLEDGE_PLACE, KIND_PLEDGE_DISCHARGE, KIND_PLEDGE_ENFORCE, KIND_LIEN_PLACE}
)
"""Commands only (``managed.py``): a transaction of these kinds is no doc kind at all."""

COMMAND_KINDS: Final = HOLD_KINDS | MANAGED_PLEDGE_KINDS
"""What later services may command doc to do (architecture: Execution), with their sender's authority."""

V2_KINDS: Final = frozenset({KIND_PLEDGE_ACCEPT, KIND_PLEDGE_EXTEND})
"""Kinds that exist from rules version 2 on (``versions.py``); version 1 answers ``UNKNOWN_KIND``."""

MAX_PLEDGE_MS: Final = 400 * 24 * 3600 * 1000
"""Rules version 2: the longest pledge term from the block that offers or extends it (400 days:
a year's facility plus grace). Like every table here it is a chain rule: a consortium that needs
another bound changes it by an upgrade at an agreed height (a rules version), and trade checks a
loan's maturity plus grace against it before lending on a pledge."""

KYC_PARTIES: Final[dict[str, tuple[str, ...]]] = {
    KIND_REGISTER: ("sender", "holder"),
    KIND_TRANSFER: ("to",),
    KIND_PLEDGE: ("sender", "financier"),
    KIND_PLEDGE_ACCEPT: ("sender",),
    KIND_PLEDGE_EXTEND: ("sender",),
    KIND_HOLD: ("beneficiary",),
}
"""Rules version 2: who must hold a ``verified``, unexpired KYC attestation in party
(``KYC_REQUIRED``) — the sender, or the member whose key a payload field names. Those who
issue a document, take title (registration's holder, a transfer's recipient, a hold's
beneficiary) or take or give credit (both sides of a pledge). Giving title up (transfer,
surrender, release, a hold's decision) is never refused for KYC: that would trap a document with
a party the chain can no longer deal with. Milestones and key sharing carry no value."""

MAX_HOLD_MS: Final = 366 * 24 * 3600 * 1000
"""The longest a title may be held by time (a year and a day); longer needs a renewal."""
MAX_HOLD_HEIGHTS: Final = 10_000_000
"""The furthest expiry height a hold may name, counted from the height that creates it."""

KINDS: Final = frozenset(
    {
        *HOLD_KINDS,
        KIND_REGISTER,
        KIND_EVENT,
        KIND_TRANSFER,
        KIND_SURRENDER,
        KIND_PLEDGE,
        KIND_RELEASE,
        KIND_AMEND,
        KIND_SHARE_KEY,
        *V2_KINDS,
    }
)

DOC_TYPES: Final = (
    "bill_of_lading",
    "warehouse_receipt",
    "letter_of_credit",
    "invoice",
    "packing_list",
    "certificate_of_origin",
    "insurance_certificate",
    "contract",
)
"""The fixed list of document types (issue 3). Order is only for messages."""

NEGOTIABLE_TYPES: Final = frozenset({"bill_of_lading", "warehouse_receipt"})
"""Documents of title: their holder can transfer them by endorsement and surrender them.

A negotiable type may still be registered as non-negotiable (a straight B/L or a sea waybill,
``negotiable: false``); the other types can never be made negotiable.
"""

ISSUER_ROLES: Final[dict[str, frozenset[str]]] = {
    "bill_of_lading": frozenset({"carrier"}),
    "warehouse_receipt": frozenset({"warehouse"}),
    "letter_of_credit": frozenset({"bank"}),
    "invoice": frozenset({"exporter"}),
    "packing_list": frozenset({"exporter"}),
    # Issued by a chamber of commerce or customs (regulator) or self-certified by the exporter
    # where a trade agreement allows it.
    "certificate_of_origin": frozenset({"exporter", "regulator"}),
    "insurance_certificate": frozenset({"insurer"}),
    "contract": frozenset({"exporter", "importer"}),
}
"""Which roles may register (issue) a document of each type: the issuer must hold one of them."""

_CARGO_HANDLERS: Final = frozenset({"carrier", "warehouse"})

MILESTONE_ROLES: Final[dict[str, frozenset[str]]] = {
    # shipment
    "booked": frozenset({"carrier"}),
    "received": _CARGO_HANDLERS,  # cargo received for shipment, or into store
    "loaded": frozenset({"carrier"}),
    "departed": frozenset({"carrier"}),
    "transshipped": frozenset({"carrier"}),
    "arrived": frozenset({"carrier"}),
    "discharged": frozenset({"carrier"}),
    "inspected": frozenset({"regulator", "insurer"}),  # customs, phytosanitary, survey
    "customs_cleared": frozenset({"regulator"}),
    "released": frozenset({"carrier", "warehouse", "regulator"}),
    "delivered": _CARGO_HANDLERS,
    "stored": frozenset({"warehouse"}),
    "withdrawn": frozenset({"warehouse"}),
    "damaged": frozenset({"carrier", "warehouse", "insurer", "importer"}),
    # contract and payment
    "signed": frozenset({"exporter", "importer"}),
    "goods_accepted": frozenset({"importer"}),
    "goods_rejected": frozenset({"importer"}),
    "invoiced": frozenset({"exporter"}),
    "paid": frozenset({"importer", "bank"}),
    "payment_received": frozenset({"exporter", "bank"}),
    "disputed": frozenset({"exporter", "importer"}),
    "dispute_resolved": frozenset({"exporter", "importer"}),
}
"""Which roles may report each behaviour milestone against a document (``doc.event``).

The map service scores members on these records (on-time delivery, disputes), so a milestone is
only as good as the role that vouches for it: a carrier says *loaded*, only an importer says
*goods_accepted*.
"""

FINANCIER_ROLES: Final = frozenset({"bank", "factor"})
"""Roles a member needs to take a document as collateral (``doc.pledge``)."""

SURRENDER_REASONS: Final = ("delivery", "switch_to_paper", "cancellation")


class Code(StrEnum):
    """Receipt codes of ``doc.*`` transactions; every rejection carries one and a message."""

    NOT_PERMITTED = "NOT_PERMITTED"
    """Party does not let the sender submit this kind (not admitted, or no role grants it)."""
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    """The payload does not match the kind's schema; message ``<field>: <reason>``."""
    UNKNOWN_KIND = "UNKNOWN_KIND"
    """Not a doc kind: the runtime routed a transaction here that it should not have."""
    UNKNOWN_DOCUMENT = "UNKNOWN_DOCUMENT"
    """No document with that id."""
    NOT_HOLDER = "NOT_HOLDER"
    """Only the current holder may do this (``share_key``: the holder or the issuer)."""
    NOT_ISSUER = "NOT_ISSUER"
    """Only the issuer may amend a document."""
    WRONG_ROLE = "WRONG_ROLE"
    """The sender's roles do not fit: issuing this document type, or reporting this milestone."""
    NOT_NAMESPACE_OWNER = "NOT_NAMESPACE_OWNER"
    """The business key's namespace is assigned (by the council) to another member."""
    DUPLICATE_DOCUMENT = "DUPLICATE_DOCUMENT"
    """A document with this file hash is already registered (by anyone)."""
    DUPLICATE_BUSINESS_KEY = "DUPLICATE_BUSINESS_KEY"
    """The business key is already taken (by anyone; see ``queries.business_key_index``)."""
    ALREADY_PLEDGED = "ALREADY_PLEDGED"
    """The document has an active pledge: the duplicate-financing check."""
    PLEDGED = "PLEDGED"
    """The document has an active pledge, so it cannot be transferred, surrendered or amended."""
    NOT_PLEDGED = "NOT_PLEDGED"
    """There is no pledge to release."""
    PLEDGE_ACTIVE = "PLEDGE_ACTIVE"
    """The holder may release a pledge only once it has expired; the financier may at any time."""
    LIEN = "LIEN"
    """The document backs a later service's record (a receivable in a securitisation pool): it
    cannot move, be pledged, held or amended."""
    NOT_MANAGED = "NOT_MANAGED"
    """A command on a managed pledge (``managed.py``) names no pledge in force that the
    commanding service placed under that reference."""
    NOT_FINANCIER = "NOT_FINANCIER"
    """The named financier lacks the bank/factor role, or the releaser is not the financier."""
    NOT_NEGOTIABLE = "NOT_NEGOTIABLE"
    """Transfer and surrender apply to negotiable documents (documents of title) only."""
    SURRENDERED = "SURRENDERED"
    """The document was surrendered: that is final, nothing else can happen to it."""
    SUPERSEDED = "SUPERSEDED"
    """The document was amended: act on its newest version instead."""
    NOT_A_MEMBER = "NOT_A_MEMBER"
    """A party named in the payload (recipient, holder, financier) is not an admitted member."""
    HELD = "HELD"
    """The title is held for someone (``doc.hold``): it cannot move, be pledged or amended."""
    NOT_A_PARTY = "NOT_A_PARTY"
    """Rules v2: a milestone comes only from the document's parties of record."""
    HOLDER_CONSENT_REQUIRED = "HOLDER_CONSENT_REQUIRED"
    """Rules v2: amending a title document someone else holds needs the holder's signature."""
    NOT_OFFERED = "NOT_OFFERED"
    """Rules v2: no open pledge offer on the document names the sender as financier."""
    KYC_REQUIRED = "KYC_REQUIRED"
    """Rules v2: the sender or a named party has no verified, unexpired KYC attestation."""


def reject(code: Code, message: str) -> Rejected:
    """A rejection receipt with a plain ``str`` code (receipts canonicalise without enums)."""
    return Rejected(code.value, message)
