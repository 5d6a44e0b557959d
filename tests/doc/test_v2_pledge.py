"""Rules version 2 pledges (decision 0021): a pledge binds a financier only when it accepts,
for a bounded term it alone extends; an offer does not encumber, an accepted pledge does; the
encumbrance rules with holds stay one. Version 1's immediate, unbounded pledge is kept."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import CHAIN, DAY, FAR_FUTURE, Actor, Cast, Ledger, bl_payload, file_hash
from traco.services.doc import consent, queries, tables


@pytest.fixture
def bl(ledger2: Ledger, cast: Cast) -> str:
    payload = bl_payload("bl-1", holder=cast.exporter.key)
    return str(ledger2.ok(cast.carrier, "doc.register", payload).result["doc_id"])


def offer(ledger: Ledger, doc_id: str, financier: Actor, ttl: int = 30 * DAY, **extra: Any) -> dict[str, Any]:
    expires = ledger.time + ledger.tick + ttl
    return {
        "doc_id": doc_id,
        "financier": financier.key,
        "amount": 1_000,
        "currency": "USD",
        "expires_at": expires,
        **extra,
    }


def in_force(ledger: Ledger, doc_id: str) -> str | None:
    terms = queries.active_pledge(ledger.state, doc_id, ledger.time)
    return None if terms is None else str(terms["financier"]["member_id"])


def test_v1_a_pledge_binds_at_once_for_any_term_and_v2_kinds_do_not_exist(ledger: Ledger, cast: Cast) -> None:
    doc_id = str(ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"])
    ledger.ok(cast.exporter, "doc.pledge", offer(ledger, doc_id, cast.bank_a, ttl=FAR_FUTURE))
    assert in_force(ledger, doc_id) == "bank-a"
    assert ledger.code(cast.bank_a, "doc.pledge.accept", {"doc_id": doc_id}) == "UNKNOWN_KIND"
    assert ledger.code(cast.bank_a, "doc.pledge.extend", {"doc_id": doc_id, "expires_at": FAR_FUTURE}) == "UNKNOWN_KIND"


def test_v2_an_offer_binds_no_one_until_the_financier_accepts(ledger2: Ledger, cast: Cast, bl: str) -> None:
    result = ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a)).result
    assert result["status"] == "offered" and in_force(ledger2, bl) is None
    accepted = ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})
    assert accepted.result == {"doc_id": bl, "pledge_id": result["pledge_id"], "status": "in_force"}
    assert in_force(ledger2, bl) == "bank-a"
    types = [entry["type"] for entry in queries.history(ledger2.state, bl)]
    assert types == ["DocumentRegistered", "PledgeOffered", "DocumentPledged"]
    assert ledger2.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "PLEDGED"


def test_v2_offers_do_not_block_each_other_the_first_acceptance_does(ledger2: Ledger, cast: Cast, bl: str) -> None:
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a))
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_b))
    ledger2.ok(cast.bank_b, "doc.pledge.accept", {"doc_id": bl})
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": bl}) == "ALREADY_PLEDGED"
    assert ledger2.code(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.factor)) == "ALREADY_PLEDGED"
    assert ledger2.code(cast.bank_b, "doc.pledge.accept", {"doc_id": bl}) == "NOT_OFFERED"  # consumed
    ledger2.ok(cast.bank_b, "doc.release", {"doc_id": bl})
    ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})  # its offer stood
    assert in_force(ledger2, bl) == "bank-a"


def test_v2_only_the_named_financier_accepts_a_live_offer(ledger2: Ledger, cast: Cast, bl: str) -> None:
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a, ttl=5_000))
    assert ledger2.code(cast.factor, "doc.pledge.accept", {"doc_id": bl}) == "NOT_OFFERED"
    assert ledger2.code(cast.exporter, "doc.pledge.accept", {"doc_id": bl}) == "NOT_OFFERED"
    ledger2.tick = 5_000
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": bl}) == "NOT_OFFERED"  # expired


def test_v2_a_title_change_clears_offers(ledger2: Ledger, cast: Cast, bl: str) -> None:
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a))
    ledger2.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})  # offers do not encumber
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": bl}) == "NOT_OFFERED"
    ledger2.ok(cast.importer, "doc.pledge", offer(ledger2, bl, cast.bank_a))
    new_id = ledger2.ok(
        cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("v2"), "holder_consent": _c(cast, bl)}
    )
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": new_id.result["doc_id"]}) == "NOT_OFFERED"


def _c(cast: Cast, doc_id: str) -> dict[str, str]:
    """The importer's (the holder's) consent to amending ``doc_id`` to the file ``v2``."""
    signature = consent.sign_amend(cast.importer.seed, CHAIN, doc_id, file_hash("v2"), None)
    return {"key": cast.importer.key, "signature": signature}


def test_v2_the_holder_withdraws_its_offers_with_release(ledger2: Ledger, cast: Cast, bl: str) -> None:
    assert ledger2.code(cast.exporter, "doc.release", {"doc_id": bl}) == "NOT_PLEDGED"
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a))
    assert ledger2.code(cast.bank_b, "doc.release", {"doc_id": bl}) == "NOT_PLEDGED"
    ledger2.ok(cast.exporter, "doc.release", {"doc_id": bl})
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": bl}) == "NOT_OFFERED"


def test_v2_the_term_is_bounded_and_only_the_financier_extends(ledger2: Ledger, cast: Cast, bl: str) -> None:
    assert (
        ledger2.code(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a, ttl=FAR_FUTURE)) == "INVALID_PAYLOAD"
    )
    limit = tables.MAX_PLEDGE_MS
    assert (
        ledger2.code(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a, ttl=limit + 1)) == "INVALID_PAYLOAD"
    )
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a, ttl=limit))
    extend = {"doc_id": bl, "expires_at": ledger2.time + 2 * DAY}
    assert ledger2.code(cast.bank_a, "doc.pledge.extend", extend) == "NOT_PLEDGED"
    ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})
    terms = queries.active_pledge(ledger2.state, bl, ledger2.time)
    assert terms is not None
    later = {"doc_id": bl, "expires_at": terms["expires_at"] + DAY}
    assert ledger2.code(cast.exporter, "doc.pledge.extend", later) == "NOT_FINANCIER"
    assert (
        ledger2.code(cast.bank_a, "doc.pledge.extend", {**later, "expires_at": terms["expires_at"]})
        == "INVALID_PAYLOAD"
    )
    ledger2.time += 10 * DAY
    far = {"doc_id": bl, "expires_at": ledger2.time + ledger2.tick + limit + 1}
    assert ledger2.code(cast.bank_a, "doc.pledge.extend", far) == "INVALID_PAYLOAD"
    ledger2.ok(cast.bank_a, "doc.pledge.extend", later)
    extended = queries.active_pledge(ledger2.state, bl, ledger2.time)
    assert extended is not None and extended["expires_at"] == later["expires_at"]


def test_v2_holds_and_pledges_stay_one_encumbrance_rule(ledger2: Ledger, cast: Cast, bl: str) -> None:
    ledger2.ok(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_a))
    hold = {"hold_id": "h-1", "doc_id": bl, "beneficiary": cast.importer.key, "expires_height": 50}
    ledger2.ok(cast.exporter, "doc.hold", hold)  # an offer does not encumber
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": bl}) == "HELD"
    assert ledger2.code(cast.exporter, "doc.pledge", offer(ledger2, bl, cast.bank_b)) == "HELD"
    ledger2.ok(cast.importer, "doc.hold.release", {"hold_id": "h-1"})
    ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})
    other = {**hold, "hold_id": "h-2"}
    assert ledger2.code(cast.exporter, "doc.hold", other) == "PLEDGED"
    ledger2.ok(cast.exporter, "doc.hold", {**other, "beneficiary": cast.bank_a.key})  # the pledgee enforces
    ledger2.ok(cast.bank_a, "doc.hold.execute", {"hold_id": "h-2"})
    record = queries.document(ledger2.state, bl)
    assert record is not None and record["holder"]["member_id"] == "bank-a" and in_force(ledger2, bl) is None
