"""Test helpers for the doc rules: a cast of members in a party view, and a tiny ledger that
runs ``doc.*`` transactions through ``run_block`` exactly as the runtime will.

``Ledger`` keeps the doc state in a ``DictState``, gives every block a height and a block time
(advancing ``tick`` ms per block unless told otherwise), and records every accepted event so
tests can replay them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from traco.core import crypto
from traco.core.canonical import canonicalize
from traco.core.domain import (
    Accepted,
    BlockContext,
    ClauseEffect,
    DictState,
    Event,
    Outcome,
    Rejected,
    TxContext,
    encode,
    execute_one,
    run_block,
    upstream_views,
)
from traco.services.doc.domain import DocDomain
from traco.services.doc.rules import PartyQueries
from traco.services.party import queries as party_query_module
from traco.services.party import state as party_keys

CHAIN = "doctest"
T0 = 1_700_000_000_000
DAY = 86_400_000
FAR_FUTURE = 2**52


def party_queries() -> PartyQueries:
    """The party service's queries, which the doc rules read party's state through."""
    return party_query_module


@dataclass(frozen=True)
class Actor:
    """A member key: ``seed`` signs (and opens sealed keys), ``key`` is the hex public key."""

    name: str
    seed: bytes
    key: str

    @classmethod
    def named(cls, name: str) -> Actor:
        seed = hashlib.sha256(f"doc-test/{name}".encode()).digest()
        return cls(name, seed, crypto.public_key(seed).hex())

    @property
    def public(self) -> bytes:
        return bytes.fromhex(self.key)


ROLE_KINDS: dict[str, list[str]] = {
    **{
        role: ["doc.*"]
        for role in ("exporter", "importer", "carrier", "warehouse", "bank", "insurer", "factor", "regulator")
    },
    "custodian": ["trade.*"],
    "kyc_provider": ["party.kyc"],
    "council": ["party.propose", "party.vote"],
}


@dataclass(frozen=True)
class MemberSpec:
    member_id: str
    roles: tuple[str, ...]
    status: str = "admitted"
    valid_until: int | None = None
    kyc: dict[str, Any] | None = field(
        default_factory=lambda: {"status": "verified", "expires_at": FAR_FUTURE, "provider": "kyc"}
    )
    """The member's KYC record in party (``None``: never attested)."""


def party_view(
    members: Mapping[Actor, MemberSpec],
    role_kinds: Mapping[str, list[str]] = ROLE_KINDS,
    namespaces: Mapping[str, str] | None = None,
) -> DictState:
    """Party state as a ``DictState``: ``member/<key>``, ``member_keys/<id>``, ``role_kinds/<role>``
    and ``namespace/<NS>`` (namespace -> owning member id) entries, in party's own layout."""
    data: dict[str, bytes | None] = {}
    for namespace, owner in (namespaces or {}).items():
        data[party_keys.namespace(namespace)] = encode({"member_id": owner})
    for actor, spec in members.items():
        data[f"member/{actor.key}"] = encode(
            {
                "member_id": spec.member_id,
                "name": spec.member_id,
                "organisation": f"{spec.member_id} Ltd",
                "jurisdiction": "SG",
                "roles": sorted(spec.roles),
                "status": spec.status,
                "kyc": spec.kyc,
                "primary_key": actor.key,
                "valid_until": spec.valid_until,
            }
        )
        if spec.valid_until is None:  # the member's primary key (not a rotated-out one) first
            keys = [actor.key] + [a.key for a, s in members.items() if s.member_id == spec.member_id and a is not actor]
            data[party_keys.member_keys(spec.member_id)] = encode({"primary_key": actor.key, "keys": keys})
    for role, kinds in role_kinds.items():
        data[f"role_kinds/{role}"] = encode({"kinds": kinds})
    return DictState(data)


class Cast:
    """The members every doc test can use."""

    def __init__(self) -> None:
        self.carrier = Actor.named("carrier")
        self.carrier2 = Actor.named("carrier2")
        self.warehouse = Actor.named("warehouse")
        self.exporter = Actor.named("exporter")
        self.exporter_old = Actor.named("exporter-old-key")  # rotated out, valid for an overlap
        self.importer = Actor.named("importer")
        self.bank_a = Actor.named("bank-a")
        self.bank_b = Actor.named("bank-b")
        self.factor = Actor.named("factor")
        self.insurer = Actor.named("insurer")
        self.regulator = Actor.named("regulator")
        self.kyc = Actor.named("kyc")
        self.applicant = Actor.named("applicant")  # applied, not admitted
        self.suspended = Actor.named("suspended")
        self.stranger = Actor.named("stranger")  # unknown to party
        self.specs: dict[Actor, MemberSpec] = {
            self.carrier: MemberSpec("carrier", ("carrier",)),
            self.carrier2: MemberSpec("carrier-two", ("carrier",)),
            self.warehouse: MemberSpec("warehouse", ("warehouse",)),
            self.exporter: MemberSpec("exporter", ("exporter",)),
            self.exporter_old: MemberSpec("exporter", ("exporter",), valid_until=T0 + 30 * DAY),
            self.importer: MemberSpec("importer", ("importer",)),
            self.bank_a: MemberSpec("bank-a", ("bank",)),
            self.bank_b: MemberSpec("bank-b", ("bank",)),
            self.factor: MemberSpec("factor", ("factor",)),
            self.insurer: MemberSpec("insurer", ("insurer",)),
            self.regulator: MemberSpec("regulator", ("regulator",)),
            self.kyc: MemberSpec("kyc", ("kyc_provider",)),
            self.applicant: MemberSpec("applicant", ("exporter",), status="applied"),
            self.suspended: MemberSpec("suspended", ("bank",), status="suspended"),
        }

        self.namespaces = {"HLCU": "carrier-two"}  # MAEU stays open to any carrier

    def view(self) -> DictState:
        return party_view(self.specs, namespaces=self.namespaces)


def tx_id_for(height: int, index: int, sender: str, kind: str) -> str:
    """A stand-in tx id, unique per block position (payloads may be deliberately unencodable)."""
    body = {"chain": CHAIN, "height": height, "index": index, "sender": sender, "kind": kind}
    return hashlib.sha256(canonicalize(body)).hexdigest()


@dataclass
class Ledger:
    """Doc state plus the blocks that made it."""

    party: DictState
    domain: DocDomain = field(default_factory=lambda: DocDomain(party_queries()))
    time: int = T0
    tick: int = 1_000
    height: int = 0
    state: DictState = field(default_factory=DictState)
    events: list[Event] = field(default_factory=list)
    clauses: list[ClauseEffect] = field(default_factory=list)
    rules: int = 1
    """The version of doc's rules every block runs under (``TxContext.rules``): 1 is the rules
    old chains replay with, 2 the fixed ones new chains start at."""

    def block(self, txs: Iterable[tuple[Actor, str, Mapping[str, Any]]], origin: str | None = None) -> list[Outcome]:
        """Seal one block of ``(sender, kind, payload)`` at the next height and block time,
        then run doc's clauses as the runtime does; ``origin`` makes every transaction a
        command from that service (with the sender as its authority)."""
        self.height += 1
        self.time += self.tick
        contexts = [
            TxContext(
                chain_id=CHAIN,
                height=self.height,
                index=i,
                time=self.time,
                tx_id=tx_id_for(self.height, i, sender.key, kind),
                sender=sender.key,
                kind=kind,
                payload=payload,
                origin=origin,
                rules=self.rules,
            )
            for i, (sender, kind, payload) in enumerate(txs)
        ]
        outcomes, writes = run_block(self.domain, self.state, {"party": self.party}, contexts)
        self.state.apply(writes)
        for _, outcome in outcomes:
            if isinstance(outcome, Accepted):
                self.events.extend(outcome.events)
        self._clauses(len(contexts))
        return [outcome for _, outcome in outcomes]

    def command(self, authority: Actor, kind: str, payload: Mapping[str, Any], origin: str) -> Outcome:
        """A command from service ``origin`` acting with ``authority``'s authority, executed as
        the runtime executes the commands sent to doc (``core.service_exec``): first thing at the
        next height, only if doc takes commands of that kind, then doc's clauses."""
        self.height += 1
        self.time += self.tick
        outcome: Outcome
        if kind not in self.domain.command_kinds:
            outcome = Rejected("UNKNOWN_COMMAND", f"doc takes no {kind!r} command")
        else:
            tx = TxContext(
                chain_id=CHAIN,
                height=self.height,
                index=-1,
                time=self.time,
                tx_id=tx_id_for(self.height, -1, authority.key, kind),
                sender=authority.key,
                kind=kind,
                payload=payload,
                origin=origin,
                rules=self.rules,
            )
            overlay = DictState(base=self.state)
            outcome = execute_one(self.domain, overlay, upstream_views({"party": self.party}), tx)
            self.state.apply(overlay.data)
            if isinstance(outcome, Accepted):
                self.events.extend(outcome.events)
        self._clauses(0)
        return outcome

    def _clauses(self, tx_count: int) -> None:
        block = BlockContext(CHAIN, self.height, self.time, tx_count, self.rules)
        for effect in self.domain.end_block(self.state, {"party": self.party}, block):
            for event in effect.events:
                self.state.apply(self.domain.mutate(self.state, event))
                self.events.append(event)
            self.clauses.append(effect)

    def submit(self, sender: Actor, kind: str, payload: Mapping[str, Any]) -> Outcome:
        return self.block([(sender, kind, payload)])[0]

    def ok(self, sender: Actor, kind: str, payload: Mapping[str, Any]) -> Accepted:
        outcome = self.submit(sender, kind, payload)
        assert isinstance(outcome, Accepted), f"{kind} was rejected: {outcome}"
        return outcome

    def code(self, sender: Actor, kind: str, payload: Mapping[str, Any]) -> str:
        """The receipt code of a transaction that must be rejected."""
        outcome = self.submit(sender, kind, payload)
        assert isinstance(outcome, Rejected), f"{kind} was accepted: {outcome}"
        assert outcome.message, "every rejection carries a human-readable message"
        return outcome.code

    def snapshot(self) -> dict[str, bytes]:
        return {k: v for k, v in sorted(self.state.data.items()) if v is not None}


def file_hash(label: str) -> str:
    """A stand-in SHA-256 of a file called ``label``."""
    return hashlib.sha256(label.encode()).hexdigest()


def bl_payload(label: str, reference: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``doc.register`` payload for a bill of lading numbered ``reference`` by carrier MAEU."""
    return {
        "file_hash": file_hash(label),
        "type": "bill_of_lading",
        "business_key": {"namespace": "NMFTA:MAEU", "reference": reference or label.upper()},
        "metadata": {"vessel": "MAERSK ESSEN", "portOfLoading": "CNSHA"},
        **extra,
    }


def registered(ledger: Ledger, cast: Cast, label: str = "bl-1") -> str:
    """A bill of lading registered by the carrier and held by the exporter; its doc id."""
    payload = bl_payload(label, holder=cast.exporter.key)
    return str(ledger.ok(cast.carrier, "doc.register", payload).result["doc_id"])
