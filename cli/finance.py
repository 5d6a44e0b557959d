"""``traco finance request|offer|withdraw|cancel|accept|show`` and ``traco loan repay|show``:
pledge-backed financing — the holder of a document asks for an amount for a tenor, lenders
offer rates, the borrower accepts one (or the best), the document is pledged to the lender and
the TRC paid to the borrower as one outcome; the borrower repays, or the loan defaults and the
title moves to the lender.

Amounts are integers in the token's minor units; rates are basis points a year (simple interest,
Actual/365 on block time); ``--tenor-ms`` is milliseconds; instants are block times (ISO 8601 or
ms). A loan's id is its request's. A refused transaction prints its receipt code (e.g.
``ALREADY_PLEDGED``) and exits 1; every problem of the input is named at once (exit 2).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.common import ApiOpt, DataDirOpt, JsonOpt, KeyOpt, out
from traco.cli.flows import dump, get, hold_line, instant, span, when
from traco.cli.submit import TradeApiOpt, submit

app = typer.Typer(no_args_is_help=True, help="Pledge-backed financing: requests, offers, acceptance")
loan_app = typer.Typer(no_args_is_help=True, help="Loans: repay, show (interest owed and total due now)")

RequestId = Annotated[str, typer.Argument(help="the request's id (also the loan's)")]
OfferId = Annotated[str, typer.Argument(help="the offer's id")]
LoanId = Annotated[str, typer.Argument(help="the loan's id (its request's)")]


def _unless(value: int | None, field: str) -> list[str]:
    """The field whose problem the command already named (an instant it could not read)."""
    return [field] if value is None else []


@app.command("request")
def finance_request(
    request_id: RequestId,
    doc: Annotated[str, typer.Option("--doc", help="the document you hold and will pledge")],
    amount: Annotated[int, typer.Option("--amount", help="in the token's minor units")],
    tenor_ms: Annotated[int, typer.Option("--tenor-ms", help="the loan's term, in ms of block time")],
    offers_until: Annotated[str, typer.Option("--offers-until", help="lenders may offer until (ISO/ms)")],
    token: Annotated[str, typer.Option("--token", help="the currency lent")] = "TRC",
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Ask for financing against a document you hold."""
    problems: list[str] = []
    until = instant("--offers-until", offers_until, problems)
    payload = {
        "request_id": request_id,
        "doc_id": doc,
        "token": token,
        "amount": amount,
        "tenor_ms": tenor_ms,
        "offers_until": until,
    }
    submit("trade.finance.request", payload, key, data_dir, api, found=problems, skip=_unless(until, "offers_until"))


@app.command("offer")
def finance_offer(
    offer_id: OfferId,
    request: Annotated[str, typer.Option("--request", help="the request you offer on")],
    rate_bp: Annotated[int, typer.Option("--rate-bp", help="basis points a year (simple interest)")],
    valid_until: Annotated[str, typer.Option("--valid-until", help="the borrower may accept until (ISO/ms)")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Offer to lend on a request (a lender); the best rate, then the earliest, ranks first."""
    problems: list[str] = []
    until = instant("--valid-until", valid_until, problems)
    payload = {"offer_id": offer_id, "request_id": request, "rate_bp": rate_bp, "valid_until": until}
    submit("trade.finance.offer", payload, key, data_dir, api, found=problems, skip=_unless(until, "valid_until"))


@app.command("withdraw")
def finance_withdraw(offer_id: OfferId, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Withdraw your open offer (its lender)."""
    submit("trade.finance.withdraw", {"offer_id": offer_id}, key, data_dir, api)


@app.command("cancel")
def finance_cancel(request_id: RequestId, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Cancel your open request (its borrower)."""
    submit("trade.finance.cancel", {"request_id": request_id}, key, data_dir, api)


@app.command("accept")
def finance_accept(
    request_id: RequestId,
    offer: Annotated[str | None, typer.Option("--offer", help="the offer taken [default: the best valid one]")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Accept an offer (the borrower): the lender's TRC is held for you and the document pledged
    to the lender; two heights later the TRC is yours, or back with the lender if doc refused."""
    submit("trade.finance.accept", {"request_id": request_id, "offer_id": offer}, key, data_dir, api)


@app.command("show")
def finance_show(
    request_id: RequestId, as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None
) -> None:
    """A request and its open offers, best first."""
    answer = get(data_dir, trade_api, f"/finance/requests/{request_id}", f"no financing request {request_id}")
    if as_json:
        dump(answer)
        return
    lines = [
        f"request     {answer['request_id']}  {answer['status']}  (as of height {answer['as_of_height']})",
        f"borrower    {answer['borrower']}  {answer['amount']} {answer['token']} for {span(answer['tenor_ms'])}",
        f"document    {answer['doc_id']} ({answer['doc_type']})",
        f"offers until {when(answer['offers_until'])}",
    ]
    if not answer["offers"]:
        lines.append("offers      none open")
    for o in answer["offers"]:
        if o["valid"]:
            valid = f"valid until {when(o['valid_until'])}"
        elif answer["status"] != "open":
            valid = f"not taken (the request is {answer['status']})"
        else:
            valid = f"lapsed at {when(o['valid_until'])}"
        lines.append(f"  #{o['position']}  {o['offer_id']}  {o['lender']}  {o['rate_bp']} bp  {valid}")
    if answer["loan"]:
        loan = answer["loan"]
        lines.append(f"loan        {loan['loan_id']}  {loan['status']}  from {loan['lender']} at {loan['rate_bp']} bp")
    for line in lines:
        out.print(line, highlight=False)


@loan_app.command("repay")
def loan_repay(
    loan_id: LoanId,
    amount: Annotated[int, typer.Option("--amount", help="paid to interest owed first, then principal")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Repay part or all of a loan (the borrower); paying all that is due releases the pledge."""
    submit("trade.loan.repay", {"loan_id": loan_id, "amount": amount}, key, data_dir, api)


def describe_loan(answer: dict[str, Any]) -> list[str]:
    """A few lines for a person."""
    token = answer["token"]
    lines = [
        f"loan        {answer['loan_id']}  {answer['status']}  (as of height {answer['as_of_height']})",
        f"lender      {answer['lender']} → borrower {answer['borrower']}  {answer['rate_bp']} bp a year",
        f"principal   {answer['principal']} {token}  outstanding {answer['outstanding']}"
        f"  interest paid {answer['interest_paid']}",
        f"pledge      {answer['doc_id']} ({answer['doc_type']}) until {when(answer['pledge_until'])}",
    ]
    if answer.get("start") is not None:
        lines.append(
            f"term        {when(answer['start'])} → maturity {when(answer['maturity'])};"
            f" default from {when(answer['default_at'])} (grace {span(answer['grace_ms'])})"
        )
    if answer["total_due"] is not None:
        late = "  IN DEFAULT" if answer["in_default"] else ""
        lines.append(
            f"due now     {answer['total_due']} {token} ({answer['interest_owed']} interest)"
            f" at {when(answer['now'])}{late}"
        )
    for n, p in enumerate(answer.get("payments", []), start=1):
        lines.append(
            f"  payment #{n}  {when(p['time'])}  {p['amount']}: {p['to_interest']} interest,"
            f" {p['to_principal']} principal"
        )
    if answer.get("defaulted"):
        d = answer["defaulted"]
        lines.append(f"defaulted   {when(d['time'])}  outstanding {d['outstanding']}  interest {d['interest_owed']}")
    if answer.get("refusal"):
        lines.append(f"refused     {answer['refusal']['code']}: {answer['refusal']['reason']}")
    if answer.get("collateral"):
        c = answer["collateral"]
        done = "done" if c["accepted"] else f"refused ({c['code']})"
        lines.append(f"collateral  {c['action']} {done} at height {c['height']}")
    if answer["status"] == "pledging":
        lines.append(hold_line(answer.get("hold")))
    return lines


@loan_app.command("show")
def loan_show(
    loan_id: LoanId, as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None
) -> None:
    """A loan: terms, outstanding, payments, and the interest owed and total due now (at the
    last block time the trade service executed)."""
    answer = get(data_dir, trade_api, f"/loans/{loan_id}", f"no loan {loan_id}")
    if as_json:
        dump(answer)
        return
    for line in describe_loan(answer):
        out.print(line, highlight=False)
