"""The mempool: admitted transactions waiting for a block, per sender in nonce order.

Pure bookkeeping, no I/O. A sender's transactions enter a block strictly in nonce order: a
gap waits (up to ``max_nonce_gap`` ahead of the chain), a nonce already used is refused. The
first envelope seen for a (sender, nonce) wins; a different envelope with the same nonce is
refused while the first is pending.

Fairness (architecture: Kafka is not trusted): each member may hold at most ``max_per_member`` pending transactions
(all its keys together), so one member's valid flood cannot fill the mempool; and a block takes
one transaction per sender in turn (senders in order of arrival), so a long queue from one
sender cannot push everyone else out of the next blocks.

What was valid when it arrived may not be valid when a block is built (a member removed, a key
rotated): ``select`` re-checks every transaction it offers with the caller's validity rule and
drops what fails, with the reason, so no member can make every proposal invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from traco.schemas.receipt import Code
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import wire
from traco.services.consensus.validity import Refusal

Recheck = Callable[[TxEnvelope], Refusal | None]


@dataclass(frozen=True)
class Pending:
    tx: TxEnvelope
    size: int  # canonical bytes, as blocks measure them
    partition: int
    member: str
    traceparent: bytes | None = None
    leaf: str = ""  # the Merkle leaf hash (hex) a compact proposal names it by


@dataclass
class Selection:
    """A block's transactions, and pending ones the re-check refused on the way."""

    txs: list[TxEnvelope]
    refused: list[tuple[Pending, Refusal]]


class Mempool:
    """Pending transactions of one validator.

    ``chain_nonce(sender)`` must return the last nonce sealed for ``sender``.
    """

    def __init__(self, max_nonce_gap: int = 1000, max_txs: int = 200_000, max_per_member: int | None = None) -> None:
        self.max_nonce_gap = max_nonce_gap
        self.max_txs = max_txs
        self.max_per_member = max_per_member if max_per_member is not None else max(1000, max_txs // 10)
        self._by_id: dict[str, Pending] = {}
        self._by_leaf: dict[str, str] = {}
        self._by_sender: dict[str, dict[int, str]] = {}
        self._per_member: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._by_id

    def pending_of(self, member: str) -> int:
        return self._per_member.get(member, 0)

    def by_leaf(self, leaf: str) -> TxEnvelope | None:
        """The pending envelope whose Merkle leaf hash is ``leaf`` (hex): exactly those
        canonical bytes, signature included (a compact proposal's transactions)."""
        tx_id = self._by_leaf.get(leaf)
        return self._by_id[tx_id].tx if tx_id is not None else None

    def traceparent(self, tx_id: str) -> bytes | None:
        """The W3C trace context the transaction was submitted with, to carry to its receipt."""
        pending = self._by_id.get(tx_id)
        return pending.traceparent if pending else None

    def add(
        self,
        tx: TxEnvelope,
        partition: int,
        chain_nonce: int,
        member: str,
        traceparent: bytes | None = None,
    ) -> Refusal | None:
        """Admit a transaction that passed the validity rule; or say why it cannot wait here."""
        if tx.nonce <= chain_nonce:
            return Refusal(
                Code.NONCE_REUSED,
                f"nonce {tx.nonce} is already used; the next nonce of this sender is {chain_nonce + 1}",
            )
        if tx.nonce > chain_nonce + self.max_nonce_gap:
            return Refusal(
                Code.NONCE_TOO_FAR,
                f"nonce {tx.nonce} is more than {self.max_nonce_gap} ahead of the next nonce {chain_nonce + 1}",
            )
        slots = self._by_sender.get(tx.sender, {})
        holder = slots.get(tx.nonce)
        if holder is not None:
            return Refusal(Code.NONCE_REUSED, f"nonce {tx.nonce} is taken by pending transaction {holder}")
        if self._per_member.get(member, 0) >= self.max_per_member:
            return Refusal(
                Code.MEMBER_QUOTA,
                f"member {member} already has {self.max_per_member} pending transactions, the most one member "
                "may have; submit again once some are sealed",
            )
        if len(self._by_id) >= self.max_txs:
            return Refusal(Code.MEMPOOL_FULL, "the mempool is full; submit again later")
        self._by_sender.setdefault(tx.sender, slots)[tx.nonce] = tx.tx_id
        leaf = wire.leaf_hash(tx)
        self._by_id[tx.tx_id] = Pending(tx, len(tx.canonical_bytes()), partition, member, traceparent, leaf)
        self._by_leaf[leaf] = tx.tx_id
        self._per_member[member] = self._per_member.get(member, 0) + 1
        return None

    def has_ready(self, chain_nonce: Callable[[str], int]) -> bool:
        """Whether some sender's next nonce is waiting (so a block can be built now)."""
        return any((chain_nonce(sender) + 1) in slots for sender, slots in self._by_sender.items())

    def select(
        self, chain_nonce: Callable[[str], int], max_txs: int, max_bytes: int, recheck: Recheck | None = None
    ) -> Selection:
        """Transactions for the next block: one per sender in turn, each sender's nonces
        consecutive, each re-checked with ``recheck``; what fails it leaves the mempool and is
        returned with its refusal."""
        chosen: list[TxEnvelope] = []
        refused: list[tuple[Pending, Refusal]] = []
        expected = {sender: chain_nonce(sender) + 1 for sender in self._by_sender}
        active = list(self._by_sender)
        total = 0
        full = False
        while active and not full:
            still: list[str] = []
            for sender in active:
                tx_id = self._by_sender[sender].get(expected[sender])
                if tx_id is None:
                    continue
                pending = self._by_id[tx_id]
                refusal = recheck(pending.tx) if recheck is not None else None
                if refusal is not None:
                    refused.append((pending, refusal))
                    continue
                if len(chosen) >= max_txs or total + pending.size > max_bytes:
                    full = True
                    break
                chosen.append(pending.tx)
                total += pending.size
                expected[sender] += 1
                still.append(sender)
            active = still
        for pending, _ in refused:
            self._drop(pending.tx.tx_id)
        return Selection(chosen, refused)

    def purge_senders(self, keep: Callable[[str], bool]) -> list[Pending]:
        """Drop every pending transaction of the senders ``keep`` refuses (removed members,
        rotated keys): one check per sender, not per transaction."""
        dropped: list[Pending] = []
        for sender in [s for s in self._by_sender if not keep(s)]:
            for tx_id in list(self._by_sender[sender].values()):
                dropped.append(self._by_id[tx_id])
                self._drop(tx_id)
        return dropped

    def remove_sealed(self, txs: Iterable[TxEnvelope], chain_nonce: Callable[[str], int]) -> list[Pending]:
        """Drop what a sealed block contained, and return pending transactions it made invalid
        (another envelope took their nonce) so that they can be refused with a receipt."""
        senders: set[str] = set()
        for tx in txs:
            senders.add(tx.sender)
            self._drop(tx.tx_id)
        stale: list[Pending] = []
        for sender in senders:
            last = chain_nonce(sender)
            slots = self._by_sender.get(sender, {})
            for nonce in [n for n in slots if n <= last]:
                pending = self._by_id.get(slots[nonce])
                if pending is not None:
                    stale.append(pending)
                self._drop(slots[nonce])
        return stale

    def _drop(self, tx_id: str) -> None:
        pending = self._by_id.pop(tx_id, None)
        if pending is None:
            return
        self._by_leaf.pop(pending.leaf, None)
        left = self._per_member.get(pending.member, 1) - 1
        if left > 0:
            self._per_member[pending.member] = left
        else:
            self._per_member.pop(pending.member, None)
        slots = self._by_sender.get(pending.tx.sender)
        if slots is not None:
            slots.pop(pending.tx.nonce, None)
            if not slots:
                del self._by_sender[pending.tx.sender]
