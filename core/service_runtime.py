"""The service runtime: how every executing service (party, doc, …) follows the chain (architecture: Execution).

For each block H, in height order, it waits until every upstream service has published its
``BlockProcessed`` checkpoint for H-1 (so a transaction of this service sees its upstreams'
state as of the end of H-1), brings its projections of the upstreams' state to H-1 by applying
their events with *their* ``mutate`` functions, executes its own transaction kinds with the
pure rules, and stores state, projections, receipts, events and the new height in one storage
transaction. Then it publishes the events, the ``BlockProcessed{height, state_digest}``
checkpoint and the receipts.

- Position is a height, never an offset: a restarted service resumes from its stored height; one
  started on an empty store rebuilds from height 1. Processing a block twice changes nothing.
- Blocks are accepted only with a commit of > 2/3 of the power of the height's validator set
  and a ``prev_hash`` that links to the last block processed (the light-client check), never on
  the broker's word. The set is the genesis set until a block announces a new one
  (``next_validators``); the runtime keeps it with its state.
- A gap in ``blocks`` is reported with a ``BlockRequest`` on ``consensus``; validators republish.
- Outputs lost between the commit and the publish (a crash) are republished on start from the
  store, so downstream services and validators never wait forever.
- Genesis state (members, roles, …) comes from the genesis file, for this service and for its
  upstream projections alike, and is written with block 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

import orjson

from traco.core import tracing
from traco.core.boundary import Rejected, decode_model
from traco.core.commands import outcomes_for, requests_for
from traco.core.domain import CommandOutcome, DictState, Domain, Event, StateView, scan_from
from traco.core.lightclient import next_validators, verify_commit
from traco.core.nodes import NodeKey
from traco.core.ports import BusMessage, EventBus, OutgoingMessage, StateBatch, StateStore
from traco.core.positions import last_message, wait_for_height, watch_for_gaps
from traco.core.schedule import SCHEDULE_KEYS, SCHEDULE_SOURCE, Schedule, Step, step
from traco.core.service_exec import GENESIS_DIGEST, ServiceBlockResult, execute_service_block
from traco.core.service_state import commit_state, seal
from traco.core.smt_tree import VerifiedNodes
from traco.core.supervise import run_all, supervised
from traco.core.topics import node_topic, topic
from traco.core.upstream import Upstream
from traco.schemas.block import SealedBlock
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.genesis import Genesis, ValidatorPower, validator_set
from traco.schemas.receipt import Receipt

log = logging.getLogger(__name__)
_tracer = tracing.tracer(__name__)

RUNTIME_PREFIX = "runtime/"
"""The runtime's own bookkeeping, written with the block's state in one storage transaction
(no domain uses this prefix): a crash can never leave the height and the link apart."""
LAST_HASH_KEY = RUNTIME_PREFIX + "last_block_hash"
LAST_TIME_KEY = RUNTIME_PREFIX + "last_block_time"
VALIDATORS_KEY = RUNTIME_PREFIX + "validators"
MAX_EARLY_BLOCKS = 5000
"""Blocks ahead of the next height kept in memory; later ones are fetched again (``_gap``)."""
MAX_CANDIDATES_PER_HEIGHT = 8
"""Different blocks claiming one height kept until checked (forgeries are refused by ``check``)."""
_OLD_META_KEYS = {LAST_HASH_KEY: "last_block_hash", LAST_TIME_KEY: "last_block_time"}


class PrefixView:
    """A service's projection of an upstream's state, kept in its own store under a prefix."""

    def __init__(self, base: StateView, prefix: str) -> None:
        self.base = base
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        return self.base.get(self.prefix + key)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        cut = len(self.prefix)
        for key, value in self.base.scan(self.prefix + prefix):
            yield key[cut:], value

    def scan_from(self, prefix: str, start: str) -> Iterator[tuple[str, bytes]]:
        """``scan`` from ``start`` on, seeking in the store when it can (``core.domain.scan_from``)."""
        cut = len(self.prefix)
        for key, value in scan_from(self.base, self.prefix + prefix, self.prefix + start):
            yield key[cut:], value


def projection_prefix(service: str) -> str:
    return f"up/{service}/"


def upstream_keeps(domain: Domain, upstream: str) -> tuple[str, ...] | None:
    """The key prefixes of ``upstream``'s state that ``domain`` keeps in its projection (its
    ``upstream_keeps`` declaration); None keeps everything. Its rules — and the upstream's
    ``mutate`` while projecting — may read only what is kept: the audit replay gives them the
    upstream's whole state, and the results must not differ."""
    declared: Mapping[str, tuple[str, ...] | None] = getattr(domain, "upstream_keeps", {})
    keeps = declared.get(upstream)
    if keeps is not None and upstream == SCHEDULE_SOURCE:
        keeps = (*keeps, *SCHEDULE_KEYS)  # every replica reads the upgrade schedule through it
    return keeps


def activation_events(domain: Domain, plan: Step, genesis: Genesis) -> list[Event]:
    """The genesis events of a service an upgrade activates at this height (its section from
    the upgrade); none otherwise — genesis services are seeded at height 1 from the file."""
    if not plan.seeds or domain.service in genesis.params.services:
        return []
    seed = getattr(domain, "genesis", None)
    return list(seed(plan.section, genesis)) if seed is not None else []


def genesis_writes(domain: Domain, events: Sequence[Event]) -> dict[str, bytes | None]:
    """The state a domain starts from: its genesis events applied in order."""
    state = DictState()
    for event in events:
        state.apply(domain.mutate(state, event))
    return state.data


class ServiceRuntime:
    """Runs one service's rules against the chain, through the event bus."""

    def __init__(
        self,
        domain: Domain,
        genesis: Genesis,
        store: StateStore,
        bus: EventBus,
        upstream: Sequence[Domain] = (),
        genesis_events: Callable[[str], Sequence[Event]] = lambda _service: (),
        node: NodeKey | None = None,
        commanders: Sequence[Domain] = (),
        order: Sequence[str] = (),
        schedule: Schedule | None = None,
    ) -> None:
        """With ``node``, outputs go to the node's own topics with checkpoints signed by its key,
        and upstream checkpoints count only when signed by that same key (architecture: Nodes).

        ``commanders`` are the later services that may send this one commands: it reads their
        events for nothing else, and waits for their checkpoint of H-1 before executing H, as
        for its upstreams (architecture: Execution). ``order`` is the service order commands are ranked by.
        ``schedule`` reads the chain's upgrades (``core.schedule``): a service not in the
        genesis stays dormant until an upgrade activates it, and rules move up by height."""
        self.domain = domain
        self.genesis = genesis
        self.store = store
        self.bus = bus
        self.node = node
        chain = genesis.chain_id
        self.blocks_topic = topic(chain, "blocks")
        self.consensus_topic = topic(chain, "consensus")
        self.receipts_topic = self._output_topic("receipts")
        self.events_topic = self._output_topic(f"events.{domain.service}")
        trusted = (node.id, node.public_key) if node is not None else None
        self.upstream = {
            u.service: Upstream(u, self._output_topic(f"events.{u.service}"), signer=trusted, chain_id=chain)
            for u in upstream
        }
        self.keeps = {name: upstream_keeps(domain, name) for name in self.upstream}
        """What this service keeps of each upstream's state (``upstream_keeps``)."""
        self.commanders = {
            c.service: Upstream(c, self._output_topic(f"events.{c.service}"), signer=trusted, chain_id=chain)
            for c in commanders
        }
        self.order = tuple(order)
        self.schedule = schedule
        self.genesis_events = genesis_events
        self.tree_nodes = VerifiedNodes()
        """The state tree's nodes this replica has checked or made, kept between heights."""
        self.early: dict[int, list[SealedBlock]] = {}
        self.highest_seen = 0
        self.progress = asyncio.Condition()
        self._advancing = asyncio.Lock()

    def _output_topic(self, name: str) -> str:
        chain = self.genesis.chain_id
        return node_topic(chain, self.node.id, name) if self.node is not None else topic(chain, name)

    @property
    def height(self) -> int:
        return self.store.height()

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Follow the chain until cancelled. Each reader is supervised: one that fails is
        restarted with back-off (reading again by height loses nothing), one that keeps failing
        raises ``SupervisorGaveUp`` here, so the process ends with an error."""
        await self.republish_missing()
        service = self.domain.service

        def gaps() -> Awaitable[None]:
            return watch_for_gaps(self.bus, self.consensus_topic, service, self._gap)

        tasks = [
            asyncio.create_task(supervised(f"{service}: blocks reader", self._follow_blocks)),
            asyncio.create_task(supervised(f"{service}: gap watcher", gaps)),
        ]
        tasks += [
            asyncio.create_task(supervised(f"{service}: {u.topic} reader", functools.partial(self._follow_upstream, u)))
            for u in (*self.upstream.values(), *self.commanders.values())
        ]
        await run_all(tasks)

    async def _follow_blocks(self) -> None:
        async for batch in self.bus.consume(self.blocks_topic, start="earliest"):
            for message in batch:
                await self.on_block_message(message)

    async def on_block_message(self, message: BusMessage) -> None:
        block = decode_model(SealedBlock, message.value, 32 << 20, what="block")
        if isinstance(block, Rejected):
            log.warning("undecodable block at %s/%d: %s", message.topic, message.offset, block.reason)
            return
        self.highest_seen = max(self.highest_seen, block.height)
        if block.height > self.height:
            if len(self.early) >= MAX_EARLY_BLOCKS and block.height > max(self.early):
                return  # asked for again through the gap watcher once the buffer drains
            bucket = self.early.setdefault(block.height, [])
            if len(bucket) < MAX_CANDIDATES_PER_HEIGHT and block not in bucket:
                bucket.append(block)  # a forged twin must not push the real block out
            if len(self.early) > MAX_EARLY_BLOCKS:
                del self.early[max(self.early)]
        with tracing.attached(message.headers):  # execution continues the block's trace
            await self.advance()

    async def _follow_upstream(self, up: Upstream) -> None:
        async for batch in self.bus.consume(up.topic, start="earliest"):
            for message in batch:
                up.offer(message)
            with tracing.attached(batch[-1].headers if batch else ()):
                await self.advance()

    # ------------------------------------------------------------------ executing

    def ready(self, height: int) -> bool:
        """Block ``height`` is here and every upstream has finished ``height - 1``."""
        followed = (*self.upstream.values(), *self.commanders.values())
        return height in self.early and all(u.completed >= height - 1 for u in followed)

    async def advance(self) -> None:
        """Execute every block that can be executed now, in order; one caller at a time (the
        blocks reader and each upstream reader all call it)."""
        async with self._advancing:
            advanced = False
            while self.ready(self.height + 1):
                candidates = self.early.pop(self.height + 1)
                for block in candidates:
                    problem = self.check(block)
                    if problem:
                        log.warning("refusing block %d: %s", block.height, problem)
                        continue
                    with _tracer.start_as_current_span(f"execute {self.domain.service} {block.height}"):
                        result = self.execute(block)
                        await self.publish(result)
                    advanced = True
                    break
            if advanced:
                self.early = {h: b for h, b in self.early.items() if h > self.height}
                async with self.progress:
                    self.progress.notify_all()

    def _bookkeeping(self, key: str) -> bytes | None:
        """A runtime record; stores written before it moved into the state keep it in meta."""
        found = self.store.get(key)
        return found if found is not None else self.store.get_meta(_OLD_META_KEYS.get(key, key))

    @property
    def validators(self) -> tuple[ValidatorPower, ...]:
        """The validator set of the next height to execute."""
        raw = self.store.get(VALIDATORS_KEY)
        if raw is None:
            return validator_set(self.genesis.validators)
        return tuple(ValidatorPower.model_validate(v) for v in orjson.loads(raw))

    def check(self, block: SealedBlock) -> str | None:
        """Why ``block`` is not the next block of this chain: the light-client check (commit of
        > 2/3 of the height's set, the announced next set), its transactions are exactly those
        the header commits to, and ``prev_hash`` links to the last block executed."""
        header = block.header
        if header.chain_id != self.genesis.chain_id:
            return f"chain id {header.chain_id!r} is not {self.genesis.chain_id!r}"
        if header.height != self.height + 1:
            return f"height {header.height} does not follow {self.height}"
        if header.tx_count != len(block.txs):
            return f"tx_count {header.tx_count} but the block carries {len(block.txs)}"
        if block.txs_root != header.tx_root:
            return "tx_root does not match the transactions"
        current = self.validators
        problem = verify_commit(block.header, block.commit, current)
        if problem:
            return problem
        upcoming = next_validators(block.header, block.next_validators, current)
        if isinstance(upcoming, str):
            return upcoming
        last = self._bookkeeping(LAST_HASH_KEY)
        expected = last.decode() if last else self.genesis.genesis_hash()
        if block.header.prev_hash != expected:
            return f"prev_hash does not link to the last block this service processed ({expected[:16]}…)"
        return None

    def execute(self, block: SealedBlock) -> ServiceBlockResult:
        """Execute and store block ``self.height + 1`` (one storage transaction)."""
        height = block.height
        first = height == 1
        writes: dict[str, bytes | None] = {}
        own: StateView = self.store
        upstream_views: dict[str, StateView] = {}
        outcomes: list[CommandOutcome] = []
        if first and (self.schedule is None or self.domain.service in self.genesis.params.services):
            seed = genesis_writes(self.domain, self.genesis_events(self.domain.service))
            writes.update(seed)
            own = DictState(seed, base=self.store)
        for name, up in self.upstream.items():
            prefix = projection_prefix(name)
            base: StateView = PrefixView(self.store, prefix)
            if first:
                base = DictState(genesis_writes(up.domain, self.genesis_events(name)), base=base)
            projection = DictState(base=base)
            outcomes += outcomes_for(self.domain.service, up.apply(height - 1, projection))
            keeps = self.keeps[name]
            seeded = base.data if isinstance(base, DictState) else {}
            for data in (seeded, projection.data):
                writes.update({prefix + k: v for k, v in data.items() if keeps is None or k.startswith(keeps)})
            upstream_views[name] = projection
        prev = self.store.state_digest(height - 1) if height > 1 else None
        sent = {name: c.take(height - 1) for name, c in self.commanders.items()}
        requests = requests_for(self.domain.service, sent, self.order)
        service = self.domain.service
        view = own if service == SCHEDULE_SOURCE else upstream_views.get(SCHEDULE_SOURCE)
        params = self.genesis.params
        plan = step(self.schedule, view, params.services, service, height, params.genesis_rules(service))
        result = execute_service_block(
            self.domain,
            block,
            own,
            upstream_views,
            prev or GENESIS_DIGEST,
            requests,
            outcomes,
            rules=plan.rules,
            dormant=not plan.active,
            seed=activation_events(self.domain, plan, self.genesis),
        )
        writes.update(result.writes)
        state_root, tree_writes = commit_state(self.store, writes, self.tree_nodes)
        result = seal(result, state_root, tree_writes)
        writes.update(tree_writes)
        writes[checkpoint_key(height)] = result.checkpoint.json_bytes
        writes[LAST_HASH_KEY] = block.block_hash().encode()
        writes[LAST_TIME_KEY] = str(block.header.time).encode()
        if block.next_validators is not None:
            writes[VALIDATORS_KEY] = orjson.dumps([v.json_value() for v in block.next_validators])
        self.store.commit(
            StateBatch(
                height=height,
                writes=writes,
                receipts=list(result.receipts),
                events=list(result.events),
                state_digest=result.checkpoint.state_digest,
            )
        )
        return result

    @property
    def block_time(self) -> int:
        """The time of the last block executed (the "now" of queries; the genesis time before)."""
        raw = self._bookkeeping(LAST_TIME_KEY)
        return int(raw) if raw else self.genesis.genesis_time

    # ------------------------------------------------------------------ publishing

    def checkpoint(self, height: int) -> BlockProcessed:
        """The checkpoint of an executed height, as it was sealed (stores written before the
        roots existed have only the digest)."""
        raw = self.store.get(checkpoint_key(height))
        if raw is not None:
            return BlockProcessed.model_validate_json(raw)
        digest = self.store.state_digest(height)
        assert digest is not None, f"{self.domain.service} has not executed height {height}"
        return BlockProcessed(service=self.domain.service, height=height, state_digest=digest)

    def outputs(
        self, receipts: Sequence[Receipt], events: Sequence[DomainEvent], checkpoint: BlockProcessed
    ) -> list[OutgoingMessage]:
        """Events, then the checkpoint (signed by the node key, carrying the receipts, when this
        runtime belongs to a node), then each receipt for readers that follow one transaction."""
        out = [OutgoingMessage(self.events_topic, e.json_bytes, e.aggregate_id.encode()) for e in events]
        key = str(checkpoint.height).encode()
        if self.node is not None:
            signed = self.node.sign(self.genesis.chain_id, checkpoint, receipts, events)
            out.append(OutgoingMessage(self.events_topic, signed.json_bytes, key))
        else:
            out.append(OutgoingMessage(self.events_topic, checkpoint.json_bytes, key))
        out += [
            OutgoingMessage(self.receipts_topic, r.json_bytes, r.tx_id.encode(), tracing.tx_trace_headers(r.tx_id))
            for r in receipts
        ]  # a receipt carries its transaction's trace where the block's execution knows it
        return out

    async def publish(self, result: ServiceBlockResult) -> None:
        await self.send(self.outputs(result.receipts, result.events, result.checkpoint))

    async def send(self, out: Sequence[OutgoingMessage]) -> None:
        """This runtime's outputs of one height (``send_all``)."""
        await send_all(self.bus, [(self, out)])

    async def republish_missing(self) -> None:
        """Publish the outputs of stored heights that never reached the events topic."""
        last = await last_checkpoint(self.bus, self.events_topic)
        if last >= self.height:
            return
        log.info("republishing %s outputs of heights %d..%d", self.domain.service, last + 1, self.height)
        for height in range(last + 1, self.height + 1):
            await self.send(
                self.outputs(self.store.receipts(height), self.store.events(height), self.checkpoint(height))
            )

    def _gap(self) -> tuple[int, int] | None:
        """The heights to ask for: up to the first early block, or up to the highest block seen
        when the buffer is empty (blocks beyond it were let go), so a rebuild never stalls."""
        if (self.height + 1) in self.early:
            return None
        if self.early:
            return self.height + 1, min(self.early) - 1
        return (self.height + 1, self.highest_seen) if self.highest_seen > self.height else None

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait until this service has executed ``height`` (False on timeout)."""
        return await wait_for_height(self.progress, lambda: self.height, height, timeout)


async def send_all(bus: EventBus, outputs: Sequence[tuple[ServiceRuntime, Sequence[OutgoingMessage]]]) -> None:
    """Receipts first, then events and checkpoints, of any number of runtimes (a node sends all
    its replicas' outputs of a block at once): a checkpoint on its topic means its receipts
    were acknowledged before it, so a restart republishes from the last checkpoint."""
    receipts = [m for runtime, out in outputs for m in out if m.topic == runtime.receipts_topic]
    rest = [m for runtime, out in outputs for m in out if m.topic != runtime.receipts_topic]
    if receipts:
        await bus.publish_many(receipts)
    if rest:
        await bus.publish_many(rest)


async def last_checkpoint(bus: EventBus, events_topic: str) -> int:
    """The height of the last ``BlockProcessed`` on a service's events topic (0 if none)."""
    message = await last_message(bus, events_topic)
    if message is None:
        return 0
    with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        data = orjson.loads(message.value)
        if data.get("type") == "BlockProcessed":
            return int(data["height"])
        if data.get("type") == "SignedCheckpoint":
            return int(data["checkpoint"]["height"])
    return 0


def checkpoint_key(height: int) -> str:
    """Where a runtime keeps the checkpoint it sealed for ``height`` (bookkeeping, not state)."""
    return f"{RUNTIME_PREFIX}checkpoint/{height:012d}"


def upstream_projection(store: StateView, service: str) -> StateView:
    """Read a stored projection of ``service`` (for a service's HTTP API)."""
    return PrefixView(store, projection_prefix(service))


__all__ = [
    "PrefixView",
    "ServiceRuntime",
    "Upstream",
    "genesis_writes",
    "last_checkpoint",
    "projection_prefix",
    "upstream_projection",
]
