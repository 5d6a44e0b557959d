"""Commands between services and clauses at the end of a block (architecture: Execution), with toy services.

``vault`` is upstream: members put items in it, and it takes an item out only by a command, and
only for the item's owner. ``desk`` is downstream: ``desk.ask`` commands the vault to take an
item out, and it records what became of each command; ``desk.timer`` sets a clause that fires
at a height. The tests check the timing the design promises (a command sent at H runs at the
start of H+1, the origin sees the outcome at H+2), the authority (the asking transaction's
sender, never a value the rules chose), the order, the system receipts, and that the runtime
over a bus, the auditor's replay and a rebuild agree to the digest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tests.consensus.chainkit import Kit
from tests.core.test_service_runtime import Chain, publish
from traco.core import commands as cmd
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryStateStore
from traco.core.domain import (
    Accepted,
    BlockContext,
    ClauseEffect,
    Command,
    CommandOutcome,
    Event,
    Outcome,
    Rejected,
    StateView,
    TxContext,
    encode,
)
from traco.core.service_runtime import ServiceRuntime
from traco.core.topics import chain_topics
from traco.schemas.block import SealedBlock
from traco.schemas.receipt import Receipt
from traco.services.consensus.audit_replay import ServiceReplay


class Vault:
    service = "vault"
    kinds = frozenset({"vault.put"})
    command_kinds = frozenset({"vault.take"})

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        item = str(tx.payload.get("item"))
        if tx.kind == "vault.put":
            if state.get(f"item/{item}") is not None:
                return Rejected("TAKEN", f"{item} is in the vault already")
            return Accepted((Event("Put", item, {"item": item, "owner": tx.sender}),))
        raw = state.get(f"item/{item}")
        if raw is None:
            return Rejected("NOT_FOUND", f"no {item} in the vault")
        if orjson.loads(raw)["owner"] != tx.sender or tx.origin != "desk":
            return Rejected("NOT_OWNER", f"{item} is not the authority's")
        return Accepted((Event("Taken", item, {"item": item, "by": tx.sender}),), {"item": item})

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        item = event.data["item"]
        if event.type == "Put":
            return {f"item/{item}": encode({"owner": event.data["owner"]})}
        return {f"item/{item}": None}


class Desk:
    service = "desk"
    kinds = frozenset({"desk.ask", "desk.timer"})

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        if tx.kind == "desk.timer":
            at = int(tx.payload["at"])
            return Accepted((Event("TimerSet", f"timer-{at}", {"at": at}),))
        item = str(tx.payload["item"])
        ask = Command(target="vault", kind="vault.take", payload={"item": item})
        return Accepted((Event("Asked", item, {"item": item}),), commands=(ask,))

    def on_command_outcome(
        self, state: StateView, upstream: Mapping[str, StateView], outcome: CommandOutcome, block: BlockContext
    ) -> Sequence[Event]:
        seen = {"command_id": outcome.command_id, "accepted": outcome.accepted, "code": outcome.code}
        return (Event("OutcomeSeen", outcome.command_id, {**seen, "vault_has": _items(upstream["vault"])}),)

    def end_block(self, state: StateView, upstream: Mapping[str, StateView], block: BlockContext) -> list[ClauseEffect]:
        effects = []
        for key, raw in state.scan("timer/"):
            at = orjson.loads(raw)["at"]
            if at <= block.height:
                effects.append(ClauseEffect("timer", key, (Event("Fired", key, {"key": key, "at": at}),)))
        return effects

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        if event.type == "TimerSet":
            return {f"timer/{event.data['at']:06d}": encode({"at": event.data["at"]})}
        if event.type == "Fired":
            return {event.data["key"]: None}
        if event.type == "OutcomeSeen":
            return {f"outcome/{event.data['command_id']}": encode(event.data)}
        return {f"asked/{event.data['item']}": encode(True)}


def _items(view: StateView) -> list[str]:
    return [key.removeprefix("item/") for key, _ in view.scan("item/")]


def replay() -> ServiceReplay:
    return ServiceReplay([Vault(), Desk()], {"desk": ("vault",)}, lambda _s: (), {"vault": ("desk",)})


def run(replayed: ServiceReplay, block: SealedBlock) -> dict[str, Any]:
    return {r.checkpoint.service: r for r in replayed.execute(block)}


def receipts(results: dict[str, Any], service: str) -> list[Receipt]:
    return list(results[service].receipts)


def test_a_command_runs_at_the_next_height_and_its_outcome_reaches_the_origin_one_later() -> None:
    chain, replayed = Chain(Kit()), replay()
    sender = chain.tx("vault.put", {"item": "gold"}).sender
    run(replayed, chain.block(chain.tx("vault.put", {"item": "gold"})))
    at2 = run(replayed, chain.block(chain.tx("desk.ask", {"item": "gold"})))
    sent = [e for e in at2["desk"].events if e.type == cmd.COMMAND_EVENT]
    assert len(sent) == 1 and sent[0].data["authority"] == sender and sent[0].data["target"] == "vault"
    assert _items(replayed.state("vault")) == ["gold"]  # nothing moved at the height it was asked

    at3 = run(replayed, chain.block())
    [taken] = receipts(at3, "vault")
    assert (taken.tx_id, taken.code, taken.index, taken.height) == (sent[0].data["command_id"], "OK", None, 3)
    assert _items(replayed.state("vault")) == []
    assert not [e for e in at3["desk"].events if e.type == "OutcomeSeen"]  # desk sees vault as of H-1

    at4 = run(replayed, chain.block())
    [seen] = [e for e in at4["desk"].events if e.type == "OutcomeSeen"]
    assert seen.data == {"command_id": taken.tx_id, "accepted": True, "code": "OK", "vault_has": []}
    assert seen.tx_index is None and seen.tx_id == taken.tx_id


def test_a_command_is_decided_under_the_targets_rules_with_the_senders_authority() -> None:
    kit = Kit()
    chain, replayed = Chain(kit), replay()
    run(replayed, chain.block(chain.tx("vault.put", {"item": "gold"})))
    other = Chain(kit)
    other.tx = lambda kind, payload: _signed_by(kit, 1, kind, payload)  # type: ignore[method-assign]
    run(replayed, chain.block(other.tx("desk.ask", {"item": "gold"}), other.tx("desk.ask", {"item": "lead"})))
    at3 = run(replayed, chain.block())
    assert [r.code for r in receipts(at3, "vault")] == ["NOT_OWNER", "NOT_FOUND"]
    assert _items(replayed.state("vault")) == ["gold"]
    at4 = run(replayed, chain.block())
    assert [(e.data["accepted"], e.data["code"]) for e in at4["desk"].events] == [
        (False, "NOT_OWNER"),
        (False, "NOT_FOUND"),
    ]


def _signed_by(kit: Kit, member: int, kind: str, payload: dict[str, Any]) -> Any:
    from traco.schemas.tx import sign_tx

    _signed_by.nonce = getattr(_signed_by, "nonce", 0) + 1  # type: ignore[attr-defined]
    return sign_tx(kit.member_keys[member], kit.chain_id, kind, _signed_by.nonce, payload)  # type: ignore[attr-defined]


def test_commands_of_one_height_run_in_position_order_and_a_direct_transaction_cannot_take() -> None:
    chain, replayed = Chain(Kit()), replay()
    run(replayed, chain.block(chain.tx("vault.put", {"item": "gold"})))
    asks = [chain.tx("desk.ask", {"item": "gold"}) for _ in range(2)]
    direct = chain.tx("vault.take", {"item": "gold"})
    at2 = run(replayed, chain.block(*asks, direct))
    assert receipts(at2, "vault") == []  # vault.take is not a transaction kind of the vault
    ids = [e.data["command_id"] for e in at2["desk"].events if e.type == cmd.COMMAND_EVENT]
    at3 = run(replayed, chain.block())
    assert [(r.tx_id, r.code) for r in receipts(at3, "vault")] == [(ids[0], "OK"), (ids[1], "NOT_FOUND")]
    assert len(set(ids)) == 2


def test_a_clause_fires_after_the_transactions_with_a_system_receipt_naming_it() -> None:
    chain, replayed = Chain(Kit()), replay()
    run(replayed, chain.block(chain.tx("desk.timer", {"at": 3})))
    assert [r.kind for r in run(replayed, chain.block())["desk"].receipts] == []
    txs = [chain.tx("desk.ask", {"item": "x"}), chain.tx("vault.put", {"item": "y"})]
    at3 = run(replayed, chain.block(*txs))
    [fired] = [e for e in at3["desk"].events if e.type == "Fired"]
    assert fired.tx_index == 2 and fired.position > max(e.position for e in at3["desk"].events if e.type == "Asked")
    clause = [r for r in at3["desk"].receipts if r.kind == "desk.clause.timer"]
    assert len(clause) == 1 and clause[0].result == {"clause": "timer", "subject": "timer/000003"}
    assert fired.tx_id == clause[0].tx_id and clause[0].index is None
    positions = [e.position for e in at3["desk"].events]
    assert positions == sorted(positions)  # position order is emission order (digests depend on it)
    assert replayed.state("desk").get("timer/000003") is None


async def test_runtimes_over_a_bus_run_in_lockstep_and_agree_with_the_replay() -> None:
    kit = Kit()
    chain, replayed = Chain(kit), replay()
    broker = MemoryBroker()
    feeder = MemoryEventBus(broker)
    await feeder.start()
    await feeder.ensure_topics(chain_topics(kit.chain_id, services=("vault", "desk")))
    order = ("vault", "desk")
    vault = ServiceRuntime(Vault(), kit.genesis, MemoryStateStore(), feeder, commanders=(Desk(),), order=order)
    desk = ServiceRuntime(Desk(), kit.genesis, MemoryStateStore(), feeder, upstream=(Vault(),), order=order)
    tasks = [asyncio.create_task(r.run()) for r in (vault, desk)]
    blocks = [
        chain.block(chain.tx("vault.put", {"item": "gold"}), chain.tx("desk.timer", {"at": 4})),
        chain.block(chain.tx("desk.ask", {"item": "gold"})),
        chain.block(),
        chain.block(chain.tx("desk.ask", {"item": "gold"})),
        chain.block(),
        chain.block(),
    ]
    digests: dict[str, list[str]] = {"vault": [], "desk": []}
    try:
        for block in blocks:
            await publish(feeder, block)
            for service, result in run(replayed, block).items():
                digests[service].append(result.checkpoint.state_digest)
        assert await vault.wait_for_height(6, 5) and await desk.wait_for_height(6, 5)
        for runtime in (vault, desk):
            service = runtime.domain.service
            assert [runtime.store.state_digest(h) for h in range(1, 7)] == digests[service]
        assert [r.code for r in vault.store.receipts(3)] == ["OK"]
        assert [r.code for r in vault.store.receipts(5)] == ["NOT_FOUND"]
    finally:
        for task in tasks:
            task.cancel()
