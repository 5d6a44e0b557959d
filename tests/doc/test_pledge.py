"""doc.pledge and doc.release: a document can be financed only once at a time; a pledge holds
until released by the financier or until it expires by block time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import DAY, Actor, Cast, Ledger, bl_payload, file_hash
from traco.core.domain import Accepted, Rejected
from traco.services.doc import queries


@pytest.fixture
def bl(ledger: Ledger, cast: Cast) -> str:
    return str(ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"])


def pledge(ledger: Ledger, doc_id: str, financier: Actor, *, ttl: int = DAY, **extra: Any) -> dict[str, Any]:
    """Pledge terms expiring ``ttl`` ms after the *next* block's time."""
    return {
        "doc_id": doc_id,
        "financier": financier.key,
        "amount": 250_000_00,
        "currency": "USD",
        "expires_at": ledger.time + ledger.tick + ttl,
        **extra,
    }


def test_a_pledge_is_recorded_and_in_force(ledger: Ledger, cast: Cast, bl: str) -> None:
    accepted = ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a, reference="LOAN-7"))
    terms = queries.active_pledge(ledger.state, bl, ledger.time)
    assert terms is not None
    assert terms["financier"]["member_id"] == "bank-a"
    assert (terms["amount"], terms["currency"], terms["reference"]) == (250_000_00, "USD", "LOAN-7")
    assert terms["tx_id"] == accepted.result["pledge_id"]
    assert queries.active_pledge(ledger.state, bl, terms["expires_at"]) is None


@pytest.mark.parametrize("second", ["bank_a", "bank_b", "factor"])
def test_a_pledged_document_cannot_be_pledged_again(ledger: Ledger, cast: Cast, bl: str, second: str) -> None:
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a))
    assert ledger.code(cast.exporter, "doc.pledge", pledge(ledger, bl, getattr(cast, second))) == "ALREADY_PLEDGED"


def test_double_financing_within_one_block_is_caught(ledger: Ledger, cast: Cast, bl: str) -> None:
    outcomes = ledger.block(
        [
            (cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a)),
            (cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_b)),
        ]
    )
    assert isinstance(outcomes[0], Accepted)
    assert isinstance(outcomes[1], Rejected) and outcomes[1].code == "ALREADY_PLEDGED"


def test_a_pledged_document_cannot_be_transferred_surrendered_or_amended(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a))
    assert ledger.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "PLEDGED"
    assert ledger.code(cast.exporter, "doc.surrender", {"doc_id": bl}) == "PLEDGED"
    assert ledger.code(cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("bl-1 v2")}) == "PLEDGED"


def test_after_release_everything_is_possible_again(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a))
    ledger.ok(cast.bank_a, "doc.release", {"doc_id": bl})
    assert queries.active_pledge(ledger.state, bl, ledger.time) is None
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_b))
    ledger.ok(cast.bank_b, "doc.release", {"doc_id": bl})
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})


def test_an_expired_pledge_counts_as_released(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a, ttl=5_000))
    expires_at = ledger.time + 5_000
    ledger.tick = 4_999
    assert ledger.code(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_b)) == "ALREADY_PLEDGED"
    ledger.tick = 1  # the block at exactly expires_at: no longer in force
    assert ledger.time + ledger.tick == expires_at
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    record = queries.document(ledger.state, bl)
    assert record is not None and record["pledge"] is None  # the lapsed pledge is cleared
    ledger.ok(cast.importer, "doc.pledge", pledge(ledger, bl, cast.bank_b))


def test_a_new_pledge_replaces_an_expired_one(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a, ttl=10))
    ledger.tick = DAY
    accepted = ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_b))
    assert accepted.events[0].data["lapsed_pledge"] is not None
    terms = queries.active_pledge(ledger.state, bl, ledger.time)
    assert terms is not None and terms["financier"]["member_id"] == "bank-b"


@pytest.mark.parametrize("who", ["carrier", "importer", "bank_a"])
def test_only_the_holder_may_pledge(ledger: Ledger, cast: Cast, bl: str, who: str) -> None:
    assert ledger.code(getattr(cast, who), "doc.pledge", pledge(ledger, bl, cast.bank_b)) == "NOT_HOLDER"


@pytest.mark.parametrize(("who", "code"), [("stranger", "NOT_A_MEMBER"), ("suspended", "NOT_A_MEMBER"),
                                           ("applicant", "NOT_A_MEMBER"), ("importer", "NOT_FINANCIER"),
                                           ("carrier", "NOT_FINANCIER")])  # fmt: skip
def test_the_financier_must_be_an_admitted_bank_or_factor(
    ledger: Ledger, cast: Cast, bl: str, who: str, code: str
) -> None:
    assert ledger.code(cast.exporter, "doc.pledge", pledge(ledger, bl, getattr(cast, who))) == code


def test_a_factor_may_finance_an_invoice(ledger: Ledger, cast: Cast) -> None:
    payload = {
        "file_hash": file_hash("inv-1"),
        "type": "invoice",
        "business_key": {"namespace": "MEMBER:EXPORTER", "reference": "INV/2024/001"},
    }
    invoice = ledger.ok(cast.exporter, "doc.register", payload).result["doc_id"]
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, invoice, cast.factor))


def test_no_pledge_to_oneself(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-9", holder=cast.bank_a.key)).result["doc_id"]
    assert ledger.code(cast.bank_a, "doc.pledge", pledge(ledger, doc_id, cast.bank_a)) == "INVALID_PAYLOAD"


@pytest.mark.parametrize(
    "bad",
    [{"amount": 0}, {"amount": -5}, {"amount": 1.5}, {"amount": "100"}, {"amount": True}, {"amount": 2**60},
     {"currency": "usd"}, {"currency": "US"}, {"currency": "USDT"}, {"expires_at": -1}, {"financier": "bank-a"}],
)  # fmt: skip
def test_pledge_terms_are_validated(ledger: Ledger, cast: Cast, bl: str, bad: dict[str, Any]) -> None:
    outcome = ledger.submit(cast.exporter, "doc.pledge", {**pledge(ledger, bl, cast.bank_a), **bad})
    assert isinstance(outcome, Rejected) and outcome.code == "INVALID_PAYLOAD"
    assert outcome.message.startswith(f"{next(iter(bad))}: ")


def test_the_expiry_must_be_after_the_block_time(ledger: Ledger, cast: Cast, bl: str) -> None:
    terms = {**pledge(ledger, bl, cast.bank_a), "expires_at": ledger.time + ledger.tick}
    assert ledger.code(cast.exporter, "doc.pledge", terms) == "INVALID_PAYLOAD"


def test_release_rules(ledger: Ledger, cast: Cast, bl: str) -> None:
    assert ledger.code(cast.bank_a, "doc.release", {"doc_id": bl}) == "NOT_PLEDGED"
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a, ttl=10_000))
    assert ledger.code(cast.bank_b, "doc.release", {"doc_id": bl}) == "NOT_FINANCIER"
    assert ledger.code(cast.carrier, "doc.release", {"doc_id": bl}) == "NOT_FINANCIER"
    assert ledger.code(cast.exporter, "doc.release", {"doc_id": bl}) == "PLEDGE_ACTIVE"
    ledger.tick = 10_000
    accepted = ledger.ok(cast.exporter, "doc.release", {"doc_id": bl})  # the holder, after expiry
    assert accepted.events[0].data["expired"] is True
    assert ledger.code(cast.bank_a, "doc.release", {"doc_id": bl}) == "NOT_PLEDGED"


def test_the_financier_may_release_early(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.pledge", pledge(ledger, bl, cast.bank_a))
    accepted = ledger.ok(cast.bank_a, "doc.release", {"doc_id": bl})
    assert accepted.events[0].data["expired"] is False
    kinds = [entry["type"] for entry in queries.history(ledger.state, bl)]
    assert kinds == ["DocumentRegistered", "DocumentPledged", "PledgeReleased"]
