"""A whole development chain in one process for the flows' tests: ``traco init``'s genesis and
cast (party, doc and trade with their real rules and genesis), correctly signed transactions,
correctly sealed blocks, executed by the auditor's replay (``ChainReplay``) — every service in
lockstep, commands from trade executed by doc at the next height and their outcomes back in
trade at the one after, exactly as the nodes run them.

Why this and not a hand-built view: the flows cross services (a loan's pledge is decided by
doc under doc's rules; an escrow pays on doc's milestone), so their tests need the real doc
and party beside trade, and a test that passes here passes for the auditor's replay too.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from traco.core import crypto, keyfile
from traco.core.domain import StateView
from traco.schemas.block import Commit, CommitSig, SealedBlock, vote_sign_bytes
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus import rules
from traco.services.consensus.audit_replay import ChainReplay, ReplayedResults
from traco.services.consensus.genesis import init_chain
from traco.services.trade import queries as q

SECOND = 1_000


class Story:
    """The dev chain: ``tx`` signs as a cast member, ``block`` seals and executes a height."""

    def __init__(self, data_dir: Path, chain_id: str = "story") -> None:
        self.genesis = init_chain(data_dir, chain_id, 4)
        keys = data_dir / "keys"
        self.keys = {path.stem: keyfile.read_private_key(path) for path in keys.glob("*.key")}
        self.validators = [self.keys[f"validator-{i}"] for i in range(4)]
        self.replay = ChainReplay(self.genesis)
        self.tip = rules.genesis_tip(self.genesis)
        self.nonces: dict[str, int] = {}
        self.blocks: list[SealedBlock] = []
        self.results: list[ReplayedResults] = []

    # ----------------------------------------------------------------- writing

    def pub(self, who: str) -> str:
        return crypto.public_key(self.keys[who]).hex()

    def tx(self, who: str, kind: str, payload: dict[str, Any]) -> TxEnvelope:
        self.nonces[who] = self.nonces.get(who, 0) + 1
        return sign_tx(self.keys[who], self.genesis.chain_id, kind, self.nonces[who], payload)

    def block(self, *txs: TxEnvelope, dt: int = SECOND) -> ReplayedResults:
        header = rules.build_header(
            self.genesis, self.tip, 0, self.tip.time + dt, crypto.public_key(self.validators[0]).hex(), list(txs)
        )
        block_hash = header.block_hash()
        message = vote_sign_bytes(self.genesis.chain_id, "precommit", header.height, 0, block_hash)
        sigs = tuple(
            CommitSig(validator=crypto.public_key(k).hex(), signature=crypto.sign(k, message).hex())
            for k in self.validators[:3]
        )
        block = SealedBlock(
            header=header,
            txs=tuple(txs),
            commit=Commit(height=header.height, round=0, block_hash=block_hash, signatures=sigs),
        )
        results = self.replay.execute(block)
        self.tip = replace(
            self.tip, height=block.height, block_hash=block_hash, time=header.time, results_root=results.root
        )
        self.blocks.append(block)
        self.results.append(results)
        return results

    def idle(self, heights: int = 1, dt: int = SECOND) -> None:
        for _ in range(heights):
            self.block(dt=dt)

    def run(self, who: str, kind: str, payload: dict[str, Any], dt: int = SECOND) -> Receipt:
        envelope = self.tx(who, kind, payload)
        results = self.block(envelope, dt=dt)
        return self.receipt(results, envelope.tx_id)

    @staticmethod
    def clause_receipts(results: ReplayedResults, clause: str) -> list[Receipt]:
        """The system receipts of ``clause`` (``<service>.clause.<name>``) at that height."""
        found = [r for res in results.services.values() for r in res.receipts]
        return [r for r in found if r.kind.endswith(f".clause.{clause}")]

    def receipt(self, results: ReplayedResults, tx_id: str) -> Receipt:
        found = [r for r in results.receipts if r.tx_id == tx_id]
        assert found, f"no receipt for {tx_id}"
        return found[0]

    def ok(self, who: str, kind: str, payload: dict[str, Any], dt: int = SECOND) -> dict[str, Any]:
        receipt = self.run(who, kind, payload, dt)
        assert receipt.accepted, f"{kind} by {who} was refused: {receipt.code} {receipt.message}"
        return dict(receipt.result)

    def refused(self, who: str, kind: str, payload: dict[str, Any], dt: int = SECOND) -> Receipt:
        receipt = self.run(who, kind, payload, dt)
        assert not receipt.accepted, f"{kind} by {who} was accepted: {receipt.result}"
        assert receipt.message, "every refusal says why"
        return receipt

    def council(self, action: dict[str, Any]) -> None:
        """Pass ``action`` with the dev council (2 of 3)."""
        pid = self.ok("council-1", "party.propose", {"action": action})["proposal_id"]
        self.ok("council-1", "party.vote", {"proposal_id": pid, "choice": "yes"})
        self.ok("council-2", "party.vote", {"proposal_id": pid, "choice": "yes"})

    def set_flows(self, **params: Any) -> None:
        self.council({"type": "set_service_param", "service": "trade", "key": "flows", "value": params})

    # ----------------------------------------------------------------- money and documents

    def fund_trc(self, **amounts: int) -> None:
        """Attest a reserve (2 of 3 custodians) and mint TRC to members."""
        total = sum(amounts.values())
        seq = self.nonces.get("custodian", 0) + 1
        attest = {"reserve": total + self.trc_supply(), "as_of": self.tip.time, "seq": seq}
        self.block(self.tx("custodian", "trade.trc.attest", attest), self.tx("custodian-2", "trade.trc.attest", attest))
        for who, amount in amounts.items():
            self.ok("custodian", "trade.trc.mint", {"to": who, "amount": amount})

    def register(self, who: str, doc_type: str = "bill_of_lading", **extra: Any) -> str:
        digest = hashlib.sha256(f"{doc_type} {who} {self.tip.height} {extra}".encode()).hexdigest()
        reference = f"REF{self.tip.height:06d}"
        payload: dict[str, Any] = {
            "file_hash": digest,
            "type": doc_type,
            "business_key": {"namespace": "MAEU" if doc_type == "bill_of_lading" else "INV", "reference": reference},
            **extra,
        }
        return str(self.ok(who, "doc.register", payload)["doc_id"])

    # ----------------------------------------------------------------- reading

    def state(self, service: str) -> StateView:
        return self.replay.services.state(service)

    @property
    def trade(self) -> StateView:
        return self.state("trade")

    def total(self, who: str, token: str = "TRC") -> int:
        return q.balance(self.trade, token, who)["total"]

    def available(self, who: str, token: str = "TRC") -> int:
        return q.account(self.trade, token, who, self.tip.height)["available"]

    def trc_supply(self) -> int:
        record = q.token(self.trade, "TRC")
        return 0 if record is None else int(record["supply"])

    def trc_everywhere(self) -> int:
        return sum(bal["total"] for _, bal in q.holders(self.trade, "TRC"))

    def document(self, doc_id: str) -> dict[str, Any]:
        record = q.read(self.state("doc"), f"doc/{doc_id}")
        assert record is not None
        return record
