"""The securitisation flow: its kinds, and the outcome of the liens pooling puts on receivables in
doc. No clause (a collection distributes at once, see ``rules``) and no managed hold (the pool's
cash is its own account, ``abs:<pool_id>``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from traco.core.domain import BlockContext, CommandOutcome, Event, StateView
from traco.services.trade.abs import rules
from traco.services.trade.abs import state as s
from traco.services.trade.flow import Flow, clause_stamp


def on_outcome(state: StateView, outcome: CommandOutcome, block: BlockContext) -> Sequence[Event]:
    """Doc's answer to a pooled receivable's lien, recorded on the pool: a refusal (the holder
    pledged it in the same block the pool was made) stays visible on the pool and in
    ``/invariants`` — the investors' asset is financed twice, and everyone can see it."""
    reference = outcome.payload.get("reference")
    doc_id = outcome.payload.get("doc_id")
    if outcome.kind != rules.LIEN_PLACE or not isinstance(reference, str) or not isinstance(doc_id, str):
        return ()
    pool_id = reference[len(s.ACCOUNT_PREFIX) :]
    if not reference.startswith(s.ACCOUNT_PREFIX) or s.pool(state, pool_id) is None:
        return ()
    data = {"pool_id": pool_id, "doc_id": doc_id, "accepted": outcome.accepted, "code": outcome.code}
    return (Event("AbsLienRecorded", f"abs:{pool_id}", {**data, **clause_stamp(block)}),)


FLOW: Final = Flow(name="abs", rules=rules.RULES, hold_prefix=s.ACCOUNT_PREFIX, on_outcome=on_outcome)
