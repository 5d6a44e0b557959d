"""What doc records and answers, pinned where a mutation run (mutmut over doc's title rules)
found nothing checking it: the receipt results integrators read and the results root commits
to, the details each history entry keeps, the stamp of a record's last change, and three
boundaries — a milestone at the block time itself, a key shared only with a key valid at the
block time, a title hold that is due in the very block that would execute it.
"""

from __future__ import annotations

from typing import Any

from tests.doc.helpers import DAY, T0, Cast, Ledger, file_hash, registered
from traco.core.domain import Accepted, Rejected
from traco.services.doc import client, queries

FILE_KEY = b"k" * 32


def last_entry(ledger: Ledger, doc_id: str) -> dict[str, Any]:
    return queries.history(ledger.state, doc_id)[-1]


def test_every_change_stamps_the_record_with_its_transaction(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    moved = ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    record = queries.document(ledger.state, bl)
    assert record is not None
    assert record["updated"] == {"tx_id": last_entry(ledger, bl)["tx_id"], "height": ledger.height, "time": ledger.time}
    assert moved.events[0].data["tx_id"] == record["updated"]["tx_id"]


def test_the_results_of_surrender_and_the_title_hold_kinds(ledger2: Ledger, cast: Cast) -> None:
    bl = registered(ledger2, cast)
    hold = {"doc_id": bl, "hold_id": "h-1", "beneficiary": cast.importer.key, "expires_height": ledger2.height + 20}
    assert ledger2.ok(cast.exporter, "doc.hold", hold).result == {"doc_id": bl, "hold_id": "h-1"}
    renewed = ledger2.ok(cast.exporter, "doc.hold.renew", {"hold_id": "h-1", "expires_height": ledger2.height + 30})
    assert renewed.result == {"hold_id": "h-1"}
    assert ledger2.ok(cast.importer, "doc.hold.release", {"hold_id": "h-1"}).result == {"hold_id": "h-1"}
    ledger2.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    assert ledger2.ok(cast.importer, "doc.surrender", {"doc_id": bl}).result == {"doc_id": bl}


def test_the_results_of_extending_a_pledge_and_withdrawing_offers(ledger2: Ledger, cast: Cast) -> None:
    bl = registered(ledger2, cast)
    terms = {"doc_id": bl, "amount": 1_000, "currency": "USD", "expires_at": ledger2.time + 10 * DAY}
    ledger2.ok(cast.exporter, "doc.pledge", {**terms, "financier": cast.bank_a.key})
    assert ledger2.ok(cast.exporter, "doc.release", {"doc_id": bl}).result == {"doc_id": bl}  # the offer withdrawn
    ledger2.ok(cast.exporter, "doc.pledge", {**terms, "financier": cast.bank_a.key})
    ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})
    later = ledger2.time + 20 * DAY
    extended = ledger2.ok(cast.bank_a, "doc.pledge.extend", {"doc_id": bl, "expires_at": later})
    assert extended.result == {"doc_id": bl, "expires_at": later}


def test_the_history_keeps_what_an_amendment_and_a_key_share_were(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    shared = client.share_key_payload(bl, FILE_KEY, [cast.importer.key, cast.bank_a.key])
    ledger.ok(cast.exporter, "doc.share_key", shared)
    assert last_entry(ledger, bl)["details"] == {"recipients": sorted([cast.importer.key, cast.bank_a.key])}
    new_id = ledger.ok(cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("v2"), "reason": "typo"})
    amended = [e for e in queries.history(ledger.state, bl) if e["type"] == "DocumentAmended"]
    assert [e["details"] for e in amended] == [
        {"new_doc_id": new_id.result["doc_id"], "file_hash": file_hash("v2"), "reason": "typo"}
    ]


def test_a_milestone_may_have_occurred_at_the_block_time_itself(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    at_block = ledger.time + ledger.tick
    ledger.ok(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "loaded", "occurred_at": at_block})
    late = {"doc_id": bl, "milestone": "departed", "occurred_at": ledger.time + ledger.tick + 1}
    assert ledger.code(cast.carrier, "doc.event", late) == "INVALID_PAYLOAD"


def test_a_key_is_shared_only_with_a_key_valid_at_the_block_time(ledger: Ledger, cast: Cast) -> None:
    """The exporter's rotated-out key counts until its overlap ends, and not after."""
    bl = registered(ledger, cast)
    ledger.ok(cast.carrier, "doc.share_key", client.share_key_payload(bl, FILE_KEY, [cast.exporter_old.key]))
    ledger.time = T0 + 30 * DAY
    payload = client.share_key_payload(bl, FILE_KEY, [cast.exporter_old.key])
    assert ledger.code(cast.carrier, "doc.share_key", payload) == "NOT_A_MEMBER"


def test_a_title_hold_due_by_time_cannot_be_executed_in_the_block_that_returns_it(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    due = ledger.time + 3 * ledger.tick
    ledger.ok(
        cast.exporter, "doc.hold", {"doc_id": bl, "hold_id": "h-1", "beneficiary": cast.importer.key, "expires_at": due}
    )
    ledger.block([])
    late = ledger.submit(cast.importer, "doc.hold.execute", {"hold_id": "h-1"})  # the block at the expiry time
    assert ledger.time == due
    assert isinstance(late, Rejected) and late.code == "HOLD_EXPIRED"
    record = queries.document(ledger.state, bl)
    assert record is not None and record["holder"]["member_id"] == "exporter" and record["hold"] is None


def test_a_hold_notary_must_be_an_admitted_member(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    for notary in (cast.stranger.key, cast.suspended.key):
        hold = {
            "doc_id": bl,
            "hold_id": "h-1",
            "beneficiary": cast.importer.key,
            "notary": notary,
            "expires_height": 50,
        }
        assert ledger.code(cast.exporter, "doc.hold", hold) == "NOT_A_MEMBER"


def test_a_service_notary_releases_by_its_own_command_only(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    hold = {
        "doc_id": bl,
        "hold_id": "h-1",
        "beneficiary": cast.importer.key,
        "notary": "service:bridge",
        "expires_height": 50,
    }
    ledger.ok(cast.exporter, "doc.hold", hold)
    [by_trade] = ledger.block([(cast.exporter, "doc.hold.release", {"hold_id": "h-1"})], origin="trade")
    assert isinstance(by_trade, Rejected)
    [by_bridge] = ledger.block([(cast.exporter, "doc.hold.release", {"hold_id": "h-1"})], origin="bridge")
    assert isinstance(by_bridge, Accepted)
    record = queries.document(ledger.state, bl)
    assert record is not None and record["hold"] is None and record["holder"]["member_id"] == "exporter"
