"""A node (architecture: Nodes): one member's installation in one process — a validator (or a
non-voting observer) and its own replica of every executing service, under one node key.

Why one process: a validator must take the results it votes on from its own node, never from
whoever writes to a topic. Here they never touch Kafka on the way: when the validator commits
block H (decided or synced), ``execute`` runs each service on it in the upstream order
(party → doc), hands each service's events to its downstreams in memory, and gives the ledger
every receipt and checkpoint, so the results root of H is this node's own computation. The
validator then prevotes a proposal for H+1 only if its ``last_results_root`` is that root
(``rules.check_header``), and admission is judged on the node's own party replica.

What leaves the process: the shared ``blocks`` and ``consensus`` traffic, and the node's own
topics — ``node.<id>.receipts``, ``node.<id>.events.<svc>`` (events, then the checkpoint
signed by the node key), ``node.<id>.dlq``.

Restart: the services catch up from the node's own block store before the validator starts,
and the results of the tip are recomputed from the services' stores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from traco.core import metrics, tracing
from traco.core.commands import RUNTIME_EVENTS
from traco.core.nodes import NodeKey
from traco.core.ports import EventBus, OutgoingMessage, StateStore
from traco.core.probes import Health
from traco.core.service_exec import ServiceBlockResult
from traco.core.service_runtime import ServiceRuntime, send_all
from traco.schemas.block import SealedBlock
from traco.schemas.genesis import Genesis
from traco.services import registry
from traco.services.consensus import telemetry
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.validator import Validator, ValidatorConfig

log = logging.getLogger(__name__)
_tracer = tracing.tracer(__name__)


class ResultsDiverged(RuntimeError):
    """A service of this node refused a block the chain sealed: its replica is not the chain's."""


def replicas(
    genesis: Genesis, key: NodeKey, stores: Mapping[str, StateStore], bus: EventBus
) -> dict[str, ServiceRuntime]:
    """The node's replica of every service the genesis runs, in the upstream order, each over its
    own store and signing its checkpoints with the node key (``bench/replicas.py`` builds the
    same, to measure them in one process)."""
    services = registry.runnable(genesis)
    return {
        name: ServiceRuntime(
            registry.domain(name),
            genesis,
            stores[name],
            bus,
            registry.upstream_domains(name),
            registry.genesis_events(genesis),
            node=key,
            commanders=registry.commander_domains(name, services),
            order=services,
            schedule=registry.schedule(genesis),
        )
        for name in services
    }


def hand_over(runtimes: Mapping[str, ServiceRuntime], name: str, result: ServiceBlockResult) -> None:
    """``name``'s events of this height, straight to the services downstream of it (they apply
    them before the next height): no reading back from the store."""
    for runtime in runtimes.values():
        for follower in (runtime.upstream.get(name), runtime.commanders.get(name)):
            if follower is not None:
                follower.accept_local(result.height, result.events, result.checkpoint.state_digest)


def feed_upstreams(runtimes: Mapping[str, ServiceRuntime], runtime: ServiceRuntime, height: int) -> None:
    """The upstreams' and commanders' events of ``height - 1`` that were not handed over in
    memory (after a restart), from their replicas' stores in this process."""
    previous = height - 1
    if previous < 1:
        return
    for name, upstream in (*runtime.upstream.items(), *runtime.commanders.items()):
        if previous in upstream.verified:
            continue
        source = runtimes[name]
        digest = source.store.state_digest(previous)
        if digest is None:
            raise RuntimeError(f"{name} has not executed {previous}, needed by {runtime.domain.service} at {height}")
        upstream.accept_local(previous, source.store.events(previous), digest)


class Node:
    def __init__(
        self,
        genesis: Genesis,
        key: NodeKey,
        ledger: Ledger,
        service_stores: dict[str, StateStore],
        bus: EventBus,
        validator: ValidatorConfig | None,
    ) -> None:
        self.genesis = genesis
        self.key = key
        self.ledger = ledger
        self.bus = bus
        self.runtimes = replicas(genesis, key, service_stores, bus)
        if "party" in self.runtimes:
            party = self.runtimes["party"]
            ledger.admitted.follow_local(party.store, lambda: party.height)
        self.validator = (
            Validator(
                genesis,
                ledger,
                bus,
                validator,
                node_id=key.id,
                after_commit=self.execute,
                work_pending=lambda: self.commands_pending,
            )
            if validator is not None
            else None
        )
        self.stopped: str | None = None  # why this node stopped executing, if it did
        self.cpu: dict[str, float] = {}
        self.commands_pending = False
        """Whether the last block executed sent a command or reported a command's outcome: the
        next height has work even with no transaction (the validator starts it at once)."""
        """CPU seconds each service replica spent executing and encoding its outputs (thread
        time, so other tasks' work during the sends is not counted): what a replica costs per
        transaction; the rest of the process is the validator and the Kafka client."""
        _watch(self)

    @property
    def id(self) -> str:
        return self.key.id

    # ------------------------------------------------------------------ executing

    async def execute(self, block: SealedBlock) -> None:
        """Run every service on ``block`` and give the ledger this node's results of it. Whatever
        goes wrong stops this node's execution loudly: its validator then never votes on
        results it did not compute."""
        if self.stopped is not None:
            return
        try:
            await self._execute(block)
        except Exception as exc:
            log.exception("executing block %d failed", block.height)
            self._stop(f"executing block {block.height} failed: {exc!r}")

    async def _execute(self, block: SealedBlock) -> None:
        results: list[ServiceBlockResult] = []
        outputs: list[tuple[ServiceRuntime, list[OutgoingMessage]]] = []
        try:
            for name, runtime in self.runtimes.items():
                if runtime.height >= block.height:
                    results.append(self._stored_result(runtime, block.height))
                    continue
                feed_upstreams(self.runtimes, runtime, block.height)
                problem = runtime.check(block)
                if problem:
                    self._stop(f"{name} refuses block {block.height} the chain sealed: {problem}")
                    return
                with _tracer.start_as_current_span(f"execute {name} {block.height}"):  # inside the commit's
                    started = time.thread_time()
                    result = runtime.execute(block)
                    outputs.append((runtime, runtime.outputs(result.receipts, result.events, result.checkpoint)))
                    self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - started
                results.append(result)
                hand_over(self.runtimes, name, result)
        finally:
            # Every replica's outputs of the block in two produce calls, not two per replica;
            # what a failure left unsent is republished from the stores at the next start.
            await send_all(self.bus, outputs)
        for runtime, _ in outputs:
            async with runtime.progress:
                runtime.progress.notify_all()
        self.commands_pending = carries_commands(results)
        for result in results:
            for receipt in result.receipts:
                self.ledger.offer_receipt(receipt)
            self.ledger.offer_checkpoint(result.checkpoint)
        if self.ledger.tip.height == block.height and self.ledger.tip.results_root is None:
            self._stop(f"the results of block {block.height} are incomplete: {self.ledger.waiting_for()}")

    @staticmethod
    def _stored_result(runtime: ServiceRuntime, height: int) -> ServiceBlockResult:
        """What a service already executed (before a restart), as its store holds it."""
        return ServiceBlockResult(
            height=height,
            receipts=tuple(runtime.store.receipts(height)),
            events=tuple(runtime.store.events(height)),
            writes={},
            checkpoint=runtime.checkpoint(height),
        )

    def _stop(self, reason: str) -> None:
        """Stop executing loudly rather than vote on results this node cannot stand behind."""
        if self.stopped is None:
            self.stopped = reason
            log.critical("node %s stops executing: %s; rebuild its service stores from the blocks", self.id, reason)

    # ------------------------------------------------------------------ starting

    async def catch_up(self) -> None:
        """Bring every service to the ledger's height from the node's own block store, and the
        ledger's pending results of the tip from the services."""
        lowest = min((r.height for r in self.runtimes.values()), default=self.ledger.height)
        if lowest > self.ledger.height:
            self._stop(f"a service store is at height {lowest}, beyond the block store's {self.ledger.height}")
            return
        for runtime in self.runtimes.values():
            await runtime.republish_missing()
        start = max(1, lowest + 1) if lowest < self.ledger.height else self.ledger.height
        if self.ledger.height == 0:
            return
        if lowest < self.ledger.height:
            log.info("node %s: services catch up from height %d to %d", self.id, lowest + 1, self.ledger.height)
        for block in self.ledger.blocks.blocks(start, self.ledger.height):
            await self.execute(block)

    def services_at(self) -> dict[str, int]:
        return {name: runtime.height for name, runtime in self.runtimes.items()}

    @property
    def executing(self) -> bool:
        diverged = self.validator.sync.diverged_at if self.validator is not None else None
        return self.stopped is None and diverged is None

    def highest_seen(self) -> int:
        """The highest sealed height this node has seen (its validator's view)."""
        return telemetry.highest_seen(self.validator) if self.validator is not None else self.ledger.height

    def health(self) -> Health:
        """What ``GET /readyz`` judges: the chain's and every service's height against the highest
        sealed height seen; a node that stopped executing is not ready whatever its heights."""
        status = self.status()
        why = status["stopped"] or f"its results diverge from the chain's at height {status['diverged_at']}"
        problems = [] if self.executing else [f"node {self.id} stopped executing: {why}"]
        heights = {"consensus": self.ledger.height, **self.services_at()}
        return Health(self.highest_seen(), heights, problems)

    def status(self) -> dict[str, Any]:
        """What ``GET /status`` shows of the node: whether it executes, and where it diverged."""
        diverged = self.validator.sync.diverged_at if self.validator is not None else None
        return {
            "id": self.id,
            "services": self.services_at(),
            "executing": self.stopped is None and diverged is None,
            "stopped": self.stopped,
            "diverged_at": diverged,
        }


def _watch(node: Node) -> None:
    """The node's gauges (``GET /metrics``); the validator reports the chain's own."""
    metrics.NODE_EXECUTING.watch(node, lambda n: [(1 if n.executing else 0, {})])
    metrics.SERVICE_HEIGHT.watch(
        node, lambda n: [(h, {"service": s, "node": n.id}) for s, h in n.services_at().items()]
    )
    metrics.SERVICE_CPU.watch(node, lambda n: [(seconds, {"service": s, "node": n.id}) for s, seconds in n.cpu.items()])
    metrics.CONSUMER_LAG.watch(
        node, lambda n: [(n.highest_seen() - h, {"service": s, "node": n.id}) for s, h in n.services_at().items()]
    )


def carries_commands(results: Sequence[ServiceBlockResult]) -> bool:
    """Whether a height's results sent a command or reported a command's outcome: the next
    height then has work for a service even with no transaction (architecture: Execution)."""
    return any(e.type in RUNTIME_EVENTS for result in results for e in result.events)


def node_components(node_id: str, services: Sequence[str]) -> dict[str, str]:
    """The storage component of each of a node's stores: ``<id>-chain``, ``<id>-<service>``."""
    return {"chain": f"{node_id}-chain", **{s: f"{node_id}-{s}" for s in services}}
