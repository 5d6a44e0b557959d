"""A service's state commitment and its checkpoint's roots (architecture: Nodes), purely.

Each checkpoint commits to ``{service, height, state_digest, receipts_root, state_root}``:

- ``receipts_root``: RFC 6962 root over the service's receipts of the height in block order
  (their leaf bytes, without the human-readable message, as in the results root);
- ``state_root``: the sparse Merkle root (``core/smt.py``) over the service's *own* state —
  every key except the runtime's bookkeeping (``runtime/``), its projections of upstream
  services (``up/``: those are committed by the upstream's own root) and the tree's records
  (``tree/``). So a balance, a hold or a pledge can be proven against a signed checkpoint.

The tree's nodes are stored in the service's own store, each at its position
(``core/tree_store.py``), written in the same storage transaction as the state they commit
to, with the undo of the height, so the tree of the height before the last stays provable.

The runtime, the replaying auditor and the tests all call ``commit_state`` and ``seal``, so
they cannot disagree about a root.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping, Sequence

import orjson

from traco.core import merkle
from traco.core.domain import StateView
from traco.core.service_exec import ServiceBlockResult
from traco.core.smt import EMPTY_ROOT
from traco.core.smt_tree import VerifiedNodes
from traco.core.tree_store import NOT_STATE, tree_writes
from traco.schemas.receipt import Receipt

STATE_ROOT_KEY = "runtime/state_root"
UNDO_KEY = "runtime/undo"


def own_changes(writes: Mapping[str, bytes | None]) -> dict[str, bytes | None]:
    """The writes that change the service's own state."""
    return {k: v for k, v in writes.items() if not k.startswith(NOT_STATE)}


def stored_root(view: StateView) -> bytes:
    """The state root after the last height committed (the empty root before the first)."""
    raw = view.get(STATE_ROOT_KEY)
    return bytes.fromhex(raw.decode()) if raw else EMPTY_ROOT


def commit_state(
    view: StateView, writes: Mapping[str, bytes | None], verified: VerifiedNodes | None = None
) -> tuple[bytes, dict[str, bytes | None]]:
    """The new state root after ``writes`` on top of ``view`` (the state of the height before),
    and the writes that store it: the tree's records, the root itself, and what keeps the
    height before provable one height longer (the tree's undo, and the changed keys' previous
    values in ``runtime/undo``): a proof is served for the last height whose results a sealed
    header commits to, which is the height before the one just executed.
    ``verified``: the tree's nodes a long-lived caller (a service's runtime) keeps in memory
    from one height to the next (``smt_tree.VerifiedNodes``); the root is the same with or
    without."""
    changes = own_changes(writes)
    root, out = tree_writes(view, stored_root(view), changes, verified)
    out[UNDO_KEY] = orjson.dumps({k: _b64(view.get(k)) for k in sorted(changes)})
    out[STATE_ROOT_KEY] = root.hex().encode()
    return root, out


def previous_value(view: StateView, key: str) -> bytes | None:
    """``key``'s value as of the height before the last one executed (``runtime/undo``)."""
    raw = view.get(UNDO_KEY)
    undo = orjson.loads(raw) if raw else {}
    if key in undo:
        old = undo[key]
        return None if old is None else base64.b64decode(old)
    return view.get(key)


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def receipts_root(receipts: Sequence[Receipt]) -> str:
    return merkle.root_from_leaf_hashes([r.leaf_hash for r in receipts]).hex()


def seal(result: ServiceBlockResult, state_root: bytes, extra_writes: Mapping[str, bytes | None]) -> ServiceBlockResult:
    """``result`` with its checkpoint's roots filled in and the tree's writes added."""
    checkpoint = result.checkpoint.model_copy(
        update={"receipts_root": receipts_root(result.receipts), "state_root": state_root.hex()}
    )
    return dataclasses.replace(result, checkpoint=checkpoint, writes={**result.writes, **extra_writes})


__all__ = [
    "NOT_STATE",
    "STATE_ROOT_KEY",
    "commit_state",
    "own_changes",
    "previous_value",
    "receipts_root",
    "seal",
    "stored_root",
]
