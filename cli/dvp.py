"""``traco dvp open|fund|allocate|settle|show``: cash against documents — the seller's title (a
doc hold for the buyer) and the buyer's tokens (a trade hold for the seller) change hands as one
outcome, or neither does.

``--allocate-by`` and ``--settle-by`` are block heights (the settlement's command path is counted
in heights). Amounts are integers in the token's minor units. A refused transaction prints its
receipt code (e.g. ``TOO_LATE``) and exits 1; every problem of the input is named at once (exit 2).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.common import ApiOpt, DataDirOpt, JsonOpt, KeyOpt, out
from traco.cli.flows import dump, get, hold_line, when
from traco.cli.submit import TradeApiOpt, submit

app = typer.Typer(no_args_is_help=True, help="Cash against documents: title and payment as one outcome")

DvpId = Annotated[str, typer.Argument(help="the settlement's id (chosen at open; never reused)")]


@app.command("open")
def dvp_open(
    dvp_id: DvpId,
    seller: Annotated[str, typer.Option("--seller", help="the seller's member id (holds the title)")],
    buyer: Annotated[str, typer.Option("--buyer", help="the buyer's member id (pays)")],
    doc: Annotated[str, typer.Option("--doc", help="the document sold")],
    amount: Annotated[int, typer.Option("--amount", help="the price, in the token's minor units")],
    allocate_by: Annotated[int, typer.Option("--allocate-by", help="both legs by this height")],
    settle_by: Annotated[int, typer.Option("--settle-by", help="settled by this height")],
    token: Annotated[str, typer.Option("--token", help="the token paid")] = "TRC",
    agent: Annotated[str | None, typer.Option("--agent", help="a settlement agent who may also settle")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Propose the terms (buyer or seller); the other side agrees by allocating its leg."""
    payload = {
        "dvp_id": dvp_id,
        "seller": seller,
        "buyer": buyer,
        "doc_id": doc,
        "token": token,
        "amount": amount,
        "allocate_by": allocate_by,
        "settle_by": settle_by,
        "agent": agent,
    }
    submit("trade.dvp.open", payload, key, data_dir, api)


@app.command("fund")
def dvp_fund(dvp_id: DvpId, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Hold the price for the seller (the buyer)."""
    submit("trade.dvp.fund", {"dvp_id": dvp_id}, key, data_dir, api)


@app.command("allocate")
def dvp_allocate(
    dvp_id: DvpId,
    title_hold: Annotated[str, typer.Option("--title-hold", help="your doc title hold for the buyer")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Name your title hold (the seller; made first with `traco doc hold`, notary service:trade)."""
    submit("trade.dvp.allocate", {"dvp_id": dvp_id, "title_hold_id": title_hold}, key, data_dir, api)


@app.command("settle")
def dvp_settle(dvp_id: DvpId, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Settle (buyer, seller or agent): the title moves, then the payment; or neither."""
    submit("trade.dvp.settle", {"dvp_id": dvp_id}, key, data_dir, api)


def describe(answer: dict[str, Any]) -> list[str]:
    """A few lines for a person."""
    funded = "funded" if answer["funded"] else "not funded"
    title = f"title hold {answer['title_hold_id']}" if answer["title_hold_id"] else "title not allocated"
    lines = [
        f"dvp         {answer['dvp_id']}  {answer['status']}  (as of height {answer['as_of_height']})",
        f"sale        {answer['doc_id']}  {answer['seller']} → {answer['buyer']}"
        f"  for {answer['amount']} {answer['token']}",
        f"deadlines   allocate by height {answer['allocate_by']}, settle by height {answer['settle_by']}",
        f"legs        {funded}; {title}",
    ]
    if answer.get("agent"):
        lines.append(f"agent       {answer['agent']}")
    if answer.get("settling"):
        s = answer["settling"]
        lines.append(f"settling    by {s['by']} at height {s['height']} ({when(s['time'])})")
    if answer.get("closed"):
        c = answer["closed"]
        reason = f": {c['reason']}" if c.get("reason") else ""
        lines.append(f"closed      {answer['status']} at height {c['height']} ({c['code']}){reason}")
    lines.append(hold_line(answer.get("token_hold")))
    return lines


@app.command("show")
def dvp_show(
    dvp_id: DvpId, as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None
) -> None:
    """A settlement: terms, legs, deadlines, status, the buyer's token hold."""
    answer = get(data_dir, trade_api, f"/dvp/{dvp_id}", f"no DvP {dvp_id}")
    if as_json:
        dump(answer)
        return
    for line in describe(answer):
        out.print(line, highlight=False)
