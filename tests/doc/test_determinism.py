"""Determinism: the same transactions give byte-identical state and events, and replaying the
events alone (what an auditor does) rebuilds exactly that state."""

from __future__ import annotations

import orjson

from tests.doc.helpers import DAY, Cast, Ledger, bl_payload, file_hash
from traco.core.domain import DictState, Domain, Event, Outcome, encode
from traco.services.doc import client, mutations
from traco.services.doc.domain import DOC

CAST = Cast()
SEALED = client.seal_key_for(CAST.bank_b.public, b"w" * 32)  # sealing is randomised: seal once


def scenario(ledger: Ledger, cast: Cast) -> list[Outcome]:
    """Every kind, accepted and rejected, several per block (the same transactions every call)."""
    outcomes = ledger.block(
        [
            (cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)),
            (cast.carrier2, "doc.register", bl_payload("bl-1")),  # duplicate
            (cast.warehouse, "doc.register", {"file_hash": file_hash("wr-1"), "type": "warehouse_receipt",
                                              "business_key": {"namespace": "W", "reference": "LOT-1",
                                                               "scope": "goods"}}),
        ]
    )  # fmt: skip
    bl, wr = outcomes[0].result["doc_id"], outcomes[2].result["doc_id"]  # type: ignore[union-attr]
    expires = ledger.time + DAY
    outcomes += ledger.block(
        [
            (cast.carrier, "doc.event", {"doc_id": bl, "milestone": "loaded", "location": "CNSHA"}),
            (cast.exporter, "doc.pledge", client.pledge_payload(bl, cast.bank_a.key, 1_000_00, "USD", expires)),
            (cast.exporter, "doc.pledge", client.pledge_payload(bl, cast.bank_b.key, 1_000_00, "USD", expires)),
            (cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}),
            (cast.warehouse, "doc.share_key", {"doc_id": wr, "keys": {cast.bank_b.key: SEALED}}),
        ]
    )
    outcomes += ledger.block(
        [
            (cast.bank_a, "doc.release", {"doc_id": bl}),
            (cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}),
            (cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("bl-1 v2")}),
            (cast.importer, "doc.pledge", client.pledge_payload(bl, cast.factor.key, 7, "EUR", expires)),
        ]
    )
    head = outcomes[-2].result["doc_id"]  # type: ignore[union-attr]
    ledger.time += 2 * DAY
    outcomes += ledger.block(
        [
            (cast.importer, "doc.pledge", client.pledge_payload(head, cast.factor.key, 7, "EUR", ledger.time + DAY)),
            (cast.importer, "doc.release", {"doc_id": head}),
            (cast.warehouse, "doc.pledge", client.pledge_payload(wr, cast.bank_b.key, 3, "CNY", ledger.time + DAY)),
        ]
    )
    ledger.time += DAY
    outcomes += ledger.block(
        [
            (cast.warehouse, "doc.release", {"doc_id": wr}),
            (cast.importer, "doc.surrender", {"doc_id": head}),
            (cast.importer, "doc.transfer", {"doc_id": head, "to": cast.exporter.key}),
        ]
    )
    return outcomes


def replay(events: list[Event]) -> DictState:
    state = DictState()
    for event in events:
        state.apply(mutations.mutate(state, event))
    return state


def test_same_transactions_give_byte_identical_state() -> None:
    first, second = Ledger(party=CAST.view()), Ledger(party=CAST.view())
    outcomes_1, outcomes_2 = scenario(first, CAST), scenario(second, CAST)
    assert outcomes_1 == outcomes_2
    assert first.snapshot() == second.snapshot()
    assert [encode(dict(e.data)) for e in first.events] == [encode(dict(e.data)) for e in second.events]
    assert [getattr(o, "code", "OK") for o in outcomes_1] == [
        "OK", "DUPLICATE_DOCUMENT", "OK",
        "OK", "OK", "ALREADY_PLEDGED", "PLEDGED", "OK",
        "OK", "OK", "OK", "SUPERSEDED",
        "OK", "PLEDGE_ACTIVE", "OK",
        "OK", "OK", "SURRENDERED",
    ]  # fmt: skip


def test_replaying_the_events_rebuilds_the_state() -> None:
    ledger = Ledger(party=CAST.view())
    scenario(ledger, CAST)
    assert replay(ledger.events).data == ledger.state.data


def test_state_is_canonical_json_without_floats() -> None:
    ledger = Ledger(party=CAST.view())
    scenario(ledger, CAST)

    def no_floats(value: object) -> bool:
        if isinstance(value, float):
            return False
        if isinstance(value, dict):
            return all(no_floats(v) for v in value.values())
        if isinstance(value, list):
            return all(no_floats(v) for v in value)
        return True

    for key, raw in ledger.snapshot().items():
        value = orjson.loads(raw)
        assert encode(value) == raw, key
        assert no_floats(value), key
    for event in ledger.events:
        assert no_floats(dict(event.data)) and encode(dict(event.data))


def test_the_module_level_domain_is_the_service() -> None:
    domain: Domain = DOC  # mypy checks the protocol
    assert domain.service == "doc"
    assert domain.kinds == frozenset(
        {"doc.register", "doc.event", "doc.transfer", "doc.surrender", "doc.pledge", "doc.release", "doc.amend",
         "doc.share_key", "doc.hold", "doc.hold.execute", "doc.hold.release", "doc.hold.renew",
         "doc.pledge.accept", "doc.pledge.extend"}
    )  # fmt: skip
