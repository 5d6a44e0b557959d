"""The trade service's clauses (``end_block``, architecture: Execution): hold expiry and Coco epochs.

Run after the block's transactions, driven only by the block's height and time. Each firing is a
``ClauseEffect`` the runtime records with a system receipt naming the clause and its subject.

Effects are computed one after the other on a scratch overlay that already holds the earlier
effects' writes, because the runtime applies them in order too: the second of two Coco epochs
paid in one block must see the pool and balances the first left.

Order within a block: hold expiries first (by hold id), then the flows' clauses (``flows``, in
its order: escrow releases, loan maturities and defaults, …), then Coco epochs (by number), then
the council's corrective transfers (``governed``; by id). A hold
that expires returns its amount to its owner's available balance; totals do not change, so the
order does not change what an epoch pays.
"""

from __future__ import annotations

from collections.abc import Mapping

from traco.core import holds
from traco.core.domain import BlockContext, ClauseEffect, DictState, Event, StateView
from traco.services.trade import coco, flows, governed, mutations
from traco.services.trade import queries as q
from traco.services.trade.codes import CLAUSE_HOLD_EXPIRY, SERVICE

CLAUSE_AUTHORITY = f"service:{SERVICE}"


def end_block(
    state: StateView,
    upstream: Mapping[str, StateView],
    block: BlockContext,
    council: governed.CouncilParams | None = None,
) -> list[ClauseEffect]:
    scratch = DictState(base=state)
    effects: list[ClauseEffect] = []

    def fire(effect: ClauseEffect) -> None:
        for event in effect.events:
            scratch.apply(mutations.mutate(scratch, event))
        effects.append(effect)

    for hold_id in q.due_holds(scratch, block.height, block.time):
        effect = _expire(scratch, hold_id, block)
        if effect is not None:
            fire(effect)
    for effect in flows.clauses(scratch, upstream, block, council):
        fire(effect)
    for n in coco.due_epochs(scratch, block):
        fire(coco.epoch_effect(scratch, block, n))
    members = upstream.get("party")
    if council is not None and members is not None:
        for effect in governed.corrections(scratch, council, members, block):
            fire(effect)
    return effects


def _expire(state: StateView, hold_id: str, block: BlockContext) -> ClauseEffect | None:
    hold = q.hold(state, hold_id)
    if hold is None or not holds.is_due(hold, block.height, block.time):
        return None  # an index entry without a due open hold would be a mutation bug; nothing to do
    closed = holds.expire(hold, block.height, CLAUSE_AUTHORITY)
    stamp = {"by": CLAUSE_AUTHORITY, "tx_id": None, "height": block.height, "time": block.time}
    events = [Event("HoldExpired", f"hold:{hold_id}", {"hold": closed.to_json(), **stamp})]
    events.extend(flows.on_expiry(state, hold, block))
    exercise_id = q.exercise_of_hold(hold_id)
    exercise = None if exercise_id is None else q.exercise(state, exercise_id)
    if exercise is not None and exercise["status"] == "pending":
        events.append(
            Event(
                "ExerciseSettled",
                f"exercise:{exercise_id}",
                {"exercise_id": exercise_id, "accepted": False, "shares": 0, "reason": "expired", **stamp},
            )
        )
    return ClauseEffect(CLAUSE_HOLD_EXPIRY, hold_id, tuple(events))
