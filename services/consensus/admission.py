"""Who may submit transactions and who validates next: the member admission list and the
validator schedule, which live on the chain (architecture: Consensus, Nodes).

Without a party service it is the genesis member list. With one, it is the party service's
state, which validators follow the way any downstream service does: they apply the party
service's events with the party rules' own ``mutate``, height by height as each
``BlockProcessed`` checkpoint arrives. Validators already wait for party's checkpoint of H-1
before proposing or voting for H, so every validator checks block H against the same
admission list, and the same validator set for H+1: party's state at the end of H-1.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from traco.core.domain import DictState, StateView
from traco.core.ports import BusMessage
from traco.core.schedule import Schedule, active_services
from traco.core.service_runtime import genesis_writes
from traco.core.topics import node_topic, topic
from traco.core.upstream import Upstream
from traco.schemas.genesis import Genesis, ValidatorPower, validator_set


class Admission:
    """``key in admission`` says whether a member key may submit now."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis_members = frozenset(m.public_key for m in genesis.members)
        self.state: StateView | None = None
        self.time = genesis.genesis_time
        self.height = 0
        self.upstream: Upstream | None = None
        self._local_height: Callable[[], int] | None = None
        self._verdicts_of: dict[tuple[str, str], bool | str] = {}
        self._verdicts_at: tuple[int, int, int] | None = None
        if "party" in genesis.params.services:
            from traco.services import registry

            party = registry.domain("party")
            self.upstream = Upstream(party, topic(genesis.chain_id, "events.party"))
            self.state = DictState(genesis_writes(party, registry.genesis_events(genesis)("party")))
            self._queries = importlib.import_module("traco.services.party.queries")

    def follow_local(self, view: StateView, height: Callable[[], int]) -> None:
        """Judge admission on this node's own party replica (same process): nothing read from
        a topic is involved, so nothing forged on one can change who is admitted. Until the
        replica has executed block 1 (which writes party's genesis state) the genesis state
        built here stands in for it."""
        self.state = _LocalParty(view, self.state, height)
        self.upstream = None
        self._local_height = height

    def trust_node(self, chain_id: str, node_id: str, public_key: str) -> None:
        """Follow party's events from node ``node_id``'s own topic, counting only checkpoints
        that node signed (and exactly the events they list)."""
        if self.upstream is not None:
            self.upstream = Upstream(
                self.upstream.domain,
                node_topic(chain_id, node_id, "events.party"),
                signer=(node_id, public_key),
                chain_id=chain_id,
            )

    @property
    def follows_party(self) -> bool:
        return self.upstream is not None or self._local_height is not None

    @property
    def checkpointed(self) -> int:
        """The last height party has published a checkpoint for."""
        return self.upstream.completed if self.upstream is not None else 0

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if self.state is None:
            return key in self.genesis_members
        verdicts = self._verdicts()
        verdict = verdicts.get(("admitted", key))
        if verdict is None:
            verdict = verdicts[("admitted", key)] = bool(self._queries.is_admitted(self.state, key, self.time))
        return bool(verdict)

    def member_of(self, key: str) -> str:
        """The member a key belongs to (its mempool quota is the member's, all keys together);
        the key itself without a party service or for a key party does not know."""
        if self.state is None:
            return key
        verdicts = self._verdicts()
        member = verdicts.get(("member", key))
        if member is None:
            record = self._queries.member(self.state, key, self.time)
            member = record["member_id"] if record is not None and "member_id" in record else key
            verdicts[("member", key)] = member
        return str(member)

    def _verdicts(self) -> dict[tuple[str, str], bool | str]:
        """What was judged of keys on party's state of ``party_height`` at ``time``: a validator
        asks about the same few senders for every transaction (admission, the mempool's quota,
        the proposal's recheck), and each answer was party's records read and parsed again.
        The answers depend on nothing else, so they are kept until either moves."""
        at = (self.party_height, self.time, id(self.state))
        if at != self._verdicts_at:
            self._verdicts_of.clear()
            self._verdicts_at = at
        return self._verdicts_of

    def validators(self, height: int) -> tuple[ValidatorPower, ...] | None:
        """The validator set the party service scheduled for ``height`` (None without party: the
        set never changes). Changes voted at h take effect at h + 2, so the state of the end of
        H-1, which every validator holds before proposing H, knows the set of H + 1."""
        if self.state is None:
            return None
        scheduled = self._queries.validator_set(self.state, height)
        return validator_set(ValidatorPower(public_key=key, power=power) for key, power in scheduled)

    def services_at(self, genesis_services: Sequence[str], height: int) -> tuple[str, ...]:
        """The services whose results block ``height`` has: the genesis services, then those an
        upgrade activated by then (party's schedule; ``core.schedule``)."""
        if self.state is None:
            return tuple(genesis_services)
        from traco.services import registry

        schedule = cast(Schedule, self._queries)
        return active_services(schedule, self.state, genesis_services, registry.ORDER, height)

    def upgraded_services(self, genesis_services: Sequence[str], height: int) -> tuple[str, ...]:
        """The services an upgrade activated or gave new rules by ``height``."""
        if self.state is None:
            return ()
        from traco.services import registry

        schedule = cast(Schedule, self._queries)
        active = active_services(schedule, self.state, genesis_services, registry.ORDER, height)
        return tuple(
            s for s in active if s not in genesis_services or schedule.rules_version(self.state, s, height) is not None
        )

    def empty_block_interval_ms(self, genesis_value: int) -> int:
        """The chain's empty-block interval: the council's last ``set_chain_params``, else the
        genesis value (chain-wide, so every validator starts an idle height alike)."""
        if self.state is None:
            return genesis_value
        value = self._queries.chain_params(self.state).get("empty_block_interval_ms")
        return genesis_value if value is None else int(value)

    def at_time(self, block_time: int) -> None:
        """Judge key validity (rotations, suspensions) as of the chain's last block time."""
        self.time = block_time

    @property
    def party_height(self) -> int:
        """The height of the party state admission is judged on."""
        return self._local_height() if self._local_height is not None else self.height

    def offer(self, batch: Sequence[BusMessage], limit: int) -> None:
        """Messages from ``events.party``; events are applied once their height is checkpointed
        and not beyond ``limit`` (the chain height this node has reached)."""
        if self.upstream is None:
            return
        for message in batch:
            self.upstream.offer(message)
        self.advance(limit)

    def advance(self, limit: int) -> None:
        """Apply checkpointed heights up to ``limit``: never ahead of this node's own chain."""
        if self.upstream is None or not isinstance(self.state, DictState):
            return
        for height in range(self.height + 1, min(self.upstream.completed, limit) + 1):
            self.upstream.apply(height, self.state)
            self.height = height


class _LocalParty:
    """A node's party replica as admission reads it: its store once block 1 is executed, the
    genesis state before."""

    def __init__(self, store: StateView, genesis_state: StateView | None, height: Callable[[], int]) -> None:
        self.store = store
        self.genesis_state = genesis_state
        self.height = height

    def _view(self) -> StateView:
        return self.store if self.height() > 0 or self.genesis_state is None else self.genesis_state

    def get(self, key: str) -> bytes | None:
        return self._view().get(key)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        return self._view().scan(prefix)
