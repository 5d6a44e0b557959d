"""A tiny in-memory chain for the party rules: deterministic keys, blocks through ``run_block``.

Why: the tests should exercise the rules exactly as the runtime and an auditor do (``run_block``
over a ``DictState``), and read the outcome through the same ``queries`` the doc service uses.
Keys are derived from names, so every run (and every Hypothesis example) is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traco.core import crypto
from traco.core.domain import Accepted, DictState, Outcome, Rejected, TxContext, run_block
from traco.services.party import proofs
from traco.services.party.domain import PARTY
from traco.services.party.genesis import DEVELOPMENT_CAST, PartyGenesis, development_genesis, genesis_state

CHAIN_ID = "test-chain"
T0 = 1_700_000_000_000
"""Genesis block time (ms)."""
HOUR = 3_600_000
DAY = 24 * HOUR


def seed(name: str) -> bytes:
    """The private key of a test identity, derived from its name."""
    return hashlib.sha256(f"party-test:{name}".encode()).digest()


def pub(name: str) -> str:
    return crypto.public_key(seed(name)).hex()


def sig(name: str, message: bytes) -> str:
    return crypto.sign(seed(name), message).hex()


def register_payload(member_id: str, key_names: list[str], **extra: Any) -> dict[str, Any]:
    organisation = extra.pop("organisation", f"{member_id} Ltd")
    payload: dict[str, Any] = {
        "member_id": member_id,
        "organisation": organisation,
        "jurisdiction": extra.pop("jurisdiction", "SG"),
        "roles": extra.pop("roles", ["exporter"]),
        "keys": [
            {"public_key": pub(k), "proof": sig(k, proofs.register_message(CHAIN_ID, organisation, pub(k)))}
            for k in key_names
        ],
    }
    payload.update(extra)
    return payload


def rotate_payload(member_id: str, old: str, new: str, **extra: Any) -> dict[str, Any]:
    proof = sig(new, proofs.rotate_message(CHAIN_ID, member_id, pub(old), pub(new)))
    return {"new_key": pub(new), "proof": proof, **extra}


def agreement_payload(digest: str, signers: list[str], parties: list[str] | None = None) -> dict[str, Any]:
    party_keys = [pub(p) for p in (parties if parties is not None else signers)]
    message = proofs.agreement_message(CHAIN_ID, digest, party_keys)
    return {"agreement_hash": digest, "parties": party_keys, "signatures": {pub(s): sig(s, message) for s in signers}}


def node_payload(member_id: str, node_id: str, key: str, field: str = "public_key") -> dict[str, Any]:
    """A node registration (or, with ``field="new_key"``, a rotation) whose key proves itself."""
    proof = sig(key, proofs.node_key_message(CHAIN_ID, member_id, node_id, pub(key)))
    return {"node_id": node_id, field: pub(key), "proof": proof}


def dev_genesis(validators: Mapping[str, int] | None = None) -> PartyGenesis:
    names = [name for name, *_ in DEVELOPMENT_CAST]
    if validators is None:
        validators = {pub(f"validator-{i}"): 1 for i in range(4)}
    return development_genesis({n: pub(n) for n in names}, validators=validators, genesis_time=T0)


@dataclass
class Chain:
    """Party state plus a block clock: ``block`` executes transactions as one sealed block."""

    state: DictState
    height: int = 0
    time: int = T0
    log: list[tuple[TxContext, Outcome]] = field(default_factory=list)
    rules: int = 1
    """The version of party's rules every block runs under (``TxContext.rules``)."""

    @classmethod
    def dev(cls, validators: Mapping[str, int] | None = None, rules: int = 1) -> Chain:
        """The development cast's chain, its genesis and blocks under version ``rules``."""
        return cls(genesis_state(dev_genesis(validators), rules), rules=rules)

    def tx(self, sender: str, kind: str, payload: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
        """A transaction to put in ``block``; ``sender`` is a name (its derived key signs)."""
        return (sender, kind, payload)

    def block(self, *txs: tuple[str, str, Mapping[str, Any]], advance: int = 1000) -> list[Outcome]:
        self.height += 1
        self.time += advance
        contexts = [
            TxContext(
                chain_id=CHAIN_ID,
                height=self.height,
                index=i,
                time=self.time,
                tx_id=hashlib.sha256(f"{self.height}:{i}".encode()).hexdigest(),
                sender=pub(sender),
                kind=kind,
                payload=payload,
                rules=self.rules,
            )
            for i, (sender, kind, payload) in enumerate(txs)
        ]
        outcomes, writes = run_block(PARTY, self.state, {}, contexts)
        self.state.apply(writes)
        self.log.extend(outcomes)
        return [outcome for _, outcome in outcomes]

    def one(self, sender: str, kind: str, payload: Mapping[str, Any], advance: int = 1000) -> Outcome:
        """Execute one transaction in its own block."""
        (outcome,) = self.block((sender, kind, payload), advance=advance)
        return outcome

    def ok(self, sender: str, kind: str, payload: Mapping[str, Any], advance: int = 1000) -> Accepted:
        outcome = self.one(sender, kind, payload, advance)
        assert isinstance(outcome, Accepted), outcome
        return outcome

    def refused(self, code: str, sender: str, kind: str, payload: Mapping[str, Any], advance: int = 1000) -> Rejected:
        outcome = self.one(sender, kind, payload, advance)
        assert isinstance(outcome, Rejected), outcome
        assert outcome.code == code, outcome
        assert outcome.message
        return outcome

    def propose(self, sender: str, action: Mapping[str, Any], advance: int = 1000) -> int:
        return int(self.ok(sender, "party.propose", {"action": action}, advance).result["proposal_id"])

    def vote(self, sender: str, proposal_id: int, choice: str = "yes", advance: int = 1000) -> Outcome:
        return self.one(sender, "party.vote", {"proposal_id": proposal_id, "choice": choice}, advance)

    def pass_proposal(self, action: Mapping[str, Any]) -> int:
        """Propose ``action`` and carry it with council-1 and council-2 (2 of 3)."""
        pid = self.propose("council-1", action)
        self.vote("council-1", pid)
        outcome = self.vote("council-2", pid)
        assert isinstance(outcome, Accepted) and outcome.result["status"] == "passed", outcome
        return pid
