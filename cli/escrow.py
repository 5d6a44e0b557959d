"""``traco escrow open|confirm|cancel|dispute|resolve|show``: escrowed payment — the buyer's
tokens held for the seller, paid on the buyer's confirmation or a document milestone recorded in
doc, split by the arbiter after a dispute, refunded at expiry.

Amounts are integers in the token's minor units; ``--expires-at`` is a block time (ISO 8601 or
ms). A refused transaction prints its receipt code (e.g. ``ESCROW_CLOSED``) and exits 1; every
problem of the input is named at once (exit 2), before anything is signed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.common import ApiOpt, DataDirOpt, JsonOpt, KeyOpt, out
from traco.cli.flows import dump, get, hold_line, instant, when
from traco.cli.submit import TradeApiOpt, submit

app = typer.Typer(no_args_is_help=True, help="Escrowed payment: held for the seller until confirmed or delivered")

EscrowId = Annotated[str, typer.Argument(help="the escrow's id (chosen at open; never reused)")]


@app.command("open")
def escrow_open(
    escrow_id: EscrowId,
    seller: Annotated[str, typer.Option("--seller", help="the seller's member id")],
    amount: Annotated[int, typer.Option("--amount", help="in the token's minor units")],
    expires_at: Annotated[str, typer.Option("--expires-at", help="refund to you from this block time (ISO/ms)")],
    token: Annotated[str, typer.Option("--token", help="the token paid")] = "TRC",
    milestone: Annotated[
        str | None, typer.Option("--milestone", help="also release on this doc milestone (e.g. delivered)")
    ] = None,
    doc: Annotated[str | None, typer.Option("--doc", help="the document whose milestone releases it")] = None,
    reporter: Annotated[
        str | None, typer.Option("--reporter", help="whose report counts [default: the document's issuer]")
    ] = None,
    memo: Annotated[str | None, typer.Option("--memo", help="a note kept with the escrow")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Hold your tokens for the seller: paid when you confirm, or (with --milestone and --doc)
    when that milestone of the document is recorded in doc; yours again at --expires-at."""
    problems: list[str] = []
    release: dict[str, Any] = {"on": "confirm"}
    if milestone is not None or doc is not None or reporter is not None:
        missing = [flag for flag, value in (("--milestone", milestone), ("--doc", doc)) if value is None]
        problems += [f"{flag} is needed for a milestone release" for flag in missing]
        release = {"on": "milestone", "doc_id": doc, "milestone": milestone, "reporter": reporter}
        release = {k: v for k, v in release.items() if v is not None}
    payload = {
        "escrow_id": escrow_id,
        "token": token,
        "seller": seller,
        "amount": amount,
        "expires_at": instant("--expires-at", expires_at, problems),
        "release": release,
        "memo": memo,
    }
    skip = ["expires_at"] if payload["expires_at"] is None else []
    skip += ["release"] if any("milestone release" in p for p in problems) else []
    submit("trade.escrow.open", payload, key, data_dir, api, found=problems, skip=skip)


@app.command("confirm")
def escrow_confirm(escrow_id: EscrowId, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Pay the seller now (the buyer, while the escrow is open)."""
    submit("trade.escrow.confirm", {"escrow_id": escrow_id}, key, data_dir, api)


@app.command("cancel")
def escrow_cancel(escrow_id: EscrowId, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Give the buyer its money back (the seller, open or disputed)."""
    submit("trade.escrow.cancel", {"escrow_id": escrow_id}, key, data_dir, api)


@app.command("dispute")
def escrow_dispute(
    escrow_id: EscrowId,
    reason: Annotated[str, typer.Option("--reason", help="why, for the arbiter")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Freeze the escrow for the arbiter (buyer or seller)."""
    submit("trade.escrow.dispute", {"escrow_id": escrow_id, "reason": reason}, key, data_dir, api)


@app.command("resolve")
def escrow_resolve(
    escrow_id: EscrowId,
    to_seller: Annotated[int, typer.Option("--to-seller", help="paid to the seller; the rest returns to the buyer")],
    reason: Annotated[str, typer.Option("--reason", help="the arbiter's reasons")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Split a disputed escrow (the arbiter)."""
    payload = {"escrow_id": escrow_id, "to_seller": to_seller, "reason": reason}
    submit("trade.escrow.resolve", payload, key, data_dir, api)


def describe(answer: dict[str, Any]) -> list[str]:
    """A few lines for a person."""
    release = answer["release"]
    on = "the buyer's confirmation"
    if release["on"] == "milestone":
        on += f" or {release['milestone']} of {release['doc_id']} reported by {release['reporter']}"
    lines = [
        f"escrow      {answer['escrow_id']}  {answer['status']}  (as of height {answer['as_of_height']})",
        f"amount      {answer['amount']} {answer['token']}  buyer {answer['buyer']} → seller {answer['seller']}",
        f"released on {on}",
        f"expires     {when(answer['expires_at'])}",
    ]
    dispute = answer.get("dispute")
    if dispute:
        lines.append(f"disputed    by {dispute['by']} at {when(dispute['time'])}: {dispute['reason']}")
        lines.append(f"            the arbiter has until {when(dispute['until'])}")
    closed = answer.get("closed")
    if closed:
        reason = f": {closed['reason']}" if closed.get("reason") else ""
        lines.append(
            f"closed      {when(closed['time'])}  {closed['to_seller']} to the seller,"
            f" {closed['to_buyer']} to the buyer{reason}"
        )
    if answer.get("memo"):
        lines.append(f"memo        {answer['memo']}")
    lines.append(hold_line(answer.get("hold")))
    return lines


@app.command("show")
def escrow_show(
    escrow_id: EscrowId, as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None
) -> None:
    """An escrow: terms, what releases it, status, dispute, how it closed, its hold."""
    answer = get(data_dir, trade_api, f"/escrows/{escrow_id}", f"no escrow {escrow_id}")
    if as_json:
        dump(answer)
        return
    for line in describe(answer):
        out.print(line, highlight=False)
