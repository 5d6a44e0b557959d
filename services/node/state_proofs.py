"""State proofs from a node (architecture: Nodes): that a key of a service's state held a value.

A node serves, for each service, a proof for the last height whose results a sealed header
commits to — the height before the one its replica last executed (the tree of that height is
kept one height longer for this, with the changed keys' previous values). The proof chains:
the key's path to the checkpoint's ``state_root`` → the checkpoint's leaf in header
``height + 1``'s ``last_results_root`` → that header's commit → the validator sets since
genesis. A light client checks it with ``lightclient.verify_state_value_proof`` alone.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from traco.core import merkle
from traco.core.service_runtime import ServiceRuntime
from traco.core.service_state import previous_value
from traco.core.smt_tree import StateTree
from traco.core.tree_store import PreviousNodes
from traco.schemas.state_proof import StateValueProof
from traco.services.consensus import rules
from traco.services.consensus.api import validator_changes
from traco.services.consensus.ledger import Ledger


def build_state_proof(ledger: Ledger, runtime: ServiceRuntime, key: str) -> StateValueProof | str:
    """The proof for ``key`` at the last provable height, or why there is none yet."""
    service = runtime.domain.service
    height = runtime.height - 1
    if height < 1:
        return f"{service} has no state a sealed header commits to yet"
    block = ledger.blocks.block(height + 1)
    results = ledger.results(height)
    if block is None or results is None:
        return f"the results of block {height} are not sealed on this node yet"
    receipts, checkpoints = results
    checkpoint = runtime.checkpoint(height)
    position = next((i for i, c in enumerate(checkpoints) if c.service == service), None)
    if position is None or checkpoints[position] != checkpoint or checkpoint.state_root is None:
        return f"{service}'s checkpoint of block {height} is not the one the chain committed to"
    leaves = rules.results_leaf_hashes(receipts, checkpoints)
    index = len(receipts) + position
    state = StateTree(PreviousNodes(runtime.store), runtime.tree_nodes).prove(bytes.fromhex(checkpoint.state_root), key)
    value = previous_value(runtime.store, key)
    return StateValueProof(
        chain_id=ledger.genesis.chain_id,
        service=service,
        key=key,
        value=None if value is None else value.hex(),
        height=height,
        checkpoint=checkpoint,
        state=state,
        index=index,
        size=len(leaves),
        path=tuple(h.hex() for h in merkle.inclusion_proof_from_leaf_hashes(leaves, index)),
        header=block.header,
        commit=block.commit,
        validator_changes=validator_changes(ledger, height + 1),
    )


def router(ledger: Ledger, runtimes: dict[str, ServiceRuntime]) -> APIRouter:
    api = APIRouter()

    @api.get("/state/{service}/proof", response_model=StateValueProof)
    async def state_proof(service: str, key: str) -> StateValueProof:
        """A light-client proof that a key of a service's state held a value (or none)."""
        runtime = runtimes.get(service)
        if runtime is None:
            raise HTTPException(404, {"code": "NOT_FOUND", "message": f"no service {service!r} on this node"})
        built = build_state_proof(ledger, runtime, key)
        if isinstance(built, str):
            raise HTTPException(409, {"code": "NOT_YET", "message": built})
        return built

    return api
