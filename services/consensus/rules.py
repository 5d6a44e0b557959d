"""The chain's own rules, as pure functions: building and checking a block header, executing
the chain's transaction kinds, and the results that the next header commits. The validity of
one transaction is ``validity.py``'s.

No I/O here: the validator, the follower (``follower.py``), the auditor (``audit.py``) and the
tests all call these same functions, so a validator, a replaying auditor and a light client
cannot disagree about what is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from traco.core import merkle
from traco.core.canonical import canonicalize
from traco.core.service_exec import next_digest
from traco.schemas.base import ZERO_HASH
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.genesis import Genesis, ValidatorPower, validator_set, validator_set_hash
from traco.schemas.receipt import Code, Receipt, ReceiptStatus
from traco.schemas.tx import TxEnvelope, tx_root
from traco.services.consensus.validity import Refusal

CHAIN_SERVICE = "chain"
"""The name under which the consensus service executes the chain's own kinds (``chain.*``)."""

MAX_FUTURE_DRIFT_MS = 30_000
"""How far ahead of a validator's clock a proposed block time may be before it is refused."""


# --------------------------------------------------------------------------- refusals


def refusal_receipt(tx_id: str, kind: str, refusal: Refusal) -> Receipt:
    return Receipt(
        tx_id=tx_id,
        kind=kind,
        status=ReceiptStatus.REJECTED,
        code=refusal.code.value,
        message=refusal.message,
        service=CHAIN_SERVICE,
    )


# --------------------------------------------------------------------------- chain state


def nonce_key(sender: str) -> str:
    return f"nonce/{sender}"


def anchor_key(digest: str) -> str:
    return f"anchor/{digest}"


def read_nonce(read: Callable[[str], bytes | None], sender: str) -> int:
    """The last nonce of ``sender`` sealed on the chain (0 before its first transaction)."""
    raw = read(nonce_key(sender))
    return int(raw) if raw is not None else 0


# --------------------------------------------------------------------------- blocks


def results_leaf_hashes(receipts: Sequence[Receipt], checkpoints: Sequence[BlockProcessed]) -> list[bytes]:
    """The Merkle leaf hashes of what a header's ``last_results_root`` covers: receipts in block
    order (without their human-readable message; each receipt keeps its hash), then
    checkpoints."""
    return [r.leaf_hash for r in receipts] + [merkle.leaf_hash(c.canonical_bytes()) for c in checkpoints]


def results_root(receipts: Sequence[Receipt], checkpoints: Sequence[BlockProcessed]) -> str:
    return merkle.root_from_leaf_hashes(results_leaf_hashes(receipts, checkpoints)).hex()


@dataclass(frozen=True)
class ChainTip:
    """What a validator must know about height H-1 to build or check block H."""

    height: int
    block_hash: str
    time: int
    results_root: str | None  # None while executing services' results are still arriving
    validators: tuple[ValidatorPower, ...]  # the set of height + 1, in canonical order


def genesis_tip(genesis: Genesis) -> ChainTip:
    return ChainTip(
        height=0,
        block_hash=genesis.genesis_hash(),
        time=genesis.genesis_time,
        results_root=merkle.root([]).hex(),
        validators=validator_set(genesis.validators),
    )


def carried_validators(
    current: Sequence[ValidatorPower], upcoming: Sequence[ValidatorPower]
) -> tuple[ValidatorPower, ...] | None:
    """What a block carries in ``next_validators``: the upcoming set when it differs, else None."""
    new = validator_set(upcoming)
    return None if validator_set_hash(new) == validator_set_hash(current) else new


def build_header(
    genesis: Genesis,
    tip: ChainTip,
    round_: int,
    now_ms: int,
    proposer: str,
    txs: Sequence[TxEnvelope],
    next_validators: Sequence[ValidatorPower] | None = None,
) -> BlockHeader:
    """Header ``tip.height + 1``; ``next_validators`` is the set from the height after it on
    (default: unchanged)."""
    if tip.results_root is None:
        raise ValueError(f"the results of block {tip.height} are not complete yet")
    vset = validator_set_hash(tip.validators)
    return BlockHeader(
        chain_id=genesis.chain_id,
        height=tip.height + 1,
        round=round_,
        time=max(now_ms, tip.time + 1),
        prev_hash=tip.block_hash,
        tx_root=tx_root(txs),
        tx_count=len(txs),
        last_results_root=tip.results_root,
        proposer=proposer,
        validator_set_hash=vset,
        next_validator_set_hash=vset if next_validators is None else validator_set_hash(next_validators),
    )


def check_header(
    genesis: Genesis,
    tip: ChainTip,
    header: BlockHeader,
    txs: Sequence[TxEnvelope],
    now_ms: int | None,
    check_results: bool = True,
    next_validators: Sequence[ValidatorPower] | None = None,
) -> str | None:
    """Why ``header`` cannot follow ``tip`` (None if it can). ``now_ms=None`` skips the clock check
    (replay and audit have no "now"); ``next_validators=None`` skips the check of the next
    validator set (a sealed block's commit vouches for it; a proposal is checked against the
    set the party service scheduled)."""
    if header.chain_id != genesis.chain_id:
        return f"chain id {header.chain_id!r} is not {genesis.chain_id!r}"
    if header.height != tip.height + 1:
        return f"height {header.height} does not follow {tip.height}"
    if header.prev_hash != tip.block_hash:
        return f"prev_hash {header.prev_hash[:16]}… is not the hash of block {tip.height}"
    if header.time <= tip.time:
        return f"block time {header.time} is not after the previous block's {tip.time}"
    if now_ms is not None and header.time > now_ms + MAX_FUTURE_DRIFT_MS:
        return f"block time {header.time} is too far in the future"
    if check_results and tip.results_root is None:
        return f"the results of block {tip.height} are not complete yet"
    if check_results and header.last_results_root != tip.results_root:
        return "last_results_root does not match the results of the previous block"
    if header.validator_set_hash != validator_set_hash(tip.validators):
        return "validator_set_hash does not match the validator set of this height"
    if next_validators is not None and header.next_validator_set_hash != validator_set_hash(next_validators):
        return "next_validator_set_hash does not match the validator set scheduled for the next height"
    if header.tx_count != len(txs):
        return f"tx_count {header.tx_count} but the block carries {len(txs)}"
    if header.tx_root != tx_root(txs):
        return "tx_root does not match the transactions"
    return None


# --------------------------------------------------------------------------- execution


class AnchorPayload(BaseModel):
    """``chain.anchor``: notarise an external SHA-256 (e.g. a batch of off-chain records)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    label: str = Field(min_length=1, max_length=256)


@dataclass
class BlockResult:
    """What executing one block produced: all of it is stored in one storage transaction."""

    height: int
    receipts: list[Receipt]
    writes: dict[str, bytes | None]
    events: list[DomainEvent]
    state_digest: str
    checkpoint: BlockProcessed = field(init=False)

    def __post_init__(self) -> None:
        self.checkpoint = BlockProcessed(service=CHAIN_SERVICE, height=self.height, state_digest=self.state_digest)

    @property
    def results_root(self) -> str:
        return results_root(self.receipts, [self.checkpoint])


def keys_read_by(block: SealedBlock) -> list[str]:
    """The state keys executing ``block`` will read, so a store can fetch them in one go."""
    keys = [nonce_key(tx.sender) for tx in block.txs]
    for tx in block.txs:
        digest = tx.payload.get("digest") if tx.kind == "chain.anchor" else None
        if isinstance(digest, str):
            keys.append(anchor_key(digest))
    return keys


def execute_block(block: SealedBlock, read: Callable[[str], bytes | None], prev_digest: str) -> BlockResult:
    """Execute the chain's own kinds in block order, deterministically (block time, no clock).

    Nonces advance for every sealed transaction, accepted or not: the transaction was ordered,
    so its nonce is used. Kinds of other services get no receipt here: their service writes it.
    """
    height = block.height
    writes: dict[str, bytes | None] = {}
    receipts: list[Receipt] = []
    events: list[DomainEvent] = []

    def get(key: str) -> bytes | None:
        return writes[key] if key in writes else read(key)

    for index, tx in enumerate(block.txs):
        writes[nonce_key(tx.sender)] = str(tx.nonce).encode()
        if tx.kind == "chain.anchor":
            receipt, new_events = _anchor(tx, height, index, block.header.time, get, writes)
            receipts.append(receipt)
            events.extend(new_events)
    if block.next_validators is not None:
        events.append(_record_validator_change(block, writes))
    return BlockResult(height, receipts, writes, events, next_digest(prev_digest, events))


def validators_key(from_height: int) -> str:
    return f"validators/{from_height:012d}"


def _record_validator_change(block: SealedBlock, writes: dict[str, bytes | None]) -> DomainEvent:
    """Keep every validator set with the height it starts at, so a node restarts knowing the
    current set and can prove each change to a light client."""
    assert block.next_validators is not None
    from_height = block.height + 1
    members = [v.json_value() for v in block.next_validators]
    writes[validators_key(from_height)] = canonicalize(members)
    return DomainEvent(
        type="ValidatorSetChanged",
        service=CHAIN_SERVICE,
        height=block.height,
        tx_id=None,
        aggregate_id="validators",
        data={"from_height": from_height, "validators": members},
    )


ValidatorHistory = list[tuple[int, tuple[ValidatorPower, ...]]]


def validator_history(scan: Callable[[str], Iterable[tuple[str, bytes]]]) -> ValidatorHistory:
    """``(from_height, set)`` of every change recorded by execution, in height order."""
    out = []
    for key, raw in scan("validators/"):
        members = tuple(ValidatorPower.model_validate(v) for v in orjson.loads(raw))
        out.append((int(key.rsplit("/", 1)[1]), members))
    return sorted(out)


def _anchor(
    tx: TxEnvelope,
    height: int,
    index: int,
    block_time: int,
    get: Callable[[str], bytes | None],
    writes: dict[str, bytes | None],
) -> tuple[Receipt, list[DomainEvent]]:
    def receipt(code: Code, message: str, result: Mapping[str, Any] | None = None) -> Receipt:
        return Receipt(
            tx_id=tx.tx_id,
            kind=tx.kind,
            status=ReceiptStatus.ACCEPTED if code is Code.OK else ReceiptStatus.REJECTED,
            code=code.value,
            message=message,
            height=height,
            index=index,
            service=CHAIN_SERVICE,
            result=dict(result or {}),
        )

    try:
        payload = AnchorPayload.model_validate(tx.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        return receipt(Code.INVALID_PAYLOAD, f"{where}: {first.get('msg', 'invalid')}"), []
    existing = get(anchor_key(payload.digest))
    if existing is not None:
        first_seen = orjson.loads(existing)
        return receipt(
            Code.DUPLICATE_ANCHOR,
            f"digest already anchored at height {first_seen['height']}",
            {"first_tx_id": first_seen["tx_id"], "first_height": first_seen["height"]},
        ), []
    record = {
        "digest": payload.digest,
        "label": payload.label,
        "height": height,
        "tx_id": tx.tx_id,
        "sender": tx.sender,
        "time": block_time,
    }
    writes[anchor_key(payload.digest)] = canonicalize(record)
    event = DomainEvent(
        type="Anchored",
        service=CHAIN_SERVICE,
        height=height,
        tx_id=tx.tx_id,
        tx_index=index,
        aggregate_id=payload.digest,
        data=record,
    )
    return receipt(Code.OK, "anchored", {"digest": payload.digest, "height": height}), [event]


GENESIS_DIGEST = ZERO_HASH
"""``state_digest_0``: the digest chain starts from all zeros."""
