"""Test helpers for the trade rules: a cast of members in a party view (party's own key layout,
as ``tests/doc/helpers.py`` builds one), and a chain that runs every height through
``traco.core.service_exec.execute_service_block`` exactly as the runtime will — outcomes,
commands, transactions, clauses — from the ``trade`` genesis section.

``Chain`` keeps the trade state, gives every block a height and a block time, and records every
event the service emitted (genesis first), so a test can replay them into an empty state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from traco.core import commands as cmd
from traco.core import crypto
from traco.core.canonical import canonicalize
from traco.core.domain import CommandOutcome, DictState, Event, encode
from traco.core.service_exec import GENESIS_DIGEST, ServiceBlockResult, execute_service_block
from traco.schemas.block import BlockHeader, Commit, CommitSig, SealedBlock
from traco.schemas.genesis import Genesis
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope
from traco.services.party import queries as party_queries
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import mutations
from traco.services.trade import queries as q
from traco.services.trade.domain import TradeDomain

CHAIN = "tradetest"
T0 = 1_700_000_000_000
DAY = 86_400_000
FAR_FUTURE = 2**52


def hex32(*parts: object) -> str:
    return hashlib.sha256(canonicalize([str(p) for p in parts])).hexdigest()


@dataclass(frozen=True)
class Actor:
    name: str
    key: str

    @classmethod
    def named(cls, name: str) -> Actor:
        seed = hashlib.sha256(f"trade-test/{name}".encode()).digest()
        return cls(name, crypto.public_key(seed).hex())


@dataclass(frozen=True)
class MemberSpec:
    member_id: str
    roles: tuple[str, ...]
    status: str = "admitted"
    kyc: str | None = "verified"
    kyc_expires: int = FAR_FUTURE
    qualified: bool = False


ROLE_KINDS: dict[str, list[str]] = {
    **{role: ["trade.*"] for role in ("exporter", "importer", "bank", "custodian", "council", "investor")},
    "regulator": ["trade.trc.freeze", "trade.trc.unfreeze", "trade.transfer"],
    "carrier": ["doc.*"],
}


def party_view(members: Mapping[Actor, MemberSpec], role_kinds: Mapping[str, list[str]] = ROLE_KINDS) -> DictState:
    """Party state in party's own layout: ``member/<key>``, ``member_keys/<id>``, ``role_kinds/<role>``."""
    data: dict[str, bytes | None] = {}
    for actor, spec in members.items():
        kyc: dict[str, Any] | None = None
        if spec.kyc is not None:
            kyc = {"status": spec.kyc, "expires_at": spec.kyc_expires, "provider": "kyc"}
            if spec.qualified:
                kyc["qualified_investor"] = True
        data[f"member/{actor.key}"] = encode(
            {
                "member_id": spec.member_id,
                "name": spec.member_id,
                "organisation": f"{spec.member_id} Ltd",
                "jurisdiction": "SG",
                "roles": sorted(spec.roles),
                "status": spec.status,
                "kyc": kyc,
                "primary_key": actor.key,
                "valid_until": None,
            }
        )
        data[f"member_keys/{spec.member_id}"] = encode({"primary_key": actor.key, "keys": [actor.key]})
    for role, kinds in role_kinds.items():
        data[f"role_kinds/{role}"] = encode({"kinds": kinds})
    return DictState(data)


class Cast:
    """The members every trade test can use (ids match ``development_section``'s)."""

    def __init__(self) -> None:
        self.specs: dict[Actor, MemberSpec] = {}
        self.custodian = self.add("custodian", ("custodian",))
        self.bank_a = self.add("bank-a", ("bank",))
        self.bank_b = self.add("bank-b", ("bank",))
        self.exporter = self.add("exporter", ("exporter",))
        self.importer = self.add("importer", ("importer",))
        self.council1 = self.add("council-1", ("council",))
        self.council2 = self.add("council-2", ("council",))
        self.regulator = self.add("regulator", ("regulator",))
        self.investor = self.add("investor", ("investor",), qualified=True)
        self.investor2 = self.add("investor-2", ("investor",), qualified=True)
        self.agent = self.add("agent", ("bank",))
        self.carrier = self.add("carrier", ("carrier",))
        self.unverified = self.add("unverified", ("importer",), kyc=None)
        self.applicant = self.add("applicant", ("importer",), status="applied")
        self.stranger = Actor.named("stranger")

    def add(self, member_id: str, roles: tuple[str, ...], **spec: Any) -> Actor:
        actor = Actor.named(member_id)
        self.specs[actor] = MemberSpec(member_id, roles, **spec)
        return actor

    def view(self) -> DictState:
        return party_view(self.specs)


def chain_genesis(genesis_time: int = T0) -> Genesis:
    validator = {"name": "v0", "public_key": hex32("validator"), "power": 1}
    return Genesis.model_validate({"chain_id": CHAIN, "genesis_time": genesis_time, "validators": [validator]})


def block_of(height: int, time: int, txs: Sequence[TxEnvelope]) -> SealedBlock:
    header = BlockHeader(
        chain_id=CHAIN,
        height=height,
        round=0,
        time=time,
        prev_hash=hex32("block", height - 1),
        tx_root=hex32("root", height),
        tx_count=len(txs),
        last_results_root=hex32("results", height - 1),
        proposer=hex32("validator"),
        validator_set_hash=hex32("vals"),
        next_validator_set_hash=hex32("vals"),
    )
    sig = CommitSig(validator=hex32("validator"), signature=hashlib.sha512(str(height).encode()).hexdigest())
    commit = Commit(height=height, round=0, block_hash=header.block_hash(), signatures=(sig,))
    return SealedBlock(header=header, txs=tuple(txs), commit=commit)


Tx = tuple[Actor, str, Mapping[str, Any]]


@dataclass
class Chain:
    """Trade state plus the heights that made it."""

    cast: Cast = field(default_factory=Cast)
    section: Mapping[str, Any] | None = field(default_factory=trade_genesis.development_section)
    genesis_time: int = T0
    tick: int = 1_000
    domain: TradeDomain = field(default_factory=lambda: TradeDomain(party_queries))
    state: DictState = field(default_factory=DictState)
    events: list[Event] = field(default_factory=list)
    results: list[ServiceBlockResult] = field(default_factory=list)
    inputs: list[tuple[SealedBlock, Sequence[cmd.CommandRequest], Sequence[CommandOutcome]]] = field(
        default_factory=list
    )
    height: int = 0
    nonce: int = 0

    def __post_init__(self) -> None:
        self.party = self.cast.view()
        self.time = self.genesis_time
        self.digest = GENESIS_DIGEST
        for event in self.domain.genesis(self.section, chain_genesis(self.genesis_time)):
            self.state.apply(self.domain.mutate(self.state, event))
            self.events.append(event)

    def envelope(self, sender: Actor, kind: str, payload: Mapping[str, Any]) -> TxEnvelope:
        self.nonce += 1
        return TxEnvelope(
            chain_id=CHAIN,
            tx_id=hex32("tx", self.nonce),
            kind=kind,
            sender=sender.key,
            nonce=self.nonce,
            payload=dict(payload),
            signature=hashlib.sha512(str(self.nonce).encode()).hexdigest(),
        )

    def block(
        self,
        txs: Iterable[Tx] = (),
        *,
        dt: int | None = None,
        requests: Sequence[cmd.CommandRequest] = (),
        outcomes: Sequence[CommandOutcome] = (),
    ) -> ServiceBlockResult:
        """Seal and execute the next height."""
        self.height += 1
        self.time += self.tick if dt is None else dt
        envelopes = [self.envelope(*tx) for tx in txs]
        block = block_of(self.height, self.time, envelopes)
        result = execute_service_block(
            self.domain, block, self.state, {"party": self.party}, self.digest, requests, outcomes
        )
        self.inputs.append((block, requests, outcomes))
        self.state.apply(result.writes)
        self.digest = result.checkpoint.state_digest
        self.results.append(result)
        for e in result.events:
            if e.type not in cmd.RUNTIME_EVENTS:
                self.events.append(Event(e.type, e.aggregate_id, e.data, e.version))
        return result

    def run(self, sender: Actor, kind: str, payload: Mapping[str, Any], dt: int | None = None) -> Receipt:
        result = self.block([(sender, kind, payload)], dt=dt)
        return next(r for r in result.receipts if r.index == 0)

    def ok(self, sender: Actor, kind: str, payload: Mapping[str, Any], dt: int | None = None) -> dict[str, Any]:
        receipt = self.run(sender, kind, payload, dt)
        assert receipt.accepted, f"{kind} was refused: {receipt.code} {receipt.message}"
        return receipt.result

    def code(self, sender: Actor, kind: str, payload: Mapping[str, Any], dt: int | None = None) -> str:
        receipt = self.run(sender, kind, payload, dt)
        assert not receipt.accepted, f"{kind} was accepted: {receipt.result}"
        assert receipt.message, "every refusal says why"
        return receipt.code

    # ----------------------------------------------------------------- reads

    def account(self, actor: Actor | str, token: str) -> dict[str, int]:
        account = actor if isinstance(actor, str) else self.cast.specs[actor].member_id
        return q.account(self.state, token, account, self.height)

    def total(self, actor: Actor | str, token: str) -> int:
        return self.account(actor, token)["total"]

    def supply(self, token: str) -> int:
        record = q.token(self.state, token)
        assert record is not None
        return int(record["supply"])

    def replay(self) -> dict[str, bytes]:
        """The state rebuilt from the recorded events alone, through JSON, into an empty store."""
        state = DictState()
        for event in self.events:
            again = Event(event.type, event.aggregate_id, _through_json(event.data), event.version)
            state.apply(mutations.mutate(state, again))
        return snapshot(state)

    def snapshot(self) -> dict[str, bytes]:
        return snapshot(self.state)

    def rebuild(self) -> tuple[list[str], dict[str, bytes]]:
        """Re-execute the same sealed blocks from genesis in a fresh state, as an auditor's
        ``--replay`` or a node's rebuild does: the digests and the final state."""
        state = DictState()
        for event in self.domain.genesis(self.section, chain_genesis(self.genesis_time)):
            state.apply(self.domain.mutate(state, event))
        digest, digests = GENESIS_DIGEST, []
        for block, requests, outcomes in self.inputs:
            result = execute_service_block(self.domain, block, state, {"party": self.party}, digest, requests, outcomes)
            state.apply(result.writes)
            digest = result.checkpoint.state_digest
            digests.append(digest)
        return digests, snapshot(state)

    @property
    def digests(self) -> list[str]:
        return [r.checkpoint.state_digest for r in self.results]


def snapshot(state: DictState) -> dict[str, bytes]:
    return dict(state.scan(""))


def _through_json(data: Mapping[str, Any]) -> Any:
    return orjson.loads(canonicalize(dict(data)))


def member_of(cast: Cast, actor: Actor) -> str:
    return cast.specs[actor].member_id


def withdraw_kyc(chain: Chain, actor: Actor) -> None:
    """The member's KYC withdrawn in the chain's party view (changed in place, as a council
    vote is in ``test_governed.council_sets``): from the next transaction on, it holds no
    KYC-only token."""
    key = f"member/{actor.key}"
    raw = chain.party.get(key)
    assert raw is not None
    chain.party.apply({key: encode({**orjson.loads(raw), "kyc": None})})
