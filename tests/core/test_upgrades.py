"""Upgrades by activation height (architecture: Execution), with toy services: a service not in the genesis
stays dormant until the schedule activates it, then starts from the section the upgrade gave
it (as events its downstreams see), and rules move to a new version at a height; the replay and
the runtime over a bus agree to the digest at every height."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from tests.consensus.chainkit import Kit
from tests.core.test_service_runtime import Chain, publish
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryStateStore
from traco.core.domain import Accepted, Event, Outcome, StateView, TxContext, encode
from traco.core.schedule import SCHEDULE_SOURCE, active_services, step
from traco.core.service_runtime import ServiceRuntime
from traco.core.topics import chain_topics
from traco.schemas.genesis import ChainParams
from traco.services.consensus.audit_replay import ServiceReplay


class Council:
    """Stands in for party: ``party.schedule {service, height, version?}`` records an upgrade."""

    service = SCHEDULE_SOURCE
    kinds = frozenset({"party.schedule"})

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        return Accepted((Event("Scheduled", str(tx.payload["service"]), dict(tx.payload)),))

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        data = event.data
        if "version" in data:
            return {f"rules/{data['service']}/{data['height']:08d}": encode(data["version"])}
        return {f"activation/{data['service']}": encode({"height": data["height"], "section": data["section"]})}


class ToySchedule:
    def activation_height(self, view: StateView, service: str) -> int | None:
        raw = view.get(f"activation/{service}")
        return None if raw is None else int(orjson.loads(raw)["height"])

    def upgrade_section(self, view: StateView, service: str) -> dict[str, Any] | None:
        raw = view.get(f"activation/{service}")
        return None if raw is None else dict(orjson.loads(raw)["section"])

    def rules_version(self, view: StateView, service: str, height: int) -> int | None:
        version = None
        for key, raw in view.scan(f"rules/{service}/"):
            if int(key.rsplit("/", 1)[1]) <= height:
                version = int(orjson.loads(raw))
        return version


class Late:
    """The service an upgrade turns on: ``late.ping`` answers with the rules version."""

    service = "late"
    kinds = frozenset({"late.ping"})

    def genesis(self, section: Mapping[str, Any] | None, chain: Any) -> list[Event]:
        return [Event("Greeted", "greeting", {"greeting": (section or {}).get("greeting", "")})]

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        greeting = orjson.loads(state.get("greeting") or b'""')
        return Accepted((Event("Pinged", "pings", {"rules": tx.rules}),), {"greeting": greeting, "rules": tx.rules})

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        if event.type == "Greeted":
            return {"greeting": encode(event.data["greeting"])}
        return {"pings": encode(orjson.loads(state.get("pings") or b"0") + 1)}


def kit() -> Kit:
    made = Kit()
    made.genesis = made.genesis.model_copy(update={"params": ChainParams(services=(SCHEDULE_SOURCE,))})
    return made


def replay(genesis: Any) -> ServiceReplay:
    return ServiceReplay(
        [Council(), Late()],
        {"late": (SCHEDULE_SOURCE,)},
        lambda _s: (),
        schedule=ToySchedule(),
        genesis_services=(SCHEDULE_SOURCE,),
        genesis=genesis,
    )


def blocks(chain: Chain) -> list[Any]:
    return [
        chain.block(chain.tx("party.schedule", {"service": "late", "height": 4, "section": {"greeting": "hi"}})),
        chain.block(chain.tx("party.schedule", {"service": "late", "height": 5, "version": 2})),
        chain.block(chain.tx("late.ping", {})),  # 3: dormant
        chain.block(chain.tx("late.ping", {})),  # 4: activated, rules 1
        chain.block(chain.tx("late.ping", {})),  # 5: rules 2
    ]


def test_a_service_is_dormant_until_its_activation_then_seeded_and_versioned() -> None:
    made = kit()
    replayed = replay(made.genesis)
    results = [{r.checkpoint.service: r for r in replayed.execute(b)} for b in blocks(Chain(made))]
    at3, at4, at5 = results[2]["late"], results[3]["late"], results[4]["late"]
    assert at3.receipts == () and at3.events == ()
    assert [e.type for e in at4.events] == ["Greeted", "Pinged"] and at4.events[0].tx_index is None
    assert [r.result for r in at4.receipts] == [{"greeting": "hi", "rules": 1}]
    assert [r.result for r in at5.receipts] == [{"greeting": "hi", "rules": 2}]
    assert replayed.active == (SCHEDULE_SOURCE, "late")


def test_the_results_of_a_height_list_only_the_services_active_at_it() -> None:
    view_before, view_after = ToyView({}), ToyView({"activation/late": {"height": 4, "section": {}}})
    schedule = ToySchedule()
    assert active_services(schedule, view_before, ("party",), ("party", "late"), 9) == ("party",)
    assert active_services(schedule, view_after, ("party",), ("party", "late"), 3) == ("party",)
    assert active_services(schedule, view_after, ("party",), ("party", "late"), 4) == ("party", "late")
    assert step(schedule, view_after, ("party",), "late", 4).seeds
    assert not step(schedule, view_after, ("party",), "late", 5).seeds


class ToyView:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = {k: encode(v) for k, v in data.items()}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: str) -> Any:
        return iter(sorted((k, v) for k, v in self.data.items() if k.startswith(prefix)))


async def test_runtimes_over_a_bus_activate_at_the_same_height_as_the_replay() -> None:
    made = kit()
    chain, replayed = Chain(made), replay(made.genesis)
    broker = MemoryBroker()
    bus = MemoryEventBus(broker)
    await bus.start()
    await bus.ensure_topics(chain_topics(made.chain_id, services=(SCHEDULE_SOURCE, "late")))
    schedule = ToySchedule()
    council = ServiceRuntime(Council(), made.genesis, MemoryStateStore(), bus, schedule=schedule)
    late = ServiceRuntime(Late(), made.genesis, MemoryStateStore(), bus, upstream=(Council(),), schedule=schedule)
    tasks = [asyncio.create_task(r.run()) for r in (council, late)]
    digests: list[str] = []
    try:
        for block in blocks(chain):
            await publish(bus, block)
            digests.append({r.checkpoint.service: r for r in replayed.execute(block)}["late"].checkpoint.state_digest)
        assert await late.wait_for_height(5, 5)
        assert [late.store.state_digest(h) for h in range(1, 6)] == digests
        assert [r.result["rules"] for r in late.store.receipts(5)] == [2]
        assert orjson.loads(late.store.get("greeting") or b"") == "hi"
    finally:
        for task in tasks:
            task.cancel()


def test_the_genesis_sets_the_first_rule_versions_and_upgrades_move_them_up() -> None:
    schedule = ToySchedule()
    view = ToyView({"rules/doc/00000010": 3})
    assert step(schedule, view, ("party", "doc"), "doc", 9, genesis_rules=2).rules == 2
    assert step(schedule, view, ("party", "doc"), "doc", 10, genesis_rules=2).rules == 3
    assert step(None, None, ("doc",), "doc", 10, genesis_rules=2).rules == 2
    params = ChainParams(rules={"doc": 2})
    assert params.genesis_rules("doc") == 2 and params.genesis_rules("party") == 1
    assert "rules" not in ChainParams().model_dump(mode="json")  # old genesis files keep their hash
