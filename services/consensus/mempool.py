"""The mempool: admitted transactions waiting for a block, per sender in nonce order.

Pure bookkeeping, no I/O. A sender's transactions enter a block strictly in nonce order: a
gap waits (up to ``max_nonce_gap`` ahead of the chain), a nonce already used is refused. The
first envelope seen for a (sender, nonce) wins; a different envelope with the same nonce is
refused while the first is pending. Blocks take transactions in arrival order so no sender
can starve another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from traco.schemas.receipt import Code
from traco.schemas.tx import TxEnvelope
from traco.services.consensus.rules import Refusal


@dataclass(frozen=True)
class Pending:
    tx: TxEnvelope
    size: int
    partition: int
    traceparent: bytes | None = None


class Mempool:
    """Pending transactions of one validator.

    ``chain_nonce(sender)`` must return the last nonce sealed for ``sender``.
    """

    def __init__(self, max_nonce_gap: int = 1000, max_txs: int = 200_000) -> None:
        self.max_nonce_gap = max_nonce_gap
        self.max_txs = max_txs
        self._by_id: dict[str, Pending] = {}
        self._by_sender: dict[str, dict[int, str]] = {}
        self._verified: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._by_id

    def signature_checked(self, tx: TxEnvelope) -> bool:
        """Whether this exact envelope (id and signature) was verified when it was admitted."""
        return self._verified.get(tx.tx_id) == tx.signature

    def traceparent(self, tx_id: str) -> bytes | None:
        """The W3C trace context the transaction was submitted with, to carry to its receipt."""
        pending = self._by_id.get(tx_id)
        return pending.traceparent if pending else None

    def add(
        self, tx: TxEnvelope, size: int, partition: int, chain_nonce: int, traceparent: bytes | None = None
    ) -> Refusal | None:
        """Admit a transaction whose signature was already verified; or say why not."""
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
        slots = self._by_sender.setdefault(tx.sender, {})
        holder = slots.get(tx.nonce)
        if holder is not None:
            return Refusal(
                Code.NONCE_REUSED,
                f"nonce {tx.nonce} is taken by pending transaction {holder[:16]}…",
            )
        if len(self._by_id) >= self.max_txs:
            return Refusal(Code.MEMPOOL_FULL, "the mempool is full; submit again later")
        slots[tx.nonce] = tx.tx_id
        self._by_id[tx.tx_id] = Pending(tx, size, partition, traceparent)
        self._verified[tx.tx_id] = tx.signature
        return None

    def has_ready(self, chain_nonce: Callable[[str], int]) -> bool:
        """Whether some sender's next nonce is waiting (so a block can be built now)."""
        return any((chain_nonce(sender) + 1) in slots for sender, slots in self._by_sender.items())

    def select(self, chain_nonce: Callable[[str], int], max_txs: int, max_bytes: int) -> list[TxEnvelope]:
        """Transactions for the next block: arrival order, each sender's nonces consecutive."""
        expected: dict[str, int] = {}
        chosen: list[TxEnvelope] = []
        taken: set[str] = set()
        total = 0
        progress = True
        while progress and len(chosen) < max_txs:
            progress = False
            for tx_id, pending in self._by_id.items():
                if tx_id in taken:
                    continue
                tx = pending.tx
                want = expected.get(tx.sender)
                if want is None:
                    want = chain_nonce(tx.sender) + 1
                    expected[tx.sender] = want
                if tx.nonce != want:
                    continue
                if total + pending.size > max_bytes or len(chosen) >= max_txs:
                    return chosen
                chosen.append(tx)
                taken.add(tx_id)
                expected[tx.sender] = want + 1
                total += pending.size
                progress = True
        return chosen

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
        self._verified.pop(tx_id, None)
        if pending is None:
            return
        slots = self._by_sender.get(pending.tx.sender)
        if slots is not None:
            slots.pop(pending.tx.nonce, None)
            if not slots:
                del self._by_sender[pending.tx.sender]
