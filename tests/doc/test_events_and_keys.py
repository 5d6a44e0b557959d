"""doc.event (behaviour records, reported by the right role) and doc.share_key (a document's
key sealed to chosen members, which only they can open)."""

from __future__ import annotations

import base64

import pytest

from tests.doc.helpers import Actor, Cast, Ledger, bl_payload
from traco.core.domain import Rejected
from traco.services.doc import client, queries, tables

FILE_KEY = bytes(range(32))


@pytest.fixture
def bl(ledger: Ledger, cast: Cast) -> str:
    return str(ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"])


def reporter(cast: Cast, role: str) -> Actor:
    return {
        "carrier": cast.carrier,
        "warehouse": cast.warehouse,
        "exporter": cast.exporter,
        "importer": cast.importer,
        "bank": cast.bank_a,
        "insurer": cast.insurer,
        "regulator": cast.regulator,
    }[role]


@pytest.mark.parametrize(
    ("milestone", "role"), sorted((m, r) for m, roles in tables.MILESTONE_ROLES.items() for r in roles)
)
def test_each_milestone_is_reported_by_its_roles(
    ledger: Ledger, cast: Cast, bl: str, milestone: str, role: str
) -> None:
    ledger.ok(reporter(cast, role), "doc.event", {"doc_id": bl, "milestone": milestone})


@pytest.mark.parametrize(
    ("who", "milestone"),
    [("exporter", "loaded"), ("bank_a", "departed"), ("carrier", "goods_accepted"), ("carrier", "customs_cleared"),
     ("importer", "stored"), ("factor", "paid")],
)  # fmt: skip
def test_a_milestone_from_the_wrong_role_is_refused(
    ledger: Ledger, cast: Cast, bl: str, who: str, milestone: str
) -> None:
    assert ledger.code(getattr(cast, who), "doc.event", {"doc_id": bl, "milestone": milestone}) == "WRONG_ROLE"


def test_a_milestone_is_recorded_with_its_time_and_place(ledger: Ledger, cast: Cast, bl: str) -> None:
    loaded_at = ledger.time - 3_600_000
    payload = {"doc_id": bl, "milestone": "loaded", "occurred_at": loaded_at, "location": "CNSHA",
               "details": {"containers": 2, "seal": "SL-1"}}  # fmt: skip
    ledger.ok(cast.carrier, "doc.event", payload)
    ledger.ok(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "departed"})
    record = queries.document(ledger.state, bl)
    assert record is not None
    assert record["last_milestone"]["milestone"] == "departed"
    assert record["last_milestone"]["occurred_at"] == ledger.time  # default: block time
    loaded = queries.history(ledger.state, bl)[1]
    assert loaded["type"] == "MilestoneRecorded"
    assert loaded["details"] == {"milestone": "loaded", "occurred_at": loaded_at, "location": "CNSHA",
                                 "details": {"containers": 2, "seal": "SL-1"}}  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [{"milestone": "teleported"}, {"occurred_at": 2**52}, {"location": "Shanghai"}, {"details": {"weight": 1.5}}],
)
def test_milestone_payloads_are_validated(ledger: Ledger, cast: Cast, bl: str, bad: dict[str, object]) -> None:
    outcome = ledger.submit(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "loaded", **bad})
    assert isinstance(outcome, Rejected) and outcome.code == "INVALID_PAYLOAD"
    assert outcome.message.startswith(f"{next(iter(bad))}")


def test_the_holder_shares_the_key_and_only_recipients_open_it(ledger: Ledger, cast: Cast, bl: str) -> None:
    payload = client.share_key_payload(bl, FILE_KEY, [cast.importer.public, cast.bank_a.key])
    accepted = ledger.ok(cast.exporter, "doc.share_key", payload)
    assert accepted.result["recipients"] == 2
    shares = queries.shared_keys(ledger.state, bl)
    assert sorted(shares) == sorted([cast.importer.key, cast.bank_a.key])
    for actor in (cast.importer, cast.bank_a):
        share = queries.shared_key(ledger.state, bl, actor.key)
        assert share is not None and share["by"]["member_id"] == "exporter"
        assert client.open_sealed_key(actor.seed, share["sealed"]) == FILE_KEY
    with pytest.raises(ValueError, match="does not open"):
        client.open_sealed_key(cast.bank_b.seed, shares[cast.importer.key]["sealed"])


def test_the_issuer_may_share_too(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.carrier, "doc.share_key", client.share_key_payload(bl, FILE_KEY, [cast.importer.key]))


@pytest.mark.parametrize("who", ["importer", "bank_a", "carrier2"])
def test_others_may_not_share(ledger: Ledger, cast: Cast, bl: str, who: str) -> None:
    payload = client.share_key_payload(bl, FILE_KEY, [cast.importer.key])
    assert ledger.code(getattr(cast, who), "doc.share_key", payload) == "NOT_HOLDER"


@pytest.mark.parametrize("who", ["stranger", "applicant", "suspended"])
def test_recipients_must_be_members(ledger: Ledger, cast: Cast, bl: str, who: str) -> None:
    payload = client.share_key_payload(bl, FILE_KEY, [cast.importer.key, getattr(cast, who).key])
    assert ledger.code(cast.exporter, "doc.share_key", payload) == "NOT_A_MEMBER"


@pytest.mark.parametrize(
    "sealed",
    ["not base64!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(200)).decode(), "QUJD"],
)
def test_sealed_boxes_are_checked_for_shape(ledger: Ledger, cast: Cast, bl: str, sealed: str) -> None:
    outcome = ledger.submit(cast.exporter, "doc.share_key", {"doc_id": bl, "keys": {cast.importer.key: sealed}})
    assert isinstance(outcome, Rejected) and outcome.code == "INVALID_PAYLOAD"
    assert outcome.message.startswith("keys.")
