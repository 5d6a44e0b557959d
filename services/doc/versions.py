"""Which version of doc's rules decides (architecture: Execution: rules are versioned by activation height).

``TxContext.rules`` is the version in force at the transaction's height: the genesis's
(``ChainParams.rules``, 1 when unset) until a council ``upgrade`` moves it up. Every rule whose
decision changed asks ``rules_v2(tx)``; version 1 keeps exactly the old decisions (payload
schemas included), so replaying a chain made before the fixes gives the same receipts and bytes
(decision 0021). New chains (``traco init``) start at version 2.

What version 2 changes in doc:

1. **Milestones from parties of record** (``doc.event``): the issuer (the carrier of a B/L),
   the current holder, the holder named at registration, the members named in the
   registration's ``parties`` (a v2 payload field: notify party, consignee, the L/C's
   applicant…) and the financier of a pledge in force — besides the role check
   (``NOT_A_PARTY``).
2. **Amending a held title** (``doc.amend`` of a negotiable document whose holder is not the
   issuer) needs the holder's signature over the amendment (``holder_consent``, a v2 payload
   field; ``HOLDER_CONSENT_REQUIRED``), see ``consent.py``.
3. **Pledges bind a financier only when it accepts** (``pledges.py``): ``doc.pledge`` offers,
   ``doc.pledge.accept`` by the financier puts it in force, ``doc.pledge.extend`` by the
   financier moves its expiry; a term is at most ``tables.MAX_PLEDGE_MS`` ahead.
4. **One canonical namespace form** for the business-key index and namespace ownership
   (party's ``canonical_namespace``: ``NMFTA:MAEU`` is ``MAEU``).
5. **KYC enforced** for the kinds and parties in ``tables.KYC_PARTIES`` (``KYC_REQUIRED``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traco.core.domain import Rejected, StateView, TxContext
from traco.core.holds import SERVICE_PREFIX
from traco.services.doc import queries, tables
from traco.services.doc.tables import Code, reject

RULES_VERSION = 2
"""The newest version of doc's rules this binary knows; new chains start at it."""


def rules_v2(tx: TxContext) -> bool:
    """True where version 2 of doc's rules is in force at ``tx``'s height."""
    return tx.rules >= 2


def kyc_refusal(party: Any, members: StateView, tx: TxContext, payload: Mapping[str, Any]) -> Rejected | None:
    """Version 2: ``KYC_REQUIRED`` naming every party of ``tx`` that ``tables.KYC_PARTIES``
    lists without a verified, unexpired KYC attestation, else ``None``. A named key that is not
    a member's is left to the rule (``NOT_A_MEMBER``); a service acting by command has no KYC."""
    problems = []
    for field in tables.KYC_PARTIES.get(tx.kind, ()):
        key = tx.sender if field == "sender" else payload.get(field)
        if not isinstance(key, str) or key.startswith(SERVICE_PREFIX):
            continue
        if field != "sender" and party.member(members, key, tx.time) is None:
            continue
        problem = party.kyc_problem(members, key, tx.time)
        if problem is not None:
            problems.append(f"{field}: {problem}")
    if not problems:
        return None
    return reject(Code.KYC_REQUIRED, f"{tx.kind} needs verified KYC in party: {'; '.join(problems)}")


def registration_holder(state: StateView, record: Mapping[str, Any]) -> str | None:
    """The member id named holder when the document's lineage was registered (its first
    history entry), for records made before ``parties`` was stored."""
    first = queries.read(state, queries.history_key(record["lineage"], 0))
    if first is None or first.get("type") != "DocumentRegistered":
        return None
    holder = first["details"].get("holder")
    return holder.get("member_id") if isinstance(holder, dict) else None


def parties_of_record(state: StateView, record: Mapping[str, Any], time: int) -> set[str]:
    """Member ids that may report milestones on ``record`` under version 2: issuer, current
    holder, the registration's holder and named ``parties``, the financier of a pledge in force."""
    found = {record["issuer"]["member_id"], record["holder"]["member_id"]}
    named = record.get("parties")
    if isinstance(named, list):
        found.update(ref["member_id"] for ref in named)
    else:  # registered under version 1: the holder it named then
        first = registration_holder(state, record)
        if first is not None:
            found.add(first)
    pledge = queries.pledge_in_force(record, time)
    if pledge is not None:
        found.add(pledge["financier"]["member_id"])
    return found


__all__ = ["RULES_VERSION", "kyc_refusal", "parties_of_record", "registration_holder", "rules_v2"]
