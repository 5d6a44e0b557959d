"""The contract between a service's pure rules and the service runtime (architecture: Execution).

A service's rules are pure functions: ``execute(state, upstream, tx) -> Accepted | Rejected``
decides one transaction against the service's own state (after the earlier transactions of the
same block) and read-only views of its upstream services' state as of the end of the previous
block; ``mutate(state, event) -> writes`` says how one event changes the state. State is a
key/value space of canonical-JSON bytes, so the runtime can store it in any ``StateStore`` and
a replay that applies the same events arrives at the same bytes.

The runtime (not the rules) reads blocks, keeps the overlay of a block's writes, stores the
writes, events, receipts and height in one storage transaction, and publishes. Rejections are
values with a receipt code, never exceptions; an exception escaping ``execute`` is a bug in the
rules and the runtime stops rather than sealing a guess.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

from traco.core.canonical import canonicalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TxContext:
    """One sealed transaction as a service sees it; ``time`` is the block time (ms, UTC).

    A command another service addressed to this one (``Command``) is decided by the same rules
    through the same context: then ``origin`` names the commanding service, ``tx_id`` is the
    command's id, ``index`` is -1 (commands run before the block's transactions) and ``sender``
    is the command's authority — the sender of the transaction that caused it, never a value
    the commanding rules chose.
    """

    chain_id: str
    height: int
    index: int
    time: int
    tx_id: str
    sender: str
    kind: str
    payload: Mapping[str, Any]
    origin: str | None = None
    rules: int = 1
    """The version of the service's rules in force at this height (``core.schedule``): a rule
    that changed decides by it, so replaying history uses the rules of each height."""


@dataclass(frozen=True)
class BlockContext:
    """What a clause (``end_block``) may depend on: the block's height and time, nothing else
    (architecture: Execution: clauses are driven only by height and time, so every replica fires the same)."""

    chain_id: str
    height: int
    time: int
    tx_count: int
    rules: int = 1


class StateView(Protocol):
    """Read access to one service's state (keys are ``/``-separated, values canonical JSON)."""

    def get(self, key: str) -> bytes | None: ...

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class Event:
    """A domain event: stable ``type`` name and ``version``; ``data`` holds JSON values only
    (integers for amounts, never floats)."""

    type: str
    aggregate_id: str
    data: Mapping[str, Any]
    version: int = 1


@dataclass(frozen=True)
class Command:
    """A request from a later service to an earlier one (architecture: Execution, commands): ``target``
    executes ``kind`` with ``payload`` at the start of the next height, under its own rules.

    The rules that return it choose only what to ask; the runtime adds who asks (the
    originating transaction's sender) and an id, so no rule can borrow another's authority.
    """

    target: str
    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Accepted:
    events: tuple[Event, ...]
    result: Mapping[str, Any] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True)
class ClauseEffect:
    """One firing of a clause at the end of a block: ``clause`` names it (``hold_expiry``),
    ``subject`` what it acted on (a hold id); it gets a system receipt naming both."""

    clause: str
    subject: str
    events: tuple[Event, ...]
    commands: tuple[Command, ...] = ()
    authority: str | None = None
    """Whose authority the commands carry: by default the service's own (``service:<name>``);
    for a standing instruction, the key that signed the transaction which gave it (a borrower's
    request to take the best offer at a deadline). Either way a transaction caused it."""


@dataclass(frozen=True)
class CommandOutcome:
    """What became of a command this service sent, as the target recorded it (seen by the
    origin two heights after it asked, so that it can complete or unwind)."""

    command_id: str
    target: str
    kind: str
    payload: Mapping[str, Any]
    authority: str
    accepted: bool
    code: str
    result: Mapping[str, Any]


@dataclass(frozen=True)
class Rejected:
    """A rejection receipt: ``code`` is an UPPER_SNAKE reason code, ``message`` says why."""

    code: str
    message: str


Outcome = Accepted | Rejected


class Domain(Protocol):
    """What a service's rules module provides to the runtime.

    Optional hooks, found by name (a domain without them has no such behaviour):

    - ``genesis(section: Mapping | None, genesis) -> Sequence[Event]``: the events that give
      the service its state at height 0, from its section of the genesis file.
    - ``end_block(state, upstream, block: BlockContext) -> Sequence[ClauseEffect]``: the
      service's clauses, run after the block's transactions.
    - ``command_kinds: frozenset[str]``: the kinds other services may command it to execute.
    - ``on_command_outcome(state, upstream, outcome: CommandOutcome, block) -> Sequence[Event]``:
      how it completes or unwinds when a command it sent was executed or refused.
    - ``upstream_keeps: Mapping[str, tuple[str, ...] | None]``: per upstream, the key prefixes
      of its state this service keeps in its projection (None: all); its rules read no more.
    """

    service: str
    kinds: frozenset[str]

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome: ...

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]: ...


def encode(value: Any) -> bytes:
    """The one encoding of state values: RFC 8785 canonical JSON."""
    return canonicalize(value)


class DictState:
    """A ``StateView`` over a plain dict, with an optional base view under it.

    The runtime uses it as a block's overlay; tests use it as an in-memory state.

    Why it keeps its keys sorted: a rule scans a prefix (an order book's best price, the loans
    due by now, a request's ranked offers) after the block's earlier transactions wrote to the
    overlay, so a scan that looked at every key written so far made a busy block quadratic.
    Keys are kept in a sorted list (``bisect``), a scan reads only its own range, and the base's
    scan (sorted, as every ``StateView``'s is) is merged lazily, so a caller that stops early
    (``break`` at the first entry not yet due) reads only what it used.
    """

    BULK: Final = 64
    """Above this many new keys in one ``apply``, re-sort once instead of inserting one by one."""

    def __init__(self, data: Mapping[str, bytes | None] | None = None, base: StateView | None = None) -> None:
        self.data: dict[str, bytes | None] = dict(data or {})
        self._keys: list[str] = sorted(self.data)
        self.base = base
        self.hints: dict[str, str] = {}
        """Seek hints a reader leaves for its later reads (not state: never stored or hashed):
        ``hints[name]`` is a key to seek to, in a meaning only that reader gives it (the
        exchange's book: ``services/trade/exchange/state.py``). ``hint`` also finds its base's;
        ``execute_one`` carries a transaction's hints into the block's overlay with its writes
        (not those of a transaction that failed), so a rule's hints live as long as the block's
        overlay and never reach the state under it. A hint must stay true in every later state
        of the view it was left on: the reader vouches for that by its own key layout."""

    def hint(self, name: str) -> str | None:
        """``hints[name]`` of this view, else of the nearest ``DictState`` under it that has one."""
        view: StateView | None = self
        while isinstance(view, DictState):
            found = view.hints.get(name)
            if found is not None:
                return found
            view = view.base
        return None

    def get(self, key: str) -> bytes | None:
        if key in self.data:
            return self.data[key]
        return self.base.get(key) if self.base is not None else None

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Sorted by key. Lazy: do not ``apply`` to this view while iterating one of its scans."""
        return self.scan_from(prefix, prefix)

    def scan_from(self, prefix: str, start: str) -> Iterator[tuple[str, bytes]]:
        """``scan(prefix)`` from the first key ``>= start`` on, seeking rather than reading the
        keys before it: in its own keys (``bisect``) and in the base's when the base can seek
        (``scan_from`` below). Why: a reader that knows where the live keys of a prefix begin
        (``hints``) should not pay for the deleted ones before them."""
        keys = self._keys
        i = bisect.bisect_left(keys, max(prefix, start))
        if self.base is None:
            while i < len(keys) and keys[i].startswith(prefix):
                value = self.data[keys[i]]
                if value is not None:
                    yield keys[i], value
                i += 1
            return
        mine: list[tuple[str, bytes | None]] = []
        while i < len(keys) and keys[i].startswith(prefix):
            mine.append((keys[i], self.data[keys[i]]))
            i += 1
        below = self.base.scan(prefix) if start <= prefix else scan_from(self.base, prefix, start)
        yield from _merged(below, mine)

    def apply(self, writes: Mapping[str, bytes | None]) -> None:
        new = [key for key in writes if key not in self.data]
        self.data.update(writes)
        if len(new) > self.BULK:
            self._keys.extend(new)
            self._keys.sort()
        else:
            for key in new:
                bisect.insort(self._keys, key)


def scan_from(view: StateView, prefix: str, start: str) -> Iterator[tuple[str, bytes]]:
    """``view.scan(prefix)`` from the first key ``>= start`` on. A view with a ``scan_from`` of
    its own (``DictState``) seeks; any other ``StateView`` is scanned from the prefix and the
    keys before ``start`` are dropped (read, then skipped), so every view works and the port
    stays as it is."""
    seek: Callable[[str, str], Iterator[tuple[str, bytes]]] | None = getattr(view, "scan_from", None)
    if seek is not None:
        return seek(prefix, start)
    return itertools.dropwhile(lambda item: item[0] < start, view.scan(prefix))


def _merged(base: Iterator[tuple[str, bytes]], mine: list[tuple[str, bytes | None]]) -> Iterator[tuple[str, bytes]]:
    """Two key-sorted streams as one; ``mine`` (the overlay) wins on equal keys and deletes with ``None``."""
    j = 0
    for key, value in base:
        while j < len(mine) and mine[j][0] < key:
            own = mine[j][1]
            if own is not None:
                yield mine[j][0], own
            j += 1
        if j < len(mine) and mine[j][0] == key:
            own = mine[j][1]
            if own is not None:
                yield key, own
            j += 1
            continue
        yield key, value
    for key, own in mine[j:]:
        if own is not None:
            yield key, own


T = TypeVar("T")


class UpstreamView:
    """An upstream service's state as one block's execution reads it, with a memo for the block.

    Why: every transaction of a block asks the same questions of its upstreams — may this key
    submit this kind, which member is behind it, is its KYC valid — and each answer was parsed
    and computed again from the same records (a fifth of a transfer's execution). An upstream's
    state does not change while a block executes (a service sees its upstreams as of the end of
    the height before, architecture: Execution), and the block time is one value, so an answer
    found once holds for the rest of the block. ``execute_service_block`` and ``run_block`` wrap
    each upstream view in a new ``UpstreamView`` per block: the memo never outlives the block,
    and the state under it is never written through it."""

    def __init__(self, base: StateView) -> None:
        self.base = base
        self.memo: dict[Hashable, Any] = {}

    def get(self, key: str) -> bytes | None:
        return self.base.get(key)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        return self.base.scan(prefix)

    def scan_from(self, prefix: str, start: str) -> Iterator[tuple[str, bytes]]:
        return scan_from(self.base, prefix, start)


def upstream_views(upstream: Mapping[str, StateView]) -> dict[str, StateView]:
    """Each upstream view wrapped for one block (``UpstreamView``)."""
    return {name: UpstreamView(view) for name, view in upstream.items()}


def remembered(view: StateView, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, remembered for the block when ``view`` is an upstream as a block reads it
    (``UpstreamView``), else computed every time. ``compute`` must be a pure read of ``view``
    and of the values in ``key`` alone; the value returned is shared, so it must not be
    changed (return immutable values, or read-only mappings)."""
    if not isinstance(view, UpstreamView):
        return compute()
    memo = view.memo
    if key in memo:
        return memo[key]  # type: ignore[no-any-return]
    value = memo[key] = compute()
    return value


def run_block(
    domain: Domain, state: StateView, upstream: Mapping[str, StateView], txs: list[TxContext]
) -> tuple[list[tuple[TxContext, Outcome]], dict[str, bytes | None]]:
    """Execute a block's transactions of ``domain`` in order; each sees the earlier ones' writes.

    Returns each transaction's outcome and the block's combined writes. Pure: this is what the
    runtime, a replaying auditor and the tests all call.
    """
    overlay = DictState(base=state)
    outcomes: list[tuple[TxContext, Outcome]] = []
    upstream = upstream_views(upstream)
    for tx in txs:
        if tx.kind not in domain.kinds:
            continue
        outcomes.append((tx, execute_one(domain, overlay, upstream, tx)))
    return outcomes, overlay.data


def execute_one(domain: Domain, overlay: DictState, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
    """One transaction, all or nothing: its writes reach ``overlay`` only if every step passed.

    A rule that raises (a bug, or a payload no rule foresaw) must not stop the service on this
    block forever: the transaction is rejected with ``EXECUTION_FAILED`` naming the exception's
    type, which every replica computes alike (the message is not part of the results root).
    """
    scratch = DictState(base=overlay)
    try:
        outcome = domain.execute(scratch, upstream, tx)
        if isinstance(outcome, Accepted):
            for event in outcome.events:
                scratch.apply(domain.mutate(scratch, event))
    except Exception as exc:  # deliberately broad: see the docstring
        log.error("%s: %s failed on tx %s: %r", domain.service, tx.kind, tx.tx_id, exc)
        return Rejected(
            "EXECUTION_FAILED", f"the {domain.service} rules failed on this transaction: {type(exc).__name__}"
        )
    overlay.apply(scratch.data)
    overlay.hints.update(scratch.hints)
    return outcome
