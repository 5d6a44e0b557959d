"""A chain with the executing services (party, doc), built block by block in one process, as
the mesh builds it: for tests of the audit's replay and of proofs of service transactions.

``ServiceChain`` writes a development genesis (``init_chain``: validators, the README's cast
and their keys) into a data dir, keeps the consensus ``Ledger`` on SQLite under a component
(``node``), and executes every block with the real ``ServiceRuntime`` of each service (in-memory
stores, fed its upstreams' events exactly as the topics would), offering their receipts and
checkpoints to the ledger. So each header commits to results computed by the runtime, not by
the replay under test, and the node keeps its ``results/<h>`` record as a validator does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.consensus.chainkit import Kit
from traco.core import crypto
from traco.core.adapters.factory import StorageConfig, open_block_store, open_state_store
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryStateStore
from traco.core.ports import BusMessage
from traco.core.service_runtime import ServiceRuntime
from traco.schemas.block import SealedBlock
from traco.schemas.events import BlockProcessed
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services import registry
from traco.services.consensus.genesis import DataDir, init_chain
from traco.services.consensus.ledger import Ledger
from traco.services.doc import queries as doc_queries

DAY_MS = 86_400_000


class ServiceChain:
    def __init__(self, data_dir: Path, chain_id: str = "svc", component: str = "node") -> None:
        self.data_dir = data_dir
        self.component = component
        self.genesis = init_chain(data_dir, chain_id, 4)
        self.config = StorageConfig(backend="sqlite", data_dir=data_dir)
        paths = DataDir(data_dir)
        validator_keys = [crypto.read_key_file(paths.validator_key(i)) for i in range(4)]
        self.kit = Kit(validator_keys=validator_keys, member_keys=[], chain_id=chain_id)
        self.kit.genesis = self.genesis
        self.ledger = Ledger(
            self.genesis, open_block_store(self.config, component), open_state_store(self.config, component)
        )
        bus = MemoryEventBus(MemoryBroker())  # never started: the runtimes are driven directly
        self.runtimes = {
            name: ServiceRuntime(
                registry.domain(name),
                self.genesis,
                MemoryStateStore(),
                bus,
                registry.upstream_domains(name),
                registry.genesis_events(self.genesis),
            )
            for name in self.genesis.params.services
        }
        self.nonces: dict[str, int] = {}
        self.blocks: list[SealedBlock] = []

    # ------------------------------------------------------------------ members

    def key(self, name: str) -> bytes:
        return crypto.read_key_file(DataDir(self.data_dir).keys / f"{name}.key")

    def pub(self, name: str) -> str:
        return crypto.public_key(self.key(name)).hex()

    def tx(self, name: str, kind: str, payload: dict[str, Any]) -> TxEnvelope:
        nonce = self.nonces[name] = self.nonces.get(name, 0) + 1
        return sign_tx(self.key(name), self.genesis.chain_id, kind, nonce, payload)

    @property
    def expiry(self) -> int:
        """A pledge expiry well after every block time of a test chain."""
        return self.genesis.genesis_time + 30 * DAY_MS

    def register(self, label: str, holder: str = "exporter") -> TxEnvelope:
        """A carrier's ``doc.register`` of a bill of lading (file ``label``) held by ``holder``."""
        payload = {
            "file_hash": file_hash(label),
            "type": "bill_of_lading",
            "business_key": {"namespace": "MAEU", "reference": f"BL-{label}"},
            "holder": self.pub(holder),
        }
        return self.tx("carrier", "doc.register", payload)

    def pledge(self, doc_id: str, financier: str = "bank-a", amount: int = 1_000_000) -> TxEnvelope:
        payload = {
            "doc_id": doc_id,
            "financier": self.pub(financier),
            "amount": amount,
            "currency": "USD",
            "expires_at": self.expiry,
        }
        return self.tx("exporter", "doc.pledge", payload)

    # ------------------------------------------------------------------ sealing

    def seal(
        self,
        txs: list[TxEnvelope],
        tamper: Callable[[Receipt], Receipt] | None = None,
        tamper_checkpoint: Callable[[BlockProcessed], BlockProcessed] | None = None,
    ) -> SealedBlock:
        """Seal, store and execute the next block. ``tamper`` (``tamper_checkpoint``) rewrites the
        services' receipts (checkpoints) before the ledger collects them, so the *next* header
        commits to the tampered results, as if the validators had been given them."""
        block = self.kit.seal(self.ledger.tip, txs)
        problem = self.ledger.check_sealed(block)
        assert problem is None, problem
        self.ledger.apply(block)
        results = []
        for runtime in self.runtimes.values():  # genesis order: upstreams first
            assert runtime.check(block) is None
            results.append(runtime.execute(block))
        for name, result in zip(self.runtimes, results, strict=True):
            published = [*result.events, result.checkpoint]  # as the service publishes them
            for runtime in self.runtimes.values():  # what downstream services read at the next height
                upstream = runtime.upstream.get(name)
                if upstream is None:
                    continue
                for offset, item in enumerate(published):
                    message = BusMessage(upstream.topic, 0, offset, None, item.model_dump_json().encode())
                    upstream.offer(message)
        for result in results:
            for receipt in result.receipts:
                self.ledger.offer_receipt(tamper(receipt) if tamper else receipt)
            self.ledger.offer_checkpoint(
                tamper_checkpoint(result.checkpoint) if tamper_checkpoint else result.checkpoint
            )
        assert self.ledger.tip.results_root is not None, self.ledger.waiting_for()
        self.blocks.append(block)
        return block

    def receipt(self, tx_id: str) -> Receipt:
        found = self.ledger.receipt(tx_id)
        assert found is not None, tx_id
        return found

    def doc_report(self, label: str) -> dict[str, Any] | None:
        """What the doc API's ``GET /documents/by-hash`` answers for file ``label``."""
        runtime = self.runtimes["doc"]
        found = doc_queries.by_hash(runtime.store, file_hash(label), runtime.block_time)
        if found is None:
            return None
        history = doc_queries.history(runtime.store, found["doc_id"])
        return {"registered": True, **found, "history": history, "as_of_height": runtime.height}

    def close(self) -> None:
        self.ledger.close()


def file_hash(label: str) -> str:
    return hashlib.sha256(f"file {label}".encode()).hexdigest()


def registry_chain(data_dir: Path, chain_id: str = "svc") -> tuple[ServiceChain, dict[str, str]]:
    """A small chain with party and doc work: registrations, pledges offered and accepted (one
    offer refused as ALREADY_PLEDGED once the first is accepted), a release, a transfer, a
    milestone, a party delegation and an anchor. Returns the chain (still open) and the tx ids
    by name."""
    chain = ServiceChain(data_dir, chain_id)
    bl1, bl2 = chain.register("bl-1"), chain.register("bl-2")
    delegate = chain.tx(
        "importer",
        "party.delegate",
        {"principal": "client 1", "kinds": ["doc.register"], "expires_at": chain.expiry},
    )
    anchor = chain.tx("exporter", "chain.anchor", {"digest": "ab" * 32, "label": "batch 1"})
    chain.seal([bl1, bl2, delegate, anchor])
    pledge = chain.pledge(bl1.tx_id)
    chain.seal([pledge, chain.pledge(bl2.tx_id, financier="bank-b", amount=5_000)])
    accept = chain.tx("bank-a", "doc.pledge.accept", {"doc_id": bl1.tx_id})
    accept_bl2 = chain.tx("bank-b", "doc.pledge.accept", {"doc_id": bl2.tx_id})
    twice = chain.pledge(bl1.tx_id, financier="bank-b")  # after the acceptance: ALREADY_PLEDGED
    chain.seal([accept, accept_bl2, twice])
    release = chain.tx("bank-a", "doc.release", {"doc_id": bl1.tx_id})
    milestone = chain.tx("carrier", "doc.event", {"doc_id": bl1.tx_id, "milestone": "loaded", "location": "CNSHA"})
    chain.seal([release, milestone])
    transfer = chain.tx("exporter", "doc.transfer", {"doc_id": bl1.tx_id, "to": chain.pub("importer")})
    chain.seal([transfer])
    chain.seal([])  # seals the results of the transfer's block
    ids = {
        "bl1": bl1.tx_id,
        "bl2": bl2.tx_id,
        "delegate": delegate.tx_id,
        "anchor": anchor.tx_id,
        "pledge": pledge.tx_id,
        "accept": accept.tx_id,
        "twice": twice.tx_id,
        "release": release.tx_id,
        "milestone": milestone.tx_id,
        "transfer": transfer.tx_id,
    }
    return chain, ids
