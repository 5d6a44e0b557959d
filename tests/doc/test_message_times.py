"""Receipt messages show times as ISO 8601 UTC, never raw epoch milliseconds (a person reads
them; decision 0011: messages are not hashed, so their wording may change)."""

from __future__ import annotations

import re

from tests.doc.helpers import DAY, Cast, Ledger, bl_payload
from traco.core.domain import Rejected
from traco.core.timefmt import iso_utc

RAW_MS = re.compile(r"(?<![0-9a-f])1[0-9]{12}(?![0-9a-f])")


def _refused(ledger: Ledger, *args: object) -> Rejected:
    outcome = ledger.submit(*args)  # type: ignore[arg-type]
    assert isinstance(outcome, Rejected), outcome
    assert not RAW_MS.search(outcome.message), outcome.message
    return outcome


def test_pledge_messages_show_iso_times(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"]
    expires = ledger.time + ledger.tick + DAY
    terms = {"doc_id": doc_id, "amount": 100, "currency": "USD", "expires_at": expires}
    ledger.ok(cast.exporter, "doc.pledge", {**terms, "financier": cast.bank_a.key})

    again = _refused(ledger, cast.exporter, "doc.pledge", {**terms, "financier": cast.bank_b.key})
    assert again.code == "ALREADY_PLEDGED" and f"until {iso_utc(expires)}" in again.message

    moved = _refused(ledger, cast.exporter, "doc.transfer", {"doc_id": doc_id, "to": cast.importer.key})
    assert moved.code == "PLEDGED" and f"until {iso_utc(expires)}" in moved.message

    early = _refused(ledger, cast.exporter, "doc.release", {"doc_id": doc_id})
    assert early.code == "PLEDGE_ACTIVE" and f"in force until {iso_utc(expires)}" in early.message

    past = _refused(ledger, cast.exporter, "doc.pledge", {**terms, "financier": cast.bank_b.key, "expires_at": 5})
    assert past.code == "INVALID_PAYLOAD"
    assert f"expires_at: {iso_utc(5)} is not after the block time {iso_utc(ledger.time)}" in past.message


def test_a_milestone_in_the_future_is_refused_with_iso_times(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-2", holder=cast.exporter.key)).result["doc_id"]
    later = ledger.time + 10 * DAY
    refused = _refused(
        ledger, cast.carrier, "doc.event", {"doc_id": doc_id, "milestone": "loaded", "occurred_at": later}
    )
    assert f"occurred_at: {iso_utc(later)} is after the block time {iso_utc(ledger.time)}" in refused.message
