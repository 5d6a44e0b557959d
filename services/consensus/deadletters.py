"""Dead letters written once per message, across restarts (architecture: Kafka is not trusted).

A validator re-reads ``blocks`` from the start and ``consensus`` from near its end after every
restart, so a poison message there would be dead-lettered again at each start. This remembers,
per topic and partition, the offset after the last message this node dead-lettered (in the
node's own store), and writes a message's dead letter only past it.
"""

from __future__ import annotations

import logging

import orjson

from traco.core.ports import BusMessage, EventBus, StateStore

log = logging.getLogger(__name__)

META_KEY = "dead_lettered_offsets"


class DeadLetters:
    def __init__(self, store: StateStore, bus: EventBus, dlq_topic: str) -> None:
        self.store = store
        self.bus = bus
        self.dlq_topic = dlq_topic
        raw = store.get_meta(META_KEY)
        self.next: dict[str, int] = orjson.loads(raw) if raw else {}
        self.written = 0  # dead letters written by this process (a metric)

    async def send(self, message: BusMessage, reason: str) -> None:
        """Dead-letter ``message`` unless this node already did (never raises)."""
        where = f"{message.topic}/{message.partition}"
        if message.offset < self.next.get(where, 0):
            return
        try:
            await self.bus.dead_letter(message, reason, self.dlq_topic)
        except Exception:
            log.exception("could not dead-letter %s at %d", where, message.offset)
            return
        self.next[where] = message.offset + 1
        self.written += 1
        self.store.set_meta(META_KEY, orjson.dumps(self.next))

    def forget_beyond(self, ends: dict[str, int]) -> None:
        """A partition that now ends before what we reported is a new log (a new broker)."""
        self.next = {w: o for w, o in self.next.items() if w not in ends or o <= ends[w]}
