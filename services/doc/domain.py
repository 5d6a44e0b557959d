"""TracoDoc's rules (architecture: The code (doc)): a registry of trade documents as unique, hash-anchored assets,
their title, and the pledges that finance them, so that no document is ever financed twice.

This module is the ``Domain`` the service runtime drives (``traco.core.domain``): ``DOC.execute``
decides one ``doc.*`` transaction, ``DOC.mutate`` applies one of its events. Both are pure: block
time only (``tx.time``, ms), integers for amounts, no clock, randomness, floats or I/O. The work is
split by concern: ``payloads`` (schemas), ``rules`` (decisions), ``mutations`` (state),
``queries`` (key layout and reads), ``tables`` (types, roles, milestones, codes).

Kinds (payload schemas in ``payloads.py``)::

    doc.register    file_hash, type, business_key{namespace, reference, scope}, metadata?, holder?,
                    negotiable?, parties? (v2)          -> result {"doc_id"}  (doc_id = tx_id)
    doc.event       doc_id, milestone, occurred_at?, location?, details?
    doc.transfer    doc_id, to
    doc.surrender   doc_id, reason? ("delivery" | "switch_to_paper" | "cancellation")
    doc.pledge      doc_id, financier, amount, currency, expires_at, reference?   (v2: an offer)
    doc.pledge.accept  doc_id                           (v2: the financier puts its offer in force)
    doc.pledge.extend  doc_id, expires_at               (v2: the financier, later only)
    doc.release     doc_id                              (v2: the holder also withdraws offers)
    doc.amend       doc_id, file_hash, metadata?, reason?, holder_consent? (v2)
                                                        -> result {"doc_id": new version}
    doc.share_key   doc_id, keys{recipient public key: sealed box (base64)}

State key layout: see ``queries`` (``doc/<doc_id>``, ``hash/<file_hash>``,
``bkey/<type|goods>/<NS>/<REF>``, ``hist/<lineage>/<seq>``, ``key/<doc_id>/<recipient>``).

Rules versions (``versions.py``; architecture: Execution): ``TxContext.rules`` is the version in force at the
height. Version 1 is the rules below as first written, kept exactly for replaying old chains;
version 2 (new chains) fixes what money needs — milestones only from parties of record
(``NOT_A_PARTY``), a held title amended only with its holder's signed consent
(``HOLDER_CONSENT_REQUIRED``), pledges offered then accepted with a bounded term
(``pledges.py``), one canonical business-key namespace, and KYC (``KYC_REQUIRED``, checked
after the payload and before the kind's rule, for ``tables.KYC_PARTIES``).

Decisions (the why, in short; "v2" marks what version 2 changes):

* **Who may submit.** Party decides (``may_submit(view, sender, kind, time)``), else
  ``NOT_PERMITTED``; party's state is read only through ``traco.services.party.queries``. On top,
  the document type must fit the issuer's roles (``tables.ISSUER_ROLES``) and a milestone the
  reporter's (``tables.MILESTONE_ROLES``), else ``WRONG_ROLE``. Parties are identified by member
  id, so a key rotation does not strip a holder of its documents.
* **Uniqueness.** A file hash is registered once, ever, by anyone (``DUPLICATE_DOCUMENT``;
  amendments included). A business key is claimed once by anyone (``DUPLICATE_BUSINESS_KEY``):
  scope ``document`` makes (type, namespace, reference) unique; scope ``goods`` makes
  (namespace, reference) unique across *all* types, for references that name the goods (a lot,
  a consignment), so the same goods cannot be represented by both a B/L and a warehouse receipt.
  References compare without case and separators (``queries.normalise_reference``); v2:
  namespaces compare in party's canonical form (``NMFTA:MAEU`` is ``MAEU``), and a claim
  made under a version-1 spelling still counts.
  A namespace the council assigned to a member in party (``assign_namespace``: a carrier's
  SCAC, a warehouse's code) is that member's alone (``NOT_NAMESPACE_OWNER``), so no other issuer
  can squat its numbers; an unassigned namespace is open to any issuer of the type.
* **Holding.** Every document has a holder (the issuer, or the ``holder`` named at registration,
  who must be an admitted member): for an L/C the beneficiary, for an invoice the creditor. Only
  negotiable documents (B/L, warehouse receipt, unless registered ``negotiable: false``) can be
  transferred or surrendered (``NOT_NEGOTIABLE``); any document can be pledged (invoices are
  financed by factors).
* **Pledges and expiry** (``pledges.py``). A pledge is in force while ``block time < expires_at``; from
  ``expires_at`` on it counts as released without anyone acting. So: a second pledge is
  ``ALREADY_PLEDGED`` only while the first is in force; transfer, surrender and amendment are
  ``PLEDGED`` while one is in force and clear an expired one. The financier may release at any
  time; the holder only after expiry (``PLEDGE_ACTIVE`` before). Pledging to oneself is refused.
  v2: ``doc.pledge`` only offers; the financier's ``doc.pledge.accept`` puts it in force (and is
  refused ``ALREADY_PLEDGED`` while another is); terms at most ``tables.MAX_PLEDGE_MS`` ahead.
* **Surrender is final** for title: every later transfer, pledge, release, amendment,
  surrender or key sharing is ``SURRENDERED``. Milestones are still recorded (release and
  delivery of the cargo follow the surrender of its B/L; damage, payment, disputes can follow).
* **Milestones.** v2: only from the document's parties of record (``versions.parties_of_record``:
  issuer, holder, the registration's holder and ``parties``, the financier of a pledge in force).
* **Amendment.** Only the issuer amends (``NOT_ISSUER``); v2: a negotiable document held by
  another member also needs the holder's signature (``consent.py``). A document with a pledge in force
  cannot be amended (``PLEDGED``): the financier lent against a specific file, and silently
  moving its collateral to new bytes is what it must consent to, by releasing first. The new
  version (doc_id = the amending tx_id) keeps type, business key, issuer, holder and the
  lineage's history; the old one becomes ``superseded`` and accepts nothing (``SUPERSEDED``).
* **Key sharing.** Only the holder or the issuer may share; every recipient must be an admitted
  member. A share is stored per (version, recipient); sharing again replaces it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import cast

from traco.core.domain import BlockContext, ClauseEffect, Event, Outcome, StateView, TxContext
from traco.core.holds import SERVICE_PREFIX
from traco.services.doc import holds, managed, mutations, payloads, pledges, rules, tables
from traco.services.doc.rules import PartyQueries
from traco.services.doc.tables import Code, reject
from traco.services.doc.versions import kyc_refusal, rules_v2

PARTY_SERVICE = "party"
PARTY_QUERIES_MODULE = "traco.services.party.queries"


class DocDomain:
    """The doc service's ``Domain``.

    ``party`` supplies the four party reads; by default the module ``traco.services.party.queries``,
    imported on first use (so importing this module never depends on the party package).
    """

    service = tables.SERVICE
    kinds = tables.KINDS
    command_kinds = tables.COMMAND_KINDS

    def __init__(self, party: PartyQueries | None = None) -> None:
        self._party = party

    @property
    def party(self) -> PartyQueries:
        if self._party is None:
            self._party = cast(PartyQueries, importlib.import_module(PARTY_QUERIES_MODULE))
        return self._party

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        """Decide one ``doc.*`` transaction; bad input is a ``Rejected``, never an exception."""
        rule = rules.RULES.get(tx.kind) or pledges.RULES.get(tx.kind) or holds.RULES.get(tx.kind)
        if rule is None and tx.origin is not None:
            rule = managed.RULES.get(tx.kind)
        if tx.kind in tables.V2_KINDS and not rules_v2(tx):
            rule = None  # these kinds did not exist under version 1
        if rule is None:
            return reject(Code.UNKNOWN_KIND, f"{tx.kind!r} is not a doc transaction kind")
        members = upstream[PARTY_SERVICE]
        party = self.party
        sender: dict[str, str] | None
        if tx.origin is not None and tx.sender.startswith(SERVICE_PREFIX):
            sender = {"member_id": tx.sender, "key": tx.sender}  # a clause's command: the service itself
        else:
            # A command acts with its originating sender's authority; whether that sender may
            # submit the origin's kind was party's question at the origin.
            if tx.origin is None and not party.may_submit(members, tx.sender, tx.kind, tx.time):
                return reject(Code.NOT_PERMITTED, f"party does not permit {tx.sender} to submit {tx.kind}")
            sender = rules.member_ref(party, members, tx.sender, tx.time)
        if sender is None:
            return reject(Code.NOT_A_MEMBER, f"{tx.sender} is not a member's key")
        parsed = payloads.parse(tx.kind, tx.payload, tx.rules)
        if isinstance(parsed, str):
            return reject(Code.INVALID_PAYLOAD, parsed)
        if rules_v2(tx):
            refused = kyc_refusal(party, members, tx, tx.payload)
            if refused is not None:
                return refused
        ctx = rules.Context(state=state, members=members, party=party, tx=tx, sender=sender)
        return rule(ctx, parsed)

    def end_block(self, state: StateView, upstream: Mapping[str, StateView], block: BlockContext) -> list[ClauseEffect]:
        """Doc's clauses: ``hold_expiry`` returns every title hold due at this block."""
        return holds.end_block(state, block)

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        """The writes of one doc event (see ``mutations``)."""
        return mutations.mutate(state, event)


DOC = DocDomain()
"""The doc rules as the runtime uses them."""

__all__ = ["DOC", "DocDomain", "PartyQueries"]
