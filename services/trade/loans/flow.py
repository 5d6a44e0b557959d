"""The financing flow: its kinds, the default clause, and the three command outcomes it acts on
(pledge placed or refused, pledge discharged, pledge enforced)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from traco.core.domain import (
    Accepted,
    BlockContext,
    ClauseEffect,
    Command,
    CommandOutcome,
    Event,
    Rejected,
    StateView,
    TxContext,
)
from traco.core.holds import Hold
from traco.services.trade import queries as q
from traco.services.trade.codes import DOC
from traco.services.trade.flow import Flow, clause_stamp, close_managed
from traco.services.trade.ledger import Context
from traco.services.trade.loans import rules
from traco.services.trade.loans import state as s

CLAUSE_DEFAULT: Final = "loan_default"
CLAUSE_AUTO_ACCEPT: Final = "finance_auto_accept"


def auto_accept_clause(
    scratch: StateView, upstream: Mapping[str, StateView], block: BlockContext, council: Any
) -> Iterator[ClauseEffect]:
    """Requests whose deadline has come take their best offer (``accept_best``), as the borrower
    would have at that block, or lapse."""
    members = upstream.get("party")
    if members is None or council is None:
        return
    for request_id in s.auto_due(scratch, block.time):
        req = s.request(scratch, request_id)
        if req is None or req["status"] != "open":
            continue
        tx = TxContext(
            chain_id=block.chain_id,
            height=block.height,
            index=block.tx_count,
            time=block.time,
            tx_id=req["opened"]["tx_id"],
            sender=req["borrower_key"],
            kind="trade.finance.accept",
            payload={"request_id": request_id},
            rules=block.rules,
        )
        ctx = Context(state=scratch, members=members, party=council, tx=tx, sender=req["borrower"], upstream=upstream)
        outcome = rules.auto_accept(ctx, req)
        if isinstance(outcome, Accepted):
            yield ClauseEffect(CLAUSE_AUTO_ACCEPT, request_id, outcome.events, outcome.commands, req["borrower_key"])
            continue
        lapsed = {"request_id": request_id, "code": outcome.code, "reason": outcome.message, **clause_stamp(block)}
        yield ClauseEffect(
            CLAUSE_AUTO_ACCEPT, request_id, (Event("FinanceRequestLapsed", f"loan:{request_id}", lapsed),)
        )


def clauses(
    scratch: StateView, upstream: Mapping[str, StateView], block: BlockContext, council: Any
) -> Iterator[ClauseEffect]:
    """Deadlines' acceptances first, then defaults."""
    yield from auto_accept_clause(scratch, upstream, block, council)
    yield from default_clause(scratch, upstream, block, council)


def default_clause(
    scratch: StateView, upstream: Mapping[str, StateView], block: BlockContext, council: Any
) -> Iterator[ClauseEffect]:
    """Every active loan whose maturity + grace has come defaults, and doc is told to move the
    pledged title to the lender (authority: ``service:trade``, the managed pledge's manager)."""
    for loan_id in s.due_loans(scratch, block.time):
        record = s.loan(scratch, loan_id)
        if record is None or record["status"] != "active":
            continue
        event = rules.defaulted_event(record, block.time, clause_stamp(block))
        payload = {"doc_id": record["doc_id"], "reference": s.hold_id(loan_id)}
        yield ClauseEffect(CLAUSE_DEFAULT, loan_id, (event,), (Command(DOC, rules.PLEDGE_ENFORCE, payload),))


def _loan_of(outcome: CommandOutcome) -> str | None:
    reference = outcome.payload.get("reference")
    if outcome.target != DOC or not isinstance(reference, str) or not reference.startswith(s.HOLD_PREFIX):
        return None
    return reference[len(s.HOLD_PREFIX) :]


def on_outcome(state: StateView, outcome: CommandOutcome, block: BlockContext) -> Sequence[Event]:
    loan_id = _loan_of(outcome)
    record = None if loan_id is None else s.loan(state, loan_id)
    if loan_id is None or record is None:
        return ()
    stamp = clause_stamp(block)
    if outcome.kind == rules.PLEDGE_PLACE:
        if record["status"] != "pledging":
            return ()
        hold = q.hold(state, s.hold_id(loan_id))
        if hold is None or not hold.is_open:
            return ()
        if outcome.accepted:
            paid = close_managed(hold, None, block.height, block.time, stamp)
            if isinstance(paid, Rejected):
                return ()
            start = block.time
            maturity = start + record["tenor_ms"]
            data = {
                "loan_id": loan_id,
                "start": start,
                "maturity": maturity,
                "default_at": maturity + record["grace_ms"],
            }
            return (paid, Event("LoanDisbursed", f"loan:{loan_id}", {**data, **stamp}))
        back = close_managed(hold, 0, block.height, block.time, stamp)
        if isinstance(back, Rejected):
            return ()
        reason = str(outcome.result.get("message") or outcome.code)
        refused = {"loan_id": loan_id, "code": outcome.code, "reason": reason, **stamp}
        return (back, Event("LoanRefused", f"loan:{loan_id}", refused))
    if outcome.kind in (rules.PLEDGE_DISCHARGE, rules.PLEDGE_ENFORCE):
        action = "discharge" if outcome.kind == rules.PLEDGE_DISCHARGE else "enforce"
        data = {"loan_id": loan_id, "action": action, "accepted": outcome.accepted, "code": outcome.code, **stamp}
        return (Event("LoanCollateral", f"loan:{loan_id}", data),)
    return ()


def on_expiry(state: StateView, hold: Hold, block: BlockContext) -> Sequence[Event]:
    """The disbursement hold outlives the outcome (+2 of +4 heights); should it ever expire with
    the loan still pledging, the loan is recorded refused, the TRC being back with the lender."""
    loan_id = hold.hold_id[len(s.HOLD_PREFIX) :]
    record = s.loan(state, loan_id)
    if record is None or record["status"] != "pledging":
        return ()
    data = {"loan_id": loan_id, "code": "EXPIRED", "reason": "no outcome from doc in time", **clause_stamp(block)}
    return (Event("LoanRefused", f"loan:{loan_id}", data),)


def waits_for(state: StateView, hold: Hold) -> bool:
    record = s.loan(state, hold.hold_id[len(s.HOLD_PREFIX) :])
    return record is not None and record["status"] == "pledging"


FLOW: Final = Flow(
    name="loans",
    rules=rules.RULES,
    hold_prefix=s.HOLD_PREFIX,
    clauses=clauses,
    on_outcome=on_outcome,
    on_expiry=on_expiry,
    waits_for=waits_for,
)
