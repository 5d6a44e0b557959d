"""doc's indexes that others read, and the edges of its time rules, from a mutmut run over
``services/doc``: every version's file leads to its document, the milestone index trade's
escrow releases on holds exactly what was reported, and a pledge offer lapses at its expiry
time itself."""

from __future__ import annotations

from tests.doc.helpers import Cast, Ledger, bl_payload, file_hash
from tests.doc.test_v2_pledge import offer
from traco.core.domain import Rejected
from traco.services.doc import queries


def registered(ledger: Ledger, cast: Cast, label: str = "bl-1") -> str:
    payload = bl_payload(label, holder=cast.exporter.key)
    return str(ledger.ok(cast.carrier, "doc.register", payload).result["doc_id"])


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
