"""The consensus service's HTTP API: submit signed transactions, read receipts, blocks, proofs.

Reads come from the follower's own verified copy of the chain. ``POST /tx`` checks what can be
checked without the mempool (size, JSON, schema, chain, kind, admission, signature, replays of
sealed transactions, used nonces) and answers with a clear 4xx, so that a client learns at once
what is wrong; a transaction that passes is produced to the ``tx`` topic and answered 202.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from traco.core import merkle
from traco.core.ports import EventBus, OutgoingMessage
from traco.core.tracing import tracer
from traco.schemas.block import SealedBlock
from traco.schemas.proof import ResultProof, TxProof, ValidatorChange
from traco.schemas.receipt import Code, Receipt
from traco.schemas.tx import tx_leaf_hashes
from traco.services.consensus import rules, validity
from traco.services.consensus.follower import Follower
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.validity import Refusal, SignatureCache

_tracer = tracer(__name__)

_STATUS_FOR: dict[Code, int] = {
    Code.TOO_LARGE: 413,
    Code.MALFORMED: 422,
    Code.WRONG_CHAIN: 400,
    Code.UNKNOWN_KIND: 400,
    Code.NOT_ADMITTED: 403,
    Code.INVALID_TX_ID: 400,
    Code.INVALID_SIGNATURE: 401,
    Code.NONCE_REUSED: 409,
    Code.DUPLICATE_TX: 409,
}


class Submitted(BaseModel):
    tx_id: str
    status: str
    partition: int
    offset: int


class Status(BaseModel):
    chain_id: str
    height: int
    block_hash: str | None
    block_time: int | None
    validators: list[dict[str, Any]]
    genesis_hash: str
    refused_blocks: int
    node: dict[str, Any] | None = None  # the node's id, its services' heights and whether it stopped


class ApiState:
    def __init__(
        self,
        follower: Follower,
        bus: EventBus,
        max_body_bytes: int,
        node_status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.node_status = node_status
        self.follower = follower
        self.bus = bus
        self.max_body_bytes = max_body_bytes
        self.submitted_nonces: dict[str, int] = {}
        self.signatures = SignatureCache(capacity=50_000)


def get_api(request: Request) -> ApiState:
    api: ApiState = request.app.state.api
    return api


Deps = Annotated[ApiState, Depends(get_api)]


def _refuse(code: Code, message: str) -> HTTPException:
    return HTTPException(_STATUS_FOR.get(code, 400), {"code": code.value, "message": message})


def create_app(state: ApiState) -> FastAPI:
    """The app factory; the caller runs it with uvicorn next to the follower."""
    app = FastAPI(title="TRACO consensus API", version="0.1.0")
    app.state.api = state
    router = APIRouter()

    @router.post("/tx", status_code=202, response_model=Submitted)
    async def submit_tx(request: Request, api: Deps) -> Submitted:
        """Submit a signed transaction envelope (JSON)."""
        ledger = api.follower.ledger
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > api.max_body_bytes:
            raise _refuse(Code.TOO_LARGE, f"body of {declared} bytes exceeds {api.max_body_bytes}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > api.max_body_bytes:
                raise _refuse(Code.TOO_LARGE, f"body exceeds {api.max_body_bytes} bytes")
        decoded = validity.decode_tx(bytes(body), ledger.genesis.params.max_tx_bytes)
        if isinstance(decoded, Refusal):
            raise _refuse(decoded.code, decoded.message)
        kinds = ledger.kinds_at(ledger.height + 1)
        refusal = validity.check_tx(decoded, ledger.genesis, ledger.admitted, api.signatures, kinds)
        if refusal is not None:
            raise _refuse(refusal.code, refusal.message)
        if ledger.is_sealed(decoded.tx_id):
            raise _refuse(Code.DUPLICATE_TX, f"transaction {decoded.tx_id} is already sealed")
        chain_nonce = ledger.chain_nonce(decoded.sender)
        if decoded.nonce <= chain_nonce:
            raise _refuse(
                Code.NONCE_REUSED,
                f"nonce {decoded.nonce} is already used; the next nonce is {chain_nonce + 1}",
            )
        topics = api.follower.topics
        with _tracer.start_as_current_span("tx.submit", attributes={"traco.tx_id": decoded.tx_id}):
            # the bus puts this span's traceparent on the message; validators carry it to the receipt
            partition, offset = await api.bus.publish(OutgoingMessage(topics.tx, bytes(body), decoded.sender.encode()))
        api.submitted_nonces[decoded.sender] = max(api.submitted_nonces.get(decoded.sender, 0), decoded.nonce)
        return Submitted(tx_id=decoded.tx_id, status="pending", partition=partition, offset=offset)

    @router.get("/tx/{tx_id}", response_model=Receipt)
    async def get_receipt(tx_id: str, api: Deps) -> Receipt:
        """The receipt of a transaction: 404 while it is pending or unknown."""
        receipt = api.follower.ledger.receipt(tx_id)
        if receipt is None:
            raise HTTPException(404, {"code": "NOT_FOUND", "message": f"no receipt for {tx_id} (yet)"})
        return receipt

    @router.get("/blocks/{height}")
    async def get_block(height: int, api: Deps) -> JSONResponse:
        """A sealed block: header, transactions and commit."""
        block = api.follower.ledger.blocks.block(height)
        if block is None:
            raise HTTPException(404, {"code": "NOT_FOUND", "message": f"no block at height {height}"})
        return JSONResponse(block.model_dump(mode="json"))

    @router.get("/proofs/{tx_id}", response_model=TxProof)
    async def get_proof(tx_id: str, api: Deps) -> TxProof:
        """Header, commit and Merkle path proving a transaction (and its receipt) is sealed."""
        proof = build_proof(api.follower, tx_id)
        if proof is None:
            raise HTTPException(404, {"code": "NOT_FOUND", "message": f"{tx_id} is not sealed"})
        return proof

    @router.get("/accounts/{sender}/nonce")
    async def next_nonce(sender: str, api: Deps) -> dict[str, int]:
        """The next nonce a sender should use (sealed nonces plus those submitted here)."""
        chain = api.follower.ledger.chain_nonce(sender)
        return {
            "next_nonce": max(chain, api.submitted_nonces.get(sender, 0)) + 1,
            "sealed_nonce": chain,
        }

    @router.get("/status", response_model=Status)
    async def status(api: Deps) -> Status:
        """Chain id, height, latest block and validators."""
        ledger = api.follower.ledger
        header = ledger.blocks.header(ledger.height) if ledger.height else None
        return Status(
            chain_id=ledger.genesis.chain_id,
            height=ledger.height,
            block_hash=header.block_hash() if header else None,
            block_time=header.time if header else None,
            validators=[v.model_dump() for v in ledger.tip.validators],
            genesis_hash=ledger.genesis.genesis_hash(),
            refused_blocks=api.follower.rejected_blocks,
            node=api.node_status() if api.node_status is not None else None,
        )

    @router.get("/validators")
    async def validators(api: Deps, height: int | None = None) -> dict[str, Any]:
        """The validator set of a height (default: the next one), and the heights that changed it."""
        ledger = api.follower.ledger
        at = ledger.height + 1 if height is None else height
        if at < 1 or at > ledger.height + 1:
            raise HTTPException(
                404, {"code": "NOT_FOUND", "message": f"height {at} is not between 1 and {ledger.height + 1}"}
            )
        return {
            "height": at,
            "validators": [v.model_dump() for v in ledger.validators_at(at)],
            "changed_at": ledger.validator_change_heights(),
        }

    @router.get("/genesis")
    async def genesis(api: Deps) -> JSONResponse:
        """The genesis file this node verifies the chain against."""
        return JSONResponse(api.follower.ledger.genesis.model_dump(mode="json"))

    app.include_router(router)
    return app


def build_proof(follower: Follower, tx_id: str) -> TxProof | None:
    """Assemble a light-client proof from the follower's store."""
    ledger = follower.ledger
    location = ledger.blocks.tx_location(tx_id)
    if location is None:
        return None
    height, index = location
    block: SealedBlock | None = ledger.blocks.block(height)
    assert block is not None
    path = merkle.inclusion_proof_from_leaf_hashes(tx_leaf_hashes(block.txs), index)
    result = None
    following = ledger.blocks.block(height + 1)
    results = ledger.results(height)
    receipts, checkpoints = results if results is not None else ([], [])
    position = next((i for i, r in enumerate(receipts) if r.tx_id == tx_id), None)
    if following is not None and position is not None:
        leaves = rules.results_leaf_hashes(receipts, checkpoints)
        result = ResultProof(
            receipt=receipts[position],
            index=position,
            size=len(leaves),
            path=tuple(h.hex() for h in merkle.inclusion_proof_from_leaf_hashes(leaves, position)),
            header=following.header,
            commit=following.commit,
        )
    return TxProof(
        chain_id=ledger.genesis.chain_id,
        tx=block.txs[index],
        height=height,
        index=index,
        header=block.header,
        commit=block.commit,
        path=tuple(h.hex() for h in path),
        result=result,
        validator_changes=validator_changes(ledger, height + 1),
    )


def validator_changes(ledger: Ledger, before: int) -> tuple[ValidatorChange, ...]:
    """The sealed blocks below ``before`` that changed the validator set, as a light client needs them."""
    changes = []
    for height in ledger.validator_change_heights():
        if height >= before:
            break
        block = ledger.blocks.block(height)
        assert block is not None and block.next_validators is not None
        changes.append(ValidatorChange(header=block.header, commit=block.commit, next_validators=block.next_validators))
    return tuple(changes)
