"""Replaying a chain's results from its blocks alone (architecture: Consensus, Execution): the chain's own kinds and
every executing service, in lockstep, so that an auditor checks each header's
``last_results_root`` without trusting any node's record of what the services did.

``ServiceReplay`` runs the services' pure domains (``genesis.params.services``, in that order)
exactly as each service's runtime does: state seeded at height 1 from the genesis
(``registry.genesis_events`` → ``genesis_writes``), then for every block
``execute_service_block(domain, block, own state, upstream views, previous digest)``, where
each upstream view is that upstream's state as of the end of the previous block. ``ChainReplay``
adds the chain's own kinds (``rules.execute_block``) and assembles each block's results as a
validator does (``PendingResults.leaves``: receipts in block order, then the checkpoints of the
chain and of each service in genesis order), giving the root the next header must carry.
``differences`` compares a node's record of a block's results with the replay, naming the
service, the transaction and what differs.

Why the upstream view is the upstream's own replayed state: the runtime keeps, per downstream
service, a projection of each upstream built by applying the upstream's events with the
upstream's ``mutate`` from the same genesis writes; the upstream's own state is made by that
same ``mutate`` over those same events (``run_block``), so the bytes are the same, and replaying
each service once halves the work. The tests check the replay against the runtime on one chain.

Caveats: every service's whole state is held in memory (one dict per service); a service the
registry does not know, or one whose upstream the chain does not run, cannot be replayed and
raises ``ValueError`` when the replay is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from traco.core.commands import CommandRequest, outcomes_for, requests_for
from traco.core.domain import CommandOutcome, DictState, Domain, Event, StateView
from traco.core.schedule import SCHEDULE_SOURCE, Schedule, Step, active_services, step
from traco.core.service_exec import GENESIS_DIGEST, ServiceBlockResult, execute_service_block
from traco.core.service_runtime import activation_events, genesis_writes
from traco.core.service_state import commit_state, seal
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.genesis import Genesis
from traco.schemas.receipt import Receipt
from traco.services.consensus import rules
from traco.services.consensus.results import PendingResults, Results, decode_results


class ServiceReplay:
    """Every executing service's pure rules, run over the blocks in height order from genesis."""

    def __init__(
        self,
        domains: Sequence[Domain],
        upstream: Mapping[str, Sequence[str]],
        genesis_events: Callable[[str], Sequence[Event]],
        commanders: Mapping[str, Sequence[str]] | None = None,
        schedule: Schedule | None = None,
        genesis_services: Sequence[str] | None = None,
        genesis: Genesis | None = None,
    ) -> None:
        """``commanders[s]``: the later services whose commands ``s`` executes (architecture: Execution).
        ``schedule``: the chain's upgrades (``core.schedule``), read from the replayed party
        state; ``genesis_services``: those active from height 1 (default: all of ``domains``)."""
        self.domains = tuple(domains)
        self.schedule = schedule
        self.genesis = genesis
        self.genesis_services = (
            tuple(d.service for d in self.domains) if genesis_services is None else tuple(genesis_services)
        )
        names = [d.service for d in self.domains]
        for name in names:
            missing = [u for u in upstream.get(name, ()) if u not in names[: names.index(name)]]
            if missing:
                raise ValueError(f"service {name} reads {', '.join(missing)}, which the replay does not run before it")
        self.upstream = {name: tuple(upstream.get(name, ())) for name in names}
        self.commanders = {name: tuple(c for c in (commanders or {}).get(name, ()) if c in names) for name in names}
        self.last_events: dict[str, tuple[DomainEvent, ...]] = {name: () for name in names}
        self.genesis_events = genesis_events
        self.active = tuple(n for n in names if n in self.genesis_services)
        """The services whose results the last executed block has (results order)."""
        self.states = {name: DictState() for name in names}
        self.digests = dict.fromkeys(names, GENESIS_DIGEST)
        self.height = 0

    @classmethod
    def for_genesis(cls, genesis: Genesis) -> ServiceReplay:
        """The services ``genesis.params.services`` names, with their registered rules and genesis."""
        from traco.services import registry

        return cls(
            [registry.domain(name) for name in registry.runnable(genesis)],
            registry.UPSTREAM,
            registry.genesis_events(genesis),
            registry.COMMANDERS,
            registry.schedule(genesis),
            genesis.params.services,
            genesis,
        )

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.states)

    def state(self, service: str) -> StateView:
        """A service's replayed state after the last block executed."""
        return self.states[service]

    def execute(self, block: SealedBlock) -> tuple[ServiceBlockResult, ...]:
        """Block ``height + 1`` for every service, in genesis order. Every service sees its
        upstreams as of the end of the previous block: no state changes until all have run."""
        if block.height != self.height + 1:
            raise ValueError(f"block {block.height} does not follow the replay's height {self.height}")
        seeds: dict[str, dict[str, bytes | None]] = {d.service: {} for d in self.domains}
        if block.height == 1:
            for domain in self.domains:
                if domain.service in self.genesis_services:
                    seeds[domain.service] = genesis_writes(domain, self.genesis_events(domain.service))
                    self.states[domain.service].apply(seeds[domain.service])
        plans = {name: self.plan(name, block.height) for name in self.services}
        view = self.states.get(SCHEDULE_SOURCE)
        self.active = active_services(self.schedule, view, self.genesis_services, self.services, block.height)
        executed = [
            execute_service_block(
                domain,
                block,
                self.states[domain.service],
                {u: self.states[u] for u in self.upstream[domain.service]},
                self.digests[domain.service],
                self._requests(domain.service),
                self._outcomes(domain.service),
                rules=plans[domain.service].rules,
                dormant=not plans[domain.service].active,
                seed=self._activation(domain, plans[domain.service]),
            )
            for domain in self.domains
        ]
        results = []
        for result, domain in zip(executed, self.domains, strict=True):
            state = self.states[domain.service]
            root, tree_writes = commit_state(state, {**seeds[domain.service], **result.writes})
            results.append(seal(result, root, tree_writes))
        for result, domain in zip(results, self.domains, strict=True):
            self.states[domain.service].apply(result.writes)
            self.digests[domain.service] = result.checkpoint.state_digest
            self.last_events[domain.service] = result.events
        self.height = block.height
        return tuple(results)

    def plan(self, service: str, height: int) -> Step:
        """What ``service`` does at ``height``, by the schedule in the replayed party state as
        of the end of the previous block (the states change only once every service has run)."""
        view = self.states.get(SCHEDULE_SOURCE)
        genesis_rules = self.genesis.params.genesis_rules(service) if self.genesis is not None else 1
        return step(self.schedule, view, self.genesis_services, service, height, genesis_rules)

    def _activation(self, domain: Domain, plan: Step) -> list[Event]:
        return activation_events(domain, plan, self.genesis) if self.genesis is not None else []

    def _requests(self, service: str) -> list[CommandRequest]:
        """The commands the previous height's events of ``service``'s commanders sent it."""
        sent = {c: self.last_events[c] for c in self.commanders[service]}
        return requests_for(service, sent, self.services)

    def _outcomes(self, service: str) -> list[CommandOutcome]:
        """What the previous height's upstream events say of ``service``'s commands."""
        return [o for u in self.upstream[service] for o in outcomes_for(service, self.last_events[u])]


@dataclass(frozen=True)
class ReplayedResults:
    """Everything a block did, replayed: what header ``height + 1`` must commit to."""

    height: int
    chain: rules.BlockResult
    services: Mapping[str, ServiceBlockResult]
    receipts: tuple[Receipt, ...]
    checkpoints: tuple[BlockProcessed, ...]

    @property
    def root(self) -> str:
        return rules.results_root(self.receipts, self.checkpoints)


class ChainReplay:
    """The chain's own kinds and every executing service, replayed from genesis block by block."""

    def __init__(self, genesis: Genesis, services: ServiceReplay | None = None) -> None:
        self.genesis = genesis
        self.services = services if services is not None else ServiceReplay.for_genesis(genesis)
        self.chain_state: dict[str, bytes | None] = {}
        self.chain_digest = rules.GENESIS_DIGEST

    @property
    def height(self) -> int:
        return self.services.height

    def execute(self, block: SealedBlock) -> ReplayedResults:
        chain = rules.execute_block(block, self.chain_state.get, self.chain_digest)
        self.chain_state.update(chain.writes)
        self.chain_digest = chain.state_digest
        executed = self.services.execute(block)
        pending = PendingResults.for_block(block, self.services.active, chain.receipts, chain.checkpoint)
        for result in executed:
            for receipt in result.receipts:
                pending.offer_receipt(receipt)
            pending.offer_checkpoint(result.checkpoint)
        if not pending.complete:  # a kind the chain admits but no replayed rule executes
            raise ValueError(f"block {block.height}: the replay gives no result for {pending.missing()}")
        receipts, checkpoints = pending.leaves()
        by_service = {r.checkpoint.service: r for r in executed}
        return ReplayedResults(block.height, chain, by_service, tuple(receipts), tuple(checkpoints))


class ResultsAudit:
    """What the audit makes of results: the replay, each header's ``last_results_root`` checked
    against it, and the audited node's record (``recorded(height)``: its ``results/<h>``, or
    None) compared with it. A record is never needed, only compared; where the header commits
    to exactly the node's record and the replay differs, the record names what differs.

    Decoding a record costs as much as a third of replaying doc's rules, so ``execute`` takes
    the record's root when someone (the audit's workers) computed it: a record with the
    replay's root is the replay, leaf for leaf; only a different one is read and compared."""

    def __init__(self, genesis: Genesis, recorded: Callable[[int], bytes | None] | None) -> None:
        self.replay = ChainReplay(genesis)
        self.recorded = recorded
        self.root = rules.genesis_tip(genesis).results_root
        self.last: ReplayedResults | None = None
        self.last_record: Results | None = None  # the previous block's record, if it differs
        self.last_record_agrees = False
        self.compared = 0
        self.divergences: list[Difference] = []
        self.blame: Difference | None = None

    def problem(self, header: BlockHeader) -> str | None:
        """Why ``header`` does not commit to the replayed results of the block before it."""
        if header.last_results_root == self.root:
            return None
        height, record, replayed = header.height - 1, self.last_record, self.last
        if record is not None and replayed is not None and rules.results_root(*record) == header.last_results_root:
            found = differences(record, replayed)
            if found:
                self.blame = found[0]
                more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
                first = found[0].describe("sealed")
                return f"last_results_root commits to results that differ from the replay: {first}{more}"
        if self.last_record_agrees:
            known = "this node's record of them agrees with the replay"
        else:
            known = "this node has no record of them" if record is None else "nor this node's record of them"
        digests = ", ".join(f"{c.service} {c.state_digest[:16]}…" for c in (replayed.checkpoints if replayed else ()))
        return (
            f"last_results_root does not match the replayed results of block {height} ({known}); "
            f"replayed checkpoints: {digests or 'none'}"
        )

    def execute(self, block: SealedBlock, record_root: str | None = None) -> None:
        """Replay ``block`` and compare the node's record of its results (``record_root``: that
        record's root, if already known; None: look the record up)."""
        replayed = self.replay.execute(block)
        self.last, self.root, self.last_record, self.last_record_agrees = replayed, replayed.root, None, False
        if self.recorded is None:
            return
        if record_root is not None and record_root == replayed.root:
            self.compared += 1
            self.last_record_agrees = True
            return
        raw = self.recorded(block.height)
        if raw is None:
            return
        try:
            self.last_record = decode_results(raw)
        except (ValueError, KeyError, TypeError) as exc:
            self.divergences.append(Difference(block.height, "?", None, f"an unreadable record ({exc})", "results"))
            return
        self.compared += 1
        found = differences(self.last_record, replayed)
        self.divergences += found
        self.last_record_agrees = not found


def record_root(raw: bytes | None) -> str | None:
    """The root of a node's record of a block's results (None if there is none or it is
    unreadable: then ``ResultsAudit.execute`` reads it and says so)."""
    if raw is None:
        return None
    try:
        return rules.results_root(*decode_results(raw))
    except (ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Difference:
    """One way a record of a block's results differs from the replay."""

    height: int
    service: str
    tx_id: str | None  # None: the service's checkpoint
    recorded: str
    replayed: str

    def describe(self, recorded_as: str = "recorded") -> str:
        what = f"{self.service} receipt of tx {self.tx_id}" if self.tx_id else f"{self.service} checkpoint"
        return f"block {self.height}, {what}: {self.recorded} {recorded_as}, {self.replayed} replayed"


def differences(recorded: Results, replayed: ReplayedResults) -> list[Difference]:
    """How ``recorded`` (a node's ``results/<h>``, or what a header was sealed over) differs from
    the replay: receipts in block order, then checkpoints chain first. Empty when the two give
    the same leaves in the same order."""
    receipts, checkpoints = recorded
    height = replayed.height
    found: list[Difference] = []
    theirs = {r.tx_id: r for r in receipts}
    for mine in replayed.receipts:
        other = theirs.pop(mine.tx_id, None)
        if other is None:
            found.append(Difference(height, mine.service, mine.tx_id, "no receipt", _receipt(mine)))
        elif other.leaf_bytes() != mine.leaf_bytes():
            field = _first_field(other, mine)
            found.append(Difference(height, mine.service, mine.tx_id, _receipt(other, field), _receipt(mine, field)))
    for other in theirs.values():
        found.append(Difference(height, other.service, other.tx_id, _receipt(other), "no receipt"))
    recorded_checkpoints = {c.service: c for c in checkpoints}
    for mine_cp in replayed.checkpoints:
        other_cp = recorded_checkpoints.pop(mine_cp.service, None)
        if other_cp is None or other_cp.canonical_bytes() != mine_cp.canonical_bytes():
            shown = "no checkpoint" if other_cp is None else _checkpoint(other_cp)
            found.append(Difference(height, mine_cp.service, None, shown, _checkpoint(mine_cp)))
    for other_cp in recorded_checkpoints.values():
        found.append(Difference(height, other_cp.service, None, _checkpoint(other_cp), "no checkpoint"))
    if not found and rules.results_root(receipts, checkpoints) != replayed.root:
        found.append(Difference(height, "?", None, "the same results in another order", "block order"))
    return found


_FIELDS = ("code", "status", "result", "service", "kind", "height", "index")


def _first_field(a: Receipt, b: Receipt) -> str:
    va, vb = a.json_value(), b.json_value()
    return next((f for f in _FIELDS if va[f] != vb[f]), "code")


def _receipt(receipt: Receipt, field: str = "code") -> str:
    value: Any = receipt.json_value()[field]
    return f"{field} {value if isinstance(value, str) else repr(value)}"[:160]


def _checkpoint(checkpoint: BlockProcessed) -> str:
    return f"height {checkpoint.height} digest {checkpoint.state_digest[:16]}…"


__all__ = [
    "ChainReplay",
    "Difference",
    "ReplayedResults",
    "ResultsAudit",
    "ServiceReplay",
    "differences",
    "record_root",
]
