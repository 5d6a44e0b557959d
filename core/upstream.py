"""What a service holds of an upstream service's events topic, and when a height of it counts
(architecture: Execution, Kafka is not trusted). Split from the service runtime, which, like the
validators' admission, reads its upstreams through it: one reading of the topic, one way to apply it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from traco.core.boundary import Rejected, decode_model
from traco.core.commands import RUNTIME_EVENTS
from traco.core.domain import DictState, Domain, Event
from traco.core.nodes import check_signed
from traco.core.ports import BusMessage
from traco.core.service_exec import GENESIS_DIGEST, next_digest
from traco.schemas.events import BlockProcessed, DomainEvent, SignedCheckpoint

log = logging.getLogger(__name__)

MAX_HEIGHTS_AHEAD = 100_000
"""Upstream events and checkpoints further ahead of the last verified height are refused."""
MAX_EVENTS_PER_HEIGHT = 500_000
"""Distinct events kept for one upstream height before its checkpoint arrives."""
MAX_CANDIDATES_PER_HEIGHT = 8
"""Different checkpoints claiming one height kept until one is borne out by the events."""


@dataclass
class Upstream:
    """What one follower of an upstream service holds of its events topic: events by height
    until they are applied, and the last height whose checkpoint it verified.

    Used by every executing service for its upstreams and by the validators for party (the
    admission list and the validator set): one reading of the topic, one way to apply it.

    Nothing on the topic is taken on its word (architecture: Kafka is not trusted). Every message passes the boundary
    decoder. A height completes only when a checkpoint for exactly the next height is verified:

    - with ``signer`` (a node's id and public key), only a ``SignedCheckpoint`` signed by that
      node counts; it lists the hash of each event it covers, so exactly those events are
      applied and a forged event on the topic is never picked, whatever its position;
    - without, a plain ``BlockProcessed`` whose digest equals the one recomputed over the first
      event seen at each position ``(height, tx index, event index)``.

    Either way the digest chain (``state_digest_H = SHA-256(state_digest_{H-1} ‖ events of H)``)
    is recomputed from the genesis digest on. A mismatch is reported and the height waits.
    """

    domain: Domain
    topic: str
    signer: tuple[str, str] | None = None
    chain_id: str = ""
    events: dict[int, dict[bytes, DomainEvent]] = field(default_factory=dict)
    checkpoints: dict[int, list[tuple[str, tuple[str, ...] | None]]] = field(default_factory=dict)
    verified: dict[int, list[DomainEvent]] = field(default_factory=dict)
    completed: int = 0
    digest: str = GENESIS_DIGEST
    refused: int = 0
    mismatched: set[int] = field(default_factory=set)

    def offer(self, message: BusMessage) -> None:
        """Take one message; events are kept until their height is applied or passed."""
        if b'"SignedCheckpoint"' in message.value or b'"BlockProcessed"' in message.value:
            self._offer_checkpoint(message)
            return
        event = decode_model(DomainEvent, message.value, 1 << 20)
        if isinstance(event, Rejected):
            self._refuse(message, event.reason)
            return
        if self.completed < event.height <= self.completed + MAX_HEIGHTS_AHEAD:
            held = self.events.setdefault(event.height, {})
            if len(held) < MAX_EVENTS_PER_HEIGHT:
                held.setdefault(hashlib.sha256(event.canonical_bytes()).digest(), event)
            self._verify()

    def accept_local(self, height: int, events: Sequence[DomainEvent], digest: str) -> None:
        """The upstream's own result, handed over inside one node's process (nothing to check:
        the same process computed it)."""
        self.verified[height] = list(events)
        if height > self.completed:
            self.completed, self.digest = height, digest

    def _offer_checkpoint(self, message: BusMessage) -> None:
        hashes: tuple[str, ...] | None = None
        if self.signer is not None:
            signed = decode_model(SignedCheckpoint, message.value, 64 << 20)
            if isinstance(signed, Rejected):
                self._refuse(message, signed.reason)
                return
            problem = check_signed(self.chain_id, signed, *self.signer)
            if problem:
                self._refuse(message, problem)
                return
            checkpoint, hashes = signed.checkpoint, signed.event_hashes
        else:
            plain = decode_model(BlockProcessed, message.value, 4096)
            if isinstance(plain, Rejected):
                self._refuse(message, plain.reason)
                return
            checkpoint = plain
        if checkpoint.height > self.completed + MAX_HEIGHTS_AHEAD:
            self._refuse(message, f"checkpoint of height {checkpoint.height} is far beyond {self.completed}")
        elif checkpoint.height > self.completed:
            claims = self.checkpoints.setdefault(checkpoint.height, [])
            if len(claims) < MAX_CANDIDATES_PER_HEIGHT:
                claims.append((checkpoint.state_digest, hashes))
            self._verify()

    def _refuse(self, message: BusMessage, reason: str) -> None:
        self.refused += 1
        log.warning("refusing a message on %s at %d: %s", message.topic, message.offset, reason)

    def _chosen(self, height: int, hashes: tuple[str, ...] | None) -> list[DomainEvent] | None:
        held = self.events.get(height, {})
        if hashes is not None:
            picked = [held.get(bytes.fromhex(h)) for h in hashes]
            return None if any(e is None for e in picked) else [e for e in picked if e is not None]
        first: dict[tuple[int, int, int], DomainEvent] = {}
        for event in held.values():
            first.setdefault(event.position, event)
        return [first[p] for p in sorted(first)]

    def _verify(self) -> None:
        """Complete every next height with a checkpoint that the events held bear out."""
        while (claims := self.checkpoints.get(self.completed + 1)) is not None:
            height = self.completed + 1
            for state_digest, hashes in claims:
                events = self._chosen(height, hashes)
                if events is not None and next_digest(self.digest, events) == state_digest:
                    break
            else:
                if height not in self.mismatched:
                    self.mismatched.add(height)
                    log.error(
                        "%s events of height %d do not match its checkpoint; waiting", self.domain.service, height
                    )
                return
            del self.checkpoints[height]
            self.events.pop(height, None)
            self.verified[height] = events
            self.completed, self.digest = height, state_digest

    def take(self, height: int) -> list[DomainEvent]:
        """The verified events of ``height``, forgotten here (with any earlier ones left over)."""
        events = self.verified.pop(height, [])
        for earlier in [h for h in self.verified if h < height]:
            del self.verified[earlier]  # verified, and never to be applied by this follower
        return events

    def apply(self, height: int, state: DictState) -> list[DomainEvent]:
        """Apply (and forget) the verified events of ``height`` to ``state`` with the upstream's
        own rules, and return them. The runtime's own events (commands and their outcomes) are
        not the upstream's state and are not applied. An event its rules cannot apply is
        reported and skipped."""
        events = self.take(height)
        for event in events:
            if event.type in RUNTIME_EVENTS:
                continue
            try:
                state.apply(self.domain.mutate(state, Event(event.type, event.aggregate_id, event.data, event.version)))
            except Exception as exc:
                log.error("%s event at %s cannot be applied: %r", self.domain.service, event.position, exc)
        return events


__all__ = ["Upstream"]
