"""Title holds at their edges: a beneficiary who stops being an admitted member, what the expiry
clause records, the longest term a hold may have; and the holder's consent to an amendment as
exact bytes, refusing malformed hex.

Found by mutmut over doc's title rules (``rules``, ``holds``, ``pledges``, ``mutations``,
``consent``): these paths decided right, but no test walked them."""

from __future__ import annotations

import orjson

from tests.doc.helpers import Cast, Ledger, registered
from tests.doc.test_holds import hold
from tests.doc.test_v2_pledge import offer
from traco.core import crypto
from traco.core.domain import encode
from traco.services.doc import consent, queries, tables
from traco.services.doc.holds import load


def set_status(ledger: Ledger, cast: Cast, status: str) -> None:
    """Party's record of the importer now says ``status`` (as a council vote would)."""
    raw = ledger.party.get(f"member/{cast.importer.key}")
    assert raw is not None
    ledger.party.apply({f"member/{cast.importer.key}": encode({**orjson.loads(raw), "status": status})})


def test_a_held_title_never_goes_to_a_beneficiary_who_is_no_longer_admitted(ledger: Ledger, cast: Cast) -> None:
    """The notary decides, but the title goes to the beneficiary: while the beneficiary is
    suspended, executing is refused and the hold stays open; once re-admitted, it executes."""
    doc_id = registered(ledger, cast)
    ledger.ok(cast.exporter, "doc.hold", hold(doc_id, cast.importer.key, notary=cast.bank_a.key, expires_height=99))
    set_status(ledger, cast, "suspended")
    assert ledger.code(cast.bank_a, "doc.hold.execute", {"hold_id": "h-1"}) == "NOT_A_MEMBER"
    stored = load(ledger.state, "h-1")
    assert stored is not None and stored["status"] == "ordered"
    record = queries.document(ledger.state, doc_id)
    assert record is not None and record["holder"]["member_id"] == "exporter"
    set_status(ledger, cast, "admitted")
    executed = ledger.ok(cast.bank_a, "doc.hold.execute", {"hold_id": "h-1"})
    assert executed.result["holder"]["member_id"] == "importer"


def test_the_expiry_clause_records_the_height_and_the_service_that_closed_the_hold(ledger: Ledger, cast: Cast) -> None:
    doc_id = registered(ledger, cast)
    expires = ledger.height + 2
    ledger.ok(cast.exporter, "doc.hold", hold(doc_id, cast.importer.key, expires_height=expires))
    ledger.block([])
    (expired,) = [e for e in ledger.events if e.type == "TitleHoldExpired"]
    assert expired.aggregate_id == doc_id  # the document's lineage: its first version's id
    assert expired.data["by"] == {"member_id": "service:doc", "key": "service:doc"}
    assert (expired.data["hold"]["closed_height"], expired.data["hold"]["status"]) == (expires, "expired")
    assert (expired.data["height"], expired.data["time"], expired.data["tx_id"]) == (expires, ledger.time, None)


def test_a_hold_may_run_exactly_the_longest_term_and_not_one_height_more(ledger: Ledger, cast: Cast) -> None:
    doc_id = registered(ledger, cast)
    at = ledger.height + 1  # the height the next transaction runs at
    too_far = hold(doc_id, cast.importer.key, expires_height=at + tables.MAX_HOLD_HEIGHTS + 1)
    assert ledger.code(cast.exporter, "doc.hold", too_far) == "INVALID_PAYLOAD"
    at = ledger.height + 1
    ledger.ok(cast.exporter, "doc.hold", hold(doc_id, cast.importer.key, expires_height=at + tables.MAX_HOLD_HEIGHTS))


def test_the_amendment_consent_is_these_exact_bytes() -> None:
    """What a holder's client signs off the chain: changing it would void every consent given."""
    message = consent.amend_message("main", "ab" * 32, "cd" * 32, {"port": "Rotterdam"})
    assert message == (
        b'{"chain_id":"main","doc_id":"' + b"ab" * 32 + b'","file_hash":"' + b"cd" * 32 + b'",'
        b'"metadata":{"port":"Rotterdam"},"purpose":"traco/doc.amend.consent/v1"}'
    )
    assert consent.amend_message("main", "ab" * 32, "cd" * 32, None).endswith(
        b'"metadata":null,"purpose":"traco/doc.amend.consent/v1"}'
    )


def test_a_consent_with_malformed_hex_does_not_verify() -> None:
    seed = bytes(range(32))
    message = consent.amend_message("main", "ab" * 32, "cd" * 32, None)
    signature = consent.sign_amend(seed, "main", "ab" * 32, "cd" * 32, None)
    key = crypto.public_key(seed).hex()
    assert consent.verifies(key, message, signature)
    assert not consent.verifies(key, message + b" ", signature)
    assert not consent.verifies("zz" + key[2:], message, signature)
    assert not consent.verifies(key, message, signature[:-1])


def test_a_documents_history_names_every_step_with_its_terms(ledger2: Ledger, cast: Cast) -> None:
    """What ``traco doc verify`` and an auditor read: each entry's type and details."""
    ledger = ledger2
    doc_id = registered(ledger, cast)
    terms = offer(ledger, doc_id, cast.bank_a)  # 1,000 USD for 30 days
    expires = terms["expires_at"]
    pledge_tx = ledger.ok(cast.exporter, "doc.pledge", terms)
    ledger.ok(cast.exporter, "doc.release", {"doc_id": doc_id})  # withdraws the offer
    assert queries.document(ledger.state, doc_id)["offers"] == {}  # type: ignore[index]
    ledger.ok(cast.exporter, "doc.pledge", terms)
    accepted = ledger.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": doc_id})
    ledger.ok(cast.bank_a, "doc.pledge.extend", {"doc_id": doc_id, "expires_at": expires + 1_000})
    ledger.ok(cast.bank_a, "doc.release", {"doc_id": doc_id})
    ledger.ok(cast.exporter, "doc.surrender", {"doc_id": doc_id, "reason": "delivery"})
    entries = queries.history(ledger.state, doc_id)
    assert [e["type"] for e in entries] == [
        "DocumentRegistered",
        "PledgeOffered",
        "PledgeOffersWithdrawn",
        "PledgeOffered",
        "DocumentPledged",
        "PledgeExtended",
        "PledgeReleased",
        "DocumentSurrendered",
    ]
    details = {e["type"]: e["details"] for e in entries}
    assert details["PledgeOffersWithdrawn"] == {"financiers": [{"member_id": "bank-a", "key": cast.bank_a.key}]}
    assert pledge_tx.events[0].type == "PledgeOffered"
    pledge_id = accepted.events[0].data["pledge"]["tx_id"]
    assert details["DocumentPledged"] == {
        "financier": {"member_id": "bank-a", "key": cast.bank_a.key},
        "amount": 1_000,
        "currency": "USD",
        "expires_at": expires,
        "reference": None,
    }
    assert details["PledgeExtended"] == {
        "pledge_id": pledge_id,
        "previous_expires_at": expires,
        "expires_at": expires + 1_000,
    }
    assert details["PledgeReleased"] == {
        "pledge_id": pledge_id,
        "financier": {"member_id": "bank-a", "key": cast.bank_a.key},
        "expired": False,
    }
    assert details["DocumentSurrendered"] == {
        "holder": {"member_id": "exporter", "key": cast.exporter.key},
        "reason": "delivery",
    }
    record = queries.document(ledger.state, doc_id)
    assert record is not None and record["pledge"] is None and record["status"] == "surrendered"


def test_the_holder_frees_a_lapsed_pledge_from_the_instant_it_expires(ledger2: Ledger, cast: Cast) -> None:
    ledger = ledger2
    doc_id = registered(ledger, cast)
    terms = offer(ledger, doc_id, cast.bank_a, ttl=2 * ledger.tick + 500, amount=1)
    expires = terms["expires_at"]
    ledger.ok(cast.exporter, "doc.pledge", terms)
    ledger.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": doc_id})
    ledger.time = expires - 1 - ledger.tick  # the next block runs one ms before the expiry
    assert ledger.code(cast.exporter, "doc.release", {"doc_id": doc_id}) == "PLEDGE_ACTIVE"
    ledger.time = expires - ledger.tick  # the next block runs at the expiry itself
    released = ledger.ok(cast.exporter, "doc.release", {"doc_id": doc_id})
    assert released.events[0].data["expired"] is True
