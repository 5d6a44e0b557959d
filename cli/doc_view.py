"""What ``traco doc show`` and ``traco doc verify`` print for a person: a dozen lines, not the API's answer.

Why: the doc API answers with the registered version, the newest version (often the same
object twice), every history entry and the endorsements: about 200 lines for one bill of lading,
in which the three things a person asks (who holds it, is it pledged, what happened last) are
hard to find. These functions pick those out; ``--json`` still prints the whole answer. Members
are shown by their id (their key only where no member id is known), ids and hashes in full,
times in ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from traco.core.timefmt import iso_utc
from traco.services.doc.client import EntryVerdict

LAST_EVENTS = 5
"""How many of the newest history entries the concise view lists."""


def who(ref: Any) -> str:
    """A member reference (``{"member_id", "key"}``) as a person names it."""
    if isinstance(ref, Mapping):
        return str(ref.get("member_id") or ref.get("key") or "?")
    return "—" if ref is None else str(ref)


def pledge_text(terms: Any, in_force: bool | None) -> str:
    """``to bank-a: 1000000 USD (minor units) until 2027-…Z``, and whether it is still in force."""
    if not isinstance(terms, Mapping):
        return "none"
    text = (
        f"to {who(terms.get('financier'))}: {terms.get('amount')} {terms.get('currency')} (minor units)"
        f" until {iso_utc(terms.get('expires_at'))}"
    )
    if terms.get("reference"):
        text += f", ref {terms['reference']}"
    if in_force is False:
        text += " — expired, not released"
    return text


def entry_detail(entry: Mapping[str, Any]) -> str:
    """The one thing worth saying about a history entry beside its type (counterparty, milestone)."""
    details = entry.get("details")
    if not isinstance(details, Mapping):
        return ""
    if "amount" in details and "financier" in details:
        return pledge_text(details, None)
    if entry.get("type") == "PledgeReleased":
        return f"pledge of {who(details.get('financier'))}" + (" (expired)" if details.get("expired") else "")
    if "to" in details:
        return f"to {who(details['to'])}"
    if "milestone" in details:
        where = f" at {details['location']}" if details.get("location") else ""
        return f"{details['milestone']}{where}"
    if details.get("reason"):
        return str(details["reason"])
    return ""


def event_lines(history: Sequence[Any], verdicts: Sequence[EntryVerdict] = ()) -> list[str]:
    """The newest ``LAST_EVENTS`` history entries, one line each (with the proof's verdict if given)."""
    entries = [e for e in history if isinstance(e, Mapping)]
    shown = entries[-LAST_EVENTS:]
    verdict_of = {v.seq: v for v in verdicts}
    lines = [f"events      {len(entries)}" + (f" (the last {len(shown)})" if len(shown) < len(entries) else "")]
    for entry in shown:
        line = (
            f"  #{entry.get('seq')}  {iso_utc(entry.get('time'))}  block {entry.get('height')}"
            f"  {entry.get('type')}  by {who(entry.get('by'))}"
        )
        detail = entry_detail(entry)
        if detail:
            line += f"  {detail}"
        verdict = verdict_of.get(entry.get("seq"))
        if verdict is not None:
            line += f"  → {verdict.describe()}"
        lines.append(line)
    return lines


def _record_lines(record: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    key = record.get("business_key")
    business = f"{key.get('namespace')}/{key.get('reference')}" if isinstance(key, Mapping) else "—"
    if isinstance(key, Mapping) and key.get("scope") == "goods":
        business += " (goods)"
    negotiable = "negotiable" if record.get("negotiable") else "not negotiable"
    registered = record.get("registered")
    stamp = registered if isinstance(registered, Mapping) else {}
    lines = [
        f"document    {record.get('doc_id')}",
        f"type        {record.get('type')}, {negotiable}, version {record.get('version')}",
        f"business    {business}",
        f"file        SHA-256 {record.get('file_hash')}",
        f"registered  {iso_utc(stamp.get('time'))} in block {stamp.get('height')}",
        f"issuer      {who(record.get('issuer'))}",
    ]
    if head.get("doc_id") != record.get("doc_id"):
        lines.append(f"superseded  by version {head.get('version')}: {head.get('doc_id')}")
    lines.append(f"holder      {who(head.get('holder'))}")
    return lines


def show_lines(answer: Mapping[str, Any]) -> list[str]:
    """``GET /documents/{id}``'s answer, concisely (holder, pledge and status are the newest version's)."""
    record = answer.get("document") if isinstance(answer.get("document"), Mapping) else {}
    head = answer.get("current") if isinstance(answer.get("current"), Mapping) else record
    assert isinstance(record, Mapping) and isinstance(head, Mapping)
    in_force = answer.get("pledge_in_force")
    terms = in_force if in_force is not None else head.get("pledge")
    lines = _record_lines(record, head)
    lines.append(f"pledge      {pledge_text(terms, None if terms is None else in_force is not None)}")
    lines.append(f"status      {head.get('status')}")
    history = answer.get("history")
    lines += event_lines(history if isinstance(history, list) else [])
    lines.append(f"as of block {answer.get('as_of_height')}; everything: --json")
    return lines


def verify_lines(found: Mapping[str, Any], verdicts: Sequence[EntryVerdict]) -> list[str]:
    """``GET /documents/by-hash``'s answer with each entry's proof verdict, concisely."""
    record = found.get("document") if isinstance(found.get("document"), Mapping) else {}
    head = found.get("current") if isinstance(found.get("current"), Mapping) else record
    assert isinstance(record, Mapping) and isinstance(head, Mapping)
    terms = found.get("pledge")
    pledged = found.get("pledged")
    lines = _record_lines(record, head)
    lines.append(f"pledge      {pledge_text(terms, None if terms is None else bool(pledged))}")
    lines.append(f"status      {found.get('status')}")
    history = found.get("history")
    lines += event_lines(history if isinstance(history, list) else [], verdicts)
    older = [v for v in verdicts[: max(0, len(verdicts) - LAST_EVENTS)] if v.status != "proven"]
    lines += [f"  #{v.seq}  block {v.height}  {v.type}  → {v.describe()}" for v in older]
    return lines
