"""``traco risk MEMBER``: a member's exposure — loans lent and borrowed (outstanding principal),
defaults, held amounts, open escrow, pledged documents — and its concentration by counterparty
and by document type (Herfindahl–Hirschman index in basis points: 10,000 is one name carrying
everything; rounded down)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.common import DataDirOpt, JsonOpt, out
from traco.cli.flows import dump, get
from traco.cli.submit import TradeApiOpt


def _amounts(by_token: dict[str, int]) -> str:
    return ", ".join(f"{amount} {token}" for token, amount in sorted(by_token.items())) or "none"


def _hhi(value: int | None) -> str:
    return "n/a (no exposure)" if value is None else f"{value} bp"


def describe(answer: dict[str, Any]) -> list[str]:
    """A few lines for a person."""
    loans, escrow, pledged = answer["loans"], answer["escrow"], answer["pledged"]
    conc = answer["concentration"]
    lines = [
        f"member      {answer['member']}  (as of height {answer['as_of_height']})",
        f"lent        {loans['lent']} outstanding in {loans['count_lent']} loans"
        f"  (defaulted {loans['defaulted_lent']})",
        f"borrowed    {loans['borrowed']} outstanding in {loans['count_borrowed']} loans"
        f"  (defaulted {loans['defaulted_borrowed']})",
        f"held        {_amounts(answer['held'])}",
        f"escrow      paying {_amounts(escrow['paying'])} ({escrow['count_paying']});"
        f" receiving {_amounts(escrow['receiving'])} ({escrow['count_receiving']})",
        f"pledged     {pledged['documents_in']} documents to it, {pledged['documents_out']} by it",
        f"HHI         by counterparty {_hhi(conc['counterparty_hhi_bp'])};"
        f" by document type {_hhi(conc['doctype_hhi_bp'])}",
    ]
    for entry in conc["by_counterparty"]:
        lines.append(
            f"  counterparty {entry['name']:<24} {entry['amount']:>14}  {entry['share_bp'] / 100:6.2f}%"
            f"  (lent {entry['lent']}, borrowed {entry['borrowed']})"
        )
    for entry in conc["by_doctype"]:
        lines.append(
            f"  lent on      {entry['name']:<24} {entry['amount']:>14}  {entry['share_bp'] / 100:6.2f}%"
            f"  ({entry['count']} loans)"
        )
    return lines


def risk(
    member: Annotated[str, typer.Argument(help="member id, hex key or traco:<chain>:<hex> address")],
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    trade_api: TradeApiOpt = None,
) -> None:
    """A member's exposure and concentration (HHI by counterparty and by document type)."""
    answer = get(data_dir, trade_api, f"/risk/{member}", f"no member {member}")
    if as_json:
        dump(answer)
        return
    for line in describe(answer):
        out.print(line, highlight=False)
