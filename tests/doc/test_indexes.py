"""doc's indexes that others read, and the edges of its time rules, from a mutmut run over
``services/doc``: every version's file leads to its document, the milestone index trade's
escrow releases on holds exactly what was reported, and a pledge offer lapses at its expiry
time itself."""

from __future__ import annotations

from tests.doc.helpers import Cast, Ledger, file_hash, registered
from tests.doc.test_v2_pledge import offer
from traco.core.domain import Rejected
from traco.services.doc import queries, tables


def test_every_versions_file_leads_to_that_version(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    v2 = ledger.ok(cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("bl-1 v2")}).result["doc_id"]
    found = queries.by_hash(ledger.state, file_hash("bl-1 v2"), ledger.time)
    assert found is not None
    assert (found["doc_id"], found["superseded"], found["current"]["doc_id"]) == (v2, False, v2)
    old = queries.by_hash(ledger.state, file_hash("bl-1"), ledger.time)
    assert old is not None and (old["doc_id"], old["superseded"]) == (bl, True)


def test_the_milestone_index_holds_what_was_reported(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    ledger.ok(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "loaded"})
    reported = ledger.ok(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "delivered"})
    prefix = queries.milestones_at_prefix(ledger.height)
    entries = [(key, queries.read(ledger.state, key)) for key, _ in ledger.state.scan(prefix)]
    record = queries.document(ledger.state, bl)
    assert record is not None
    seq = record["history_length"] - 1  # the delivery is the last entry of the document's history
    assert entries == [
        (
            queries.milestone_at_key(ledger.height, record["lineage"], seq),
            {
                "doc_id": bl,
                "milestone": "delivered",
                "by": "carrier",
                "occurred_at": ledger.time,
                "tx_id": reported.events[0].data["tx_id"],
            },
        )
    ]


def test_a_pledge_offer_lapses_at_its_expiry_time_itself(ledger2: Ledger, cast: Cast) -> None:
    bl = registered(ledger2, cast)
    made = offer(ledger2, bl, cast.bank_a, ttl=ledger2.tick)  # expires one tick after it is made
    ledger2.ok(cast.exporter, "doc.pledge", made)
    assert ledger2.time + ledger2.tick == made["expires_at"]  # the next block is at the expiry
    refused = ledger2.submit(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})
    assert isinstance(refused, Rejected) and refused.code == "NOT_OFFERED"
    assert refused.message.startswith(f"no pledge of document {bl} offered to member bank-a has expired")
    again = offer(ledger2, bl, cast.bank_a, ttl=ledger2.tick + 1)  # one millisecond more: still live
    ledger2.ok(cast.exporter, "doc.pledge", again)
    ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})


def test_a_hold_on_an_amended_version_expires_under_the_documents_lineage(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    v2 = ledger.ok(cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("bl-1 v2")}).result["doc_id"]
    payload = {"hold_id": "h-2", "doc_id": v2, "beneficiary": cast.importer.key, "expires_height": ledger.height + 2}
    ledger.ok(cast.exporter, "doc.hold", payload)
    ledger.block([])
    (expired,) = [e for e in ledger.events if e.type == "TitleHoldExpired"]
    assert (expired.aggregate_id, expired.data["doc_id"]) == (bl, v2)  # keyed by lineage, about the version


def test_a_title_holds_life_is_written_into_the_documents_history(ledger: Ledger, cast: Cast) -> None:
    """What an auditor reads back: each step of a hold as its own history entry, with the terms."""
    bl = registered(ledger, cast)
    start = ledger.height
    hold = {"hold_id": "h-1", "doc_id": bl, "beneficiary": cast.importer.key, "expires_height": start + 10}
    ledger.ok(cast.exporter, "doc.hold", hold)
    ledger.ok(cast.exporter, "doc.hold.renew", {"hold_id": "h-1", "expires_height": start + 20})
    ledger.ok(cast.importer, "doc.hold.execute", {"hold_id": "h-1"})
    importer = {"key": cast.importer.key, "member_id": "importer"}
    steps = [(entry["type"], entry["details"]) for entry in queries.history(ledger.state, bl)[1:]]
    assert steps == [
        (
            "TitleHeld",
            {
                "hold_id": "h-1",
                "beneficiary": "importer",
                "notary": None,
                "expires_height": start + 10,
                "expires_time": None,
            },
        ),
        ("TitleHoldRenewed", {"hold_id": "h-1", "expires_height": start + 20, "expires_time": None}),
        ("TitleHoldExecuted", {"hold_id": "h-1", "status": "executed", "closed_by": "importer", "to": importer}),
    ]


def test_a_hold_is_made_and_renewed_only_within_the_bounded_term(ledger: Ledger, cast: Cast) -> None:
    bl = registered(ledger, cast)
    far = tables.MAX_HOLD_HEIGHTS + 1
    hold = {"hold_id": "h-1", "doc_id": bl, "beneficiary": cast.importer.key, "expires_height": ledger.height + 1 + far}
    made = ledger.submit(cast.exporter, "doc.hold", hold)
    assert isinstance(made, Rejected) and (made.code, made.message) == (
        "INVALID_PAYLOAD",
        f"expires_height: at most {tables.MAX_HOLD_HEIGHTS} heights ahead of {ledger.height}",
    )
    ledger.ok(cast.exporter, "doc.hold", {**hold, "expires_height": ledger.height + 10})
    renewed = ledger.submit(
        cast.exporter, "doc.hold.renew", {"hold_id": "h-1", "expires_height": ledger.height + 1 + far}
    )
    assert isinstance(renewed, Rejected) and renewed.code == "INVALID_PAYLOAD"
    timed = {"hold_id": "h-2", "doc_id": registered(ledger, cast, "bl-2"), "beneficiary": cast.importer.key}
    ledger.ok(cast.exporter, "doc.hold", {**timed, "expires_at": ledger.time + 10 * ledger.tick})
    too_late = ledger.time + ledger.tick + tables.MAX_HOLD_MS + 1
    renewed = ledger.submit(cast.exporter, "doc.hold.renew", {"hold_id": "h-2", "expires_at": too_late})
    assert isinstance(renewed, Rejected) and renewed.code == "INVALID_PAYLOAD"
    later = ledger.time + ledger.tick + tables.MAX_HOLD_MS
    ledger.ok(cast.exporter, "doc.hold.renew", {"hold_id": "h-2", "expires_at": later})
    stored = queries.read(ledger.state, queries.hold_key("h-2"))
    assert stored is not None and stored["expires_time"] == later
