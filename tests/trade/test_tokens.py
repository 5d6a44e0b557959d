"""Transfers and holds of amounts, driven through ``execute_service_block`` as the runtime will:
a held amount cannot move, holds close only as ``traco.core.holds`` allows, and the clause
returns an expired hold at exactly the first block at or past its expiry, on an idle chain too."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.trade.helpers import DAY, Chain
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import queries as q

COCO = "COCO"


def funded() -> Chain:
    chain = Chain()
    for who in ("exporter", "importer"):
        chain.ok(chain.cast.council1, "trade.transfer", {"token": COCO, "to": who, "amount": 1_000})
    return chain


def hold(chain: Chain, hold_id: str = "h1", **extra: Any) -> dict[str, Any]:
    payload = {"hold_id": hold_id, "token": COCO, "beneficiary": "importer", "amount": 600}
    payload.update(extra)
    if "expires_height" not in payload and "expires_time" not in payload:
        payload["expires_height"] = chain.height + 10
    return chain.ok(chain.cast.exporter, "trade.hold.create", payload)


def test_transfer_moves_available_balance_and_refuses_what_it_must() -> None:
    chain = funded()
    cast = chain.cast
    assert chain.account("exporter", COCO) == {"total": 1_000, "held": 0, "locked": 0, "available": 1_000}
    assert chain.code(cast.exporter, "trade.transfer", {"token": COCO, "to": "importer", "amount": 1_001}) == (
        "INSUFFICIENT_FUNDS"
    )
    assert chain.code(cast.exporter, "trade.transfer", {"token": COCO, "to": "exporter", "amount": 1}) == (
        "SELF_TRANSFER"
    )
    assert chain.code(cast.exporter, "trade.transfer", {"token": COCO, "to": "applicant", "amount": 1}) == (
        "NOT_A_MEMBER"
    )
    assert chain.code(cast.exporter, "trade.transfer", {"token": "NOPE", "to": "importer", "amount": 1}) == (
        "UNKNOWN_TOKEN"
    )
    assert chain.code(cast.exporter, "trade.transfer", {"token": COCO, "to": "importer", "amount": "1"}) == (
        "INVALID_PAYLOAD"
    )
    assert chain.code(cast.carrier, "trade.transfer", {"token": COCO, "to": "importer", "amount": 1}) == (
        "NOT_PERMITTED"
    )
    assert chain.code(cast.stranger, "trade.transfer", {"token": COCO, "to": "importer", "amount": 1}) == (
        "NOT_PERMITTED"
    )
    chain.ok(cast.exporter, "trade.transfer", {"token": COCO, "to": "importer", "amount": 400})
    assert (chain.total("exporter", COCO), chain.total("importer", COCO)) == (600, 1_400)
    assert chain.replay() == chain.snapshot()


def test_a_held_amount_cannot_move_and_shows_as_held() -> None:
    chain = funded()
    hold(chain)
    assert chain.account("exporter", COCO) == {"total": 1_000, "held": 600, "locked": 0, "available": 400}
    assert chain.code(chain.cast.exporter, "trade.transfer", {"token": COCO, "to": "bank-a", "amount": 401}) == "HELD"
    assert chain.code(
        chain.cast.exporter,
        "trade.hold.create",
        {"hold_id": "h2", "token": COCO, "beneficiary": "bank-a", "amount": 401, "expires_height": 99},
    ) == ("HELD")
    chain.ok(chain.cast.exporter, "trade.transfer", {"token": COCO, "to": "bank-a", "amount": 400})
    assert chain.account("exporter", COCO)["available"] == 0


def test_execute_in_part_returns_the_rest_and_ids_are_never_reused() -> None:
    chain = funded()
    hold(chain)
    cast = chain.cast
    assert chain.code(cast.exporter, "trade.hold.execute", {"hold_id": "h1"}) == "NOT_BENEFICIARY"
    assert chain.ok(cast.importer, "trade.hold.execute", {"hold_id": "h1", "amount": 250}) == {
        "hold_id": "h1",
        "executed": 250,
        "returned": 350,
    }
    assert chain.account("exporter", COCO) == {"total": 750, "held": 0, "locked": 0, "available": 750}
    assert chain.total("importer", COCO) == 1_250
    assert chain.code(cast.importer, "trade.hold.execute", {"hold_id": "h1"}) == "HOLD_CLOSED"
    assert chain.code(
        cast.exporter,
        "trade.hold.create",
        {"hold_id": "h1", "token": COCO, "beneficiary": "importer", "amount": 1, "expires_height": 99},
    ) == ("HOLD_EXISTS")
    assert chain.code(cast.importer, "trade.hold.release", {"hold_id": "nope"}) == "UNKNOWN_HOLD"
    assert chain.replay() == chain.snapshot()


def test_notary_decides_beneficiary_may_refuse_owner_may_only_renew() -> None:
    chain = funded()
    cast = chain.cast
    hold(chain, notary="bank-a")
    assert chain.code(cast.importer, "trade.hold.execute", {"hold_id": "h1"}) == "NOT_BENEFICIARY"
    assert chain.code(cast.exporter, "trade.hold.release", {"hold_id": "h1"}) == "NOT_BENEFICIARY"
    record = q.hold(chain.state, "h1")
    assert record is not None and record.expires_height is not None
    later = record.expires_height + 5
    assert chain.code(cast.importer, "trade.hold.renew", {"hold_id": "h1", "expires_height": later}) == "NOT_OWNER"
    assert chain.code(cast.exporter, "trade.hold.renew", {"hold_id": "h1", "expires_height": 3}) == "INVALID_EXPIRY"
    chain.ok(cast.exporter, "trade.hold.renew", {"hold_id": "h1", "expires_height": later})
    assert chain.ok(cast.importer, "trade.hold.release", {"hold_id": "h1"})["status"] == "released_by_beneficiary"
    assert chain.account("exporter", COCO)["available"] == 1_000
    assert not list(chain.state.scan("hexp/")), "a closed hold leaves no expiry index entry"


def test_the_clause_returns_a_hold_at_exactly_its_expiry_height() -> None:
    chain = funded()
    cast = chain.cast
    hold(chain, expires_height=chain.height + 3)
    eh = chain.height + 2  # the hold was just created at chain.height with expiry (height - 1) + 3
    chain.block()  # eh - 1: still live
    assert chain.height == eh - 1
    assert q.hold(chain.state, "h1").is_open  # type: ignore[union-attr]
    result = chain.block([(cast.importer, "trade.hold.execute", {"hold_id": "h1"})])
    assert chain.height == eh
    codes = [(r.kind, r.code) for r in result.receipts]
    assert codes == [("trade.hold.execute", "HOLD_EXPIRED"), ("trade.clause.hold_expiry", "OK")]
    assert result.receipts[1].result == {"clause": "hold_expiry", "subject": "h1"}
    assert q.hold(chain.state, "h1").status.value == "expired"  # type: ignore[union-attr]
    assert chain.account("exporter", COCO) == {"total": 1_000, "held": 0, "locked": 0, "available": 1_000}
    assert not list(chain.state.scan("hexp/"))
    assert chain.replay() == chain.snapshot()


def test_one_block_before_expiry_the_beneficiary_still_executes() -> None:
    chain = funded()
    hold(chain, expires_height=chain.height + 3)  # created at height + 1, due at height + 3
    assert chain.ok(chain.cast.importer, "trade.hold.execute", {"hold_id": "h1"})["executed"] == 600
    assert chain.height + 1 == q.hold(chain.state, "h1").expires_height  # type: ignore[union-attr]


def test_time_expiry_is_exact_and_survives_a_long_idle_gap() -> None:
    chain = funded()
    cast = chain.cast
    start = chain.time
    hold(chain, "soon", expires_time=start + 3_500)  # created at start + 1,000
    hold(chain, "later", expires_time=start + 30 * DAY, amount=100)  # at start + 2,000
    chain.block(dt=1_000)  # start + 3,000: not yet
    assert q.hold(chain.state, "soon").is_open  # type: ignore[union-attr]
    result = chain.block([(cast.importer, "trade.hold.execute", {"hold_id": "soon"})], dt=500)  # exactly at expiry
    assert chain.time == start + 3_500
    assert [r.code for r in result.receipts] == ["HOLD_EXPIRED", "OK"]
    assert q.hold(chain.state, "soon").status.value == "expired"  # type: ignore[union-attr]
    assert q.hold(chain.state, "soon").closed_by == "service:trade"  # type: ignore[union-attr]
    chain.block(dt=40 * DAY)  # idle for weeks: one block far later
    assert q.hold(chain.state, "later").status.value == "expired"  # type: ignore[union-attr]
    assert chain.account("exporter", COCO)["held"] == 0
    assert not list(chain.state.scan("hexp/"))
    assert chain.replay() == chain.snapshot()


def test_lock_ends_at_its_height() -> None:
    chain = Chain(section=trade_genesis.development_section(founders_locked_until_height=3))
    founder = chain.cast.council2
    move = {"token": COCO, "to": "exporter", "amount": 1}
    assert chain.code(founder, "trade.transfer", move) == "LOCKED_UNTIL"  # height 1
    assert chain.code(founder, "trade.transfer", move) == "LOCKED_UNTIL"  # height 2
    chain.ok(founder, "trade.transfer", move)  # height 3
    assert chain.total("exporter", COCO) == 1


def test_asset_class_flags_bind_transfers_and_holds() -> None:
    section = trade_genesis.development_section()
    section["asset_classes"].append(
        {"name": "badge", "transferable": False, "holdable": False, "eligibility": "members", "decimals": 0}
    )
    section["tokens"].append(
        {"token": "BADGE", "name": "Badge", "asset_class": "badge", "allocations": {"exporter": 5}}
    )
    chain = Chain(section=section)
    cast = chain.cast
    assert chain.code(cast.exporter, "trade.transfer", {"token": "BADGE", "to": "importer", "amount": 1}) == (
        "NOT_TRANSFERABLE"
    )
    payload = {"hold_id": "b", "token": "BADGE", "beneficiary": "importer", "amount": 1, "expires_height": 50}
    assert chain.code(cast.exporter, "trade.hold.create", payload) == "NOT_HOLDABLE"
    assert chain.supply("BADGE") == 5


def test_payloads_are_strict_and_name_every_problem() -> None:
    chain = funded()
    receipt = chain.run(
        chain.cast.exporter, "trade.transfer", {"token": "coco", "to": "Importer", "amount": 1.5, "extra": 1}
    )
    assert receipt.code == "INVALID_PAYLOAD"
    for field in ("token", "to", "amount", "extra"):
        assert field in receipt.message


def test_a_chain_without_a_trade_section_has_no_trade_state() -> None:
    chain = Chain(section=None)
    assert chain.snapshot() == {}
    cast = chain.cast
    assert chain.code(cast.custodian, "trade.trc.attest", {"reserve": 1, "as_of": chain.time, "seq": 1}) == (
        "NOT_CONFIGURED"
    )
    assert chain.code(cast.exporter, "trade.transfer", {"token": COCO, "to": "importer", "amount": 1}) == (
        "UNKNOWN_TOKEN"
    )
    assert chain.block().receipts == ()  # no clause fires on an empty ledger


def test_a_service_notary_decides_only_by_its_own_command() -> None:
    from traco.core.domain import DictState, TxContext

    chain = funded()
    hold(chain, notary="service:bridge")
    tx = TxContext("tradetest", chain.height + 1, -1, chain.time + 1, "ab" * 32, chain.cast.importer.key, "", {})
    by_command = replace(tx, kind="trade.hold.execute", payload={"hold_id": "h1"}, origin="bridge")
    by_other = replace(by_command, origin="doc")
    overlay = DictState(base=chain.state)
    assert chain.domain.execute(overlay, {"party": chain.party}, by_other).code == "NOT_BENEFICIARY"  # type: ignore[union-attr]
    assert chain.domain.execute(overlay, {"party": chain.party}, by_command).result["executed"] == 600  # type: ignore[union-attr]
    assert chain.code(chain.cast.importer, "trade.hold.execute", {"hold_id": "h1"}) == "NOT_BENEFICIARY"
