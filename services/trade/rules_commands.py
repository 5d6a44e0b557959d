"""Commands trade sends to doc (architecture: Execution, commands), and what it does with their outcomes.

One command proves the plumbing: ``trade.title.execute {hold_id}`` asks doc to execute a title
hold (``doc.hold.execute``). From trade rules version 2 it refuses a title hold whose notary is
``service:trade``: doc lets the commanding service decide such a hold, so any member's
``trade.title.execute`` would move a title that a delivery against payment holds for its buyer
without the payment — only the flow that decided it (``dvp``) may send that command.

Doc decides the command at the start of the next height under its own rules, with this
transaction's sender as its authority; trade sees the outcome two heights after it
asked (``on_outcome``) and records it under ``command/<command_id>``.

Why the rule computes the command id itself: the runtime derives it from the command's position
(``traco.core.commands.system_id``: height, tx index, event index — a command's events follow the
transaction's own), and trade must file the pending command under that id in the same step, so
that the outcome finds it. ``command_id`` reproduces that derivation; a test checks it against
the runtime's ``Command`` event.
"""

from __future__ import annotations

from collections.abc import Sequence

from traco.core import commands as cmd
from traco.core.domain import Accepted, BlockContext, Command, CommandOutcome, Event, Outcome, StateView, TxContext
from traco.services.trade import payloads as p
from traco.services.trade import queries as q
from traco.services.trade.codes import DOC, FLOWS_SINCE, SERVICE, Code, reject
from traco.services.trade.ledger import Context

DOC_HOLD_EXECUTE = "doc.hold.execute"


def command_id(tx: TxContext, own_events: int, n: int = 0) -> str:
    """The id the runtime gives the ``n``-th command of ``tx`` when ``tx`` emitted ``own_events``."""
    return cmd.system_id(cmd.COMMAND_PURPOSE, tx.chain_id, SERVICE, tx.height, tx.index, own_events + n)


def title_execute(ctx: Context, t: p.TitleExecute) -> Outcome:
    if ctx.tx.rules >= FLOWS_SINCE:
        hold = ctx.title_hold(t.hold_id)
        if hold is not None and hold.get("notary") == f"service:{SERVICE}":
            return reject(
                Code.NOT_PERMITTED,
                f"title hold {t.hold_id} is decided by trade; only the flow it serves executes it"
                " (delivery against payment: trade.dvp.settle)",
            )
    command = Command(target=DOC, kind=DOC_HOLD_EXECUTE, payload={"hold_id": t.hold_id})
    ident = command_id(ctx.tx, own_events=1)
    sent = ctx.event(
        "CommandSent",
        f"command:{ident}",
        command_id=ident,
        target=command.target,
        kind=command.kind,
        payload=dict(command.payload),
    )
    return Accepted((sent,), {"command_id": ident}, (command,))


def on_outcome(state: StateView, outcome: CommandOutcome, block: BlockContext) -> Sequence[Event]:
    """``CommandSettled`` for a command trade filed; nothing for one it does not know."""
    if q.command(state, outcome.command_id) is None:
        return ()
    data = {
        "command_id": outcome.command_id,
        "accepted": outcome.accepted,
        "code": outcome.code,
        "result": dict(outcome.result),
        "by": f"service:{outcome.target}",
        "tx_id": outcome.command_id,
        "height": block.height,
        "time": block.time,
    }
    return (Event("CommandSettled", f"command:{outcome.command_id}", data),)
