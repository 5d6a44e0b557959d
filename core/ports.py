"""Ports: the abstract interfaces every adapter implements.

Domain code and services depend only on these classes; the concrete adapters live in
``traco.core.adapters`` (one module per technology) and are chosen from settings in one
factory. Keeping every port in one module makes the seams of the system visible at a glance.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the bus half of this module must not need the schemas at run time
    from traco.schemas.block import BlockHeader, SealedBlock
    from traco.schemas.events import DomainEvent
    from traco.schemas.receipt import Receipt


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create before anything is produced to it (decision 0006: no auto-creation)."""

    name: str
    partitions: int = 1


@dataclass(frozen=True)
class BusMessage:
    """One message as read from the bus: raw bytes plus where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        """The first header called ``name``, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to publish; ``partition=None`` lets the key choose the partition."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Mapping[str, bytes] = field(default_factory=dict)
    partition: int | None = None


StartAt = Literal["earliest", "latest"] | Mapping[int, int]


class EventBus(ABC):
    """Kafka-shaped transport: explicit topics, keyed acked publishes, reads by position.

    Consumers are assigned partitions by hand (no consumer groups): a service's position is a
    block height it stores itself, so it only needs "read topic T from offset O".
    """

    @abstractmethod
    async def start(self) -> None:
        """Connect; must be called before any other method."""

    @abstractmethod
    async def stop(self) -> None:
        """Flush outstanding publishes and disconnect."""

    @abstractmethod
    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""

    @abstractmethod
    async def publish(self, message: OutgoingMessage) -> tuple[int, int]:
        """Publish one message and wait for the broker's acknowledgement.

        Returns ``(partition, offset)``. The current trace context is injected as a W3C
        ``traceparent`` header unless the message already carries one.
        """

    @abstractmethod
    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> list[tuple[int, int]]:
        """Publish a batch, in order per partition, and wait until every one is acknowledged."""

    def consume(
        self,
        topic: str,
        start: StartAt = "earliest",
        partitions: Sequence[int] | None = None,
        max_batch: int = 500,
    ) -> AsyncGenerator[list[BusMessage], None]:
        """Yield batches of messages from ``topic`` (all partitions unless given), forever.

        ``start`` is ``"earliest"``, ``"latest"`` or a ``{partition: offset}`` mapping. Bad
        arguments raise ``ValueError`` here, at the call, not at the first iteration.
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if isinstance(start, str) and start not in ("earliest", "latest"):
            raise ValueError(f"start must be 'earliest', 'latest' or a mapping, got {start!r}")
        return self._consume(topic, start, partitions, max_batch)

    @abstractmethod
    def _consume(
        self, topic: str, start: StartAt, partitions: Sequence[int] | None, max_batch: int
    ) -> AsyncGenerator[list[BusMessage], None]:
        """The adapter's reading loop, given checked arguments."""

    @abstractmethod
    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset to be written on each partition of ``topic``."""

    @abstractmethod
    async def dead_letter(self, message: BusMessage, error: str, dlq_topic: str) -> None:
        """Send an undecodable message to the dead-letter topic with the reason; never drop it."""


# --------------------------------------------------------------------------- storage ports


class BlockStore(ABC):
    """The sealed chain: the source of truth from which everything else can be rebuilt.

    Append-only and gap-free: block ``h`` is stored only after block ``h-1``. Putting the same
    block twice is a no-op; putting a different block at a stored height raises ``ForkDetected``
    (it means two blocks were sealed at one height, which BFT consensus must never allow).
    """

    @abstractmethod
    def height(self) -> int:
        """The height of the last stored block, 0 when empty."""

    @abstractmethod
    def put_block(self, block: SealedBlock) -> bool:
        """Append ``block``; True if stored, False if it was already there (same hash)."""

    @abstractmethod
    def block(self, height: int) -> SealedBlock | None:
        """The sealed block at ``height``, or None."""

    @abstractmethod
    def header(self, height: int) -> BlockHeader | None:
        """The header at ``height``, or None (cheaper than ``block``)."""

    @abstractmethod
    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        """``(height, index)`` of a sealed transaction, or None."""

    @abstractmethod
    def blocks(self, start: int, end: int) -> Iterator[SealedBlock]:
        """Blocks ``start..end`` inclusive, in order (for replay and audit)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""


@dataclass(frozen=True)
class StateBatch:
    """Everything one block changed in one service, committed in one storage transaction.

    ``writes`` maps state keys to new values (None deletes). Committing the batch for a height
    that is already stored changes nothing: that is what makes processing a block twice safe.
    """

    height: int
    writes: Mapping[str, bytes | None]
    receipts: Sequence[Receipt]
    events: Sequence[DomainEvent]
    state_digest: str

    def __post_init__(self) -> None:
        """Refuse a batch no store could keep consistently, before any store sees it.

        Receipts are stored and listed in the batch's order (transactions' receipts carry their
        index in the block; a system receipt — a command's, a clause's — has none), and events
        by height; so every receipt must carry this batch's height, and no two the same block
        index. Raises ``ValueError``.
        """
        if self.height < 1:
            raise ValueError(f"a state batch has a height >= 1, not {self.height}")
        seen: set[int] = set()
        for receipt in self.receipts:
            if receipt.height != self.height:
                raise ValueError(
                    f"receipt {receipt.tx_id} has height {receipt.height}; a batch at height {self.height} needs it"
                )
            if receipt.index is None:
                continue
            if receipt.index in seen:
                raise ValueError(f"two receipts at index {receipt.index} of height {self.height}")
            seen.add(receipt.index)
        for event in self.events:
            if event.height != self.height:
                raise ValueError(f"event {event.type} has height {event.height}, the batch {self.height}")


class StateStore(ABC):
    """A service's own state, its receipts and events, and the height it has executed to."""

    @abstractmethod
    def height(self) -> int:
        """The last committed height, 0 when empty."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value of one state key, or None."""

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of the keys that exist (absent keys are left out). Adapters that can
        read many keys in one round trip override this; execution prefetches a block's keys."""
        found: dict[str, bytes] = {}
        for key in keys:
            value = self.get(key)
            if value is not None:
                found[key] = value
        return found

    @abstractmethod
    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """All ``(key, value)`` pairs whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def commit(self, batch: StateBatch) -> bool:
        """Apply ``batch`` atomically; True if applied, False if that height was already stored.

        Raises ``HeightGap`` if ``batch.height`` is not ``height() + 1`` nor already stored.
        """

    @abstractmethod
    def receipt(self, tx_id: str) -> Receipt | None:
        """The receipt of a transaction (sealed ones win over pre-ordering rejections)."""

    @abstractmethod
    def receipts(self, height: int) -> list[Receipt]:
        """The receipts of a block's transactions, in block order."""

    @abstractmethod
    def put_rejection(self, receipt: Receipt) -> None:
        """Record a receipt for a transaction refused before ordering (no height).

        Never overwrites a receipt that has a height.
        """

    @abstractmethod
    def events(self, height: int) -> list[DomainEvent]:
        """The events emitted while executing block ``height``, in order."""

    @abstractmethod
    def state_digest(self, height: int) -> str | None:
        """The ``BlockProcessed`` digest at ``height``, or None."""

    @abstractmethod
    def get_meta(self, key: str) -> bytes | None:
        """Node-local data outside the replicated state (e.g. a validator's consensus state)."""

    @abstractmethod
    def set_meta(self, key: str, value: bytes, durable: bool = True) -> None:
        """Store node-local data. ``durable``: on disk before this returns (it guards a validator
        against signing twice after a crash), where a state commit may lag a power loss; a
        record that can be recomputed (a height's results) passes ``durable=False`` and is then
        as safe as a state commit (it survives a crash of the process)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""


# --------------------------------------------------------------------------- signing port


class Signer(ABC):
    """Ed25519 signing with a key its holder never hands out: a key file's key in memory, or
    a key inside an HSM reached through PKCS#11 (``traco.core.adapters.signer_*``).

    Validators sign votes and proposals and nodes sign checkpoints through this port, so
    where an HSM is configured no raw key is ever in the process. It is synchronous because
    every caller signs inside a synchronous step (building a vote, a checkpoint): an HSM
    call costs about a millisecond and a validator signs a handful of messages per height.
    """

    @property
    @abstractmethod
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""

    @abstractmethod
    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature (RFC 8032, deterministic) of ``message``.

        Raises ``traco.core.errors.SignerError`` if the signer cannot sign.
        """

    def close(self) -> None:  # noqa: B027  (most signers hold nothing to release)
        """Release what the signer holds (an HSM session); signing afterwards fails."""
