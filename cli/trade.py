"""``traco balance``, ``transfer``, ``hold …``, ``trc …``, ``coco schedule``, ``equity …``:
the trade service's money, from the command line.

Accounts are party member ids (``bank-a``); amounts are integers in the token's minor units.
Every command that changes something signs with ``--key`` (default: the data dir's member key;
the development cast's keys are ``<data-dir>/keys/<name>.key``). A refused transaction prints
its receipt code (e.g. ``INSUFFICIENT_FUNDS``) and exits 1; every problem of the input is named
at once, before anything is signed.
"""

from __future__ import annotations

import datetime
import time
from typing import Annotated, Any

import typer

from traco.cli import equity
from traco.cli.common import (
    ApiOpt,
    DataDirOpt,
    JsonOpt,
    KeyOpt,
    fail_all,
    fetch,
    out,
    print_json,
    service_client,
)
from traco.cli.submit import TradeApiOpt, submit

TokenOpt = Annotated[str, typer.Option("--token", help="token id, e.g. TRC or COCO")]
ExpiryOpt = Annotated[int | None, typer.Option("--expires-height", help="the hold expires at this height")]
MinutesOpt = Annotated[int | None, typer.Option("--minutes", help="the hold expires this many minutes from now")]

hold_app = typer.Typer(no_args_is_help=True, help="Holds of token amounts: reserved for a beneficiary until expiry")
trc_app = typer.Typer(no_args_is_help=True, help="TRC, the fiat-backed stablecoin: reserves, minting, redemption")
coco_app = typer.Typer(no_args_is_help=True, help="Coco, the fixed-supply consortium coin")


def _expiry_time(minutes: int | None) -> int | None:
    return None if minutes is None else int(time.time() * 1000) + minutes * 60_000


def _show(data_dir: Any, explicit: str | None, path: str, missing: str, as_json: bool) -> None:
    with service_client(data_dir, "trade", explicit) as client:
        print_json(fetch(client, path, missing), as_json)


def balance(
    who: Annotated[str, typer.Argument(help="member id, hex key or traco:<chain>:<hex> address")],
    token: Annotated[str | None, typer.Option("--token", help="only this token")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    trade_api: TradeApiOpt = None,
) -> None:
    """Balances of a member: total, held, locked and available per token."""
    with service_client(data_dir, "trade", trade_api) as client:
        answer = fetch(client, f"/accounts/{who}", f"member {who}")
    if as_json:
        print_json(answer, True)
        return
    out.print(f"account {answer['account']} (as of height {answer['as_of_height']})")
    balances = answer["balances"]
    shown = {t: b for t, b in balances.items() if token is None or t == token}
    if not shown:
        out.print("  no balance" + (f" of {token}" if token else ""))
    for name, b in sorted(shown.items()):
        frozen = "  FROZEN" if b.get("frozen") else ""
        amounts = f"total {b['total']}  held {b['held']}  locked {b['locked']}  available {b['available']}"
        out.print(f"  {name:<8} {amounts}{frozen}")


def transfer(
    to: Annotated[str, typer.Argument(help="recipient member id")],
    amount: Annotated[int, typer.Argument(help="in the token's minor units")],
    token: TokenOpt,
    memo: Annotated[str | None, typer.Option(help="a note kept with the transfer")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Send tokens to another member (refused with INSUFFICIENT_FUNDS, HELD, FROZEN, …)."""
    submit("trade.transfer", {"token": token, "to": to, "amount": amount, "memo": memo}, key, data_dir, api)


@hold_app.command("create")
def hold_create(
    hold_id: Annotated[str, typer.Argument(help="your id for the hold; never reused")],
    beneficiary: Annotated[str, typer.Option("--for", help="beneficiary member id")],
    amount: Annotated[int, typer.Option(help="in minor units")],
    token: TokenOpt,
    notary: Annotated[str | None, typer.Option(help="member id (or service:<name>) deciding instead")] = None,
    expires_height: ExpiryOpt = None,
    minutes: MinutesOpt = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Hold an amount for a beneficiary until an expiry height and/or time."""
    payload = {
        "hold_id": hold_id,
        "token": token,
        "beneficiary": beneficiary,
        "amount": amount,
        "notary": notary,
        "expires_height": expires_height,
        "expires_time": _expiry_time(minutes),
    }
    submit("trade.hold.create", payload, key, data_dir, api)


@hold_app.command("execute")
def hold_execute(
    hold_id: str,
    amount: Annotated[int | None, typer.Option(help="part of the hold (the rest returns); default all")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Pay a hold to its beneficiary (the notary, else the beneficiary)."""
    submit("trade.hold.execute", {"hold_id": hold_id, "amount": amount}, key, data_dir, api)


@hold_app.command("release")
def hold_release(hold_id: str, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Return a hold to its owner (the beneficiary refusing, or the notary)."""
    submit("trade.hold.release", {"hold_id": hold_id}, key, data_dir, api)


@hold_app.command("renew")
def hold_renew(
    hold_id: str,
    expires_height: ExpiryOpt = None,
    minutes: MinutesOpt = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Move a hold's expiry later (its owner, before it expires)."""
    payload = {"hold_id": hold_id, "expires_height": expires_height, "expires_time": _expiry_time(minutes)}
    submit("trade.hold.renew", payload, key, data_dir, api)


@hold_app.command("show")
def hold_show(
    hold_id: str, as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None
) -> None:
    """A hold, open or closed, and how it ended."""
    _show(data_dir, trade_api, f"/holds/{hold_id}", f"hold {hold_id}", as_json)


@trc_app.command("attest")
def trc_attest(
    reserve: Annotated[int, typer.Option(help="the fiat reserve, in minor units")],
    seq: Annotated[int, typer.Option(help="the attestation's sequence number (strictly increasing)")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="the statement's time: ISO 8601 (2026-11-29, 2026-11-29T17:00Z) or ms"),
    ] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Attest the reserve as a custodian. It counts once a threshold of custodians attest the
    same (reserve, as-of, seq); the default as-of is the start of today (UTC), so custodians
    attesting the same day's statement agree without passing it."""
    as_of_ms = _instant(as_of)
    if isinstance(as_of_ms, str):
        fail_all([as_of_ms], "trade.trc.attest")
    submit("trade.trc.attest", {"reserve": reserve, "as_of": as_of_ms, "seq": seq}, key, data_dir, api)


def _instant(text: str | None) -> int | str:
    """Milliseconds since the epoch from ISO 8601 or ms (start of today, UTC, by default);
    a problem as text."""
    if text is None:
        today = datetime.datetime.now(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return int(today.timestamp() * 1000)
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return f"--as-of: {text!r} is neither ISO 8601 nor milliseconds"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


@trc_app.command("mint")
def trc_mint(
    to: Annotated[str, typer.Argument(help="recipient member id (KYC-verified)")],
    amount: Annotated[int, typer.Argument(help="in cents")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Mint TRC as a custodian, within the attested reserve (RESERVE_EXCEEDED, RESERVE_STALE)."""
    submit("trade.trc.mint", {"to": to, "amount": amount}, key, data_dir, api)


@trc_app.command("redeem")
def trc_redeem(
    amount: Annotated[int, typer.Argument(help="in cents")],
    custodian: Annotated[str, typer.Option(help="the custodian that pays out the fiat")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Burn TRC for fiat from a custodian (a fee in Coco is taken)."""
    submit("trade.trc.redeem", {"amount": amount, "custodian": custodian}, key, data_dir, api)


@trc_app.command("reserve")
def trc_reserve(as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None) -> None:
    """TRC's backing: last attestation, supply, pending redemptions, under-reserved, stale."""
    _show(data_dir, trade_api, "/trc/reserve", "TRC on this chain", as_json)


@coco_app.command("schedule")
def coco_schedule(
    epochs: Annotated[int, typer.Option(min=1, max=2000, help="how many epochs to list")] = 12,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    trade_api: TradeApiOpt = None,
) -> None:
    """Coco's emission by epoch, and what each epoch has paid."""
    with service_client(data_dir, "trade", trade_api) as client:
        answer = fetch(client, f"/coco/schedule?epochs={epochs}", "Coco on this chain")
    if as_json:
        print_json(answer, True)
        return
    out.print(f"Coco: total {answer['total']}, circulating {answer['circulating']}, pool {answer['pool']}")
    for entry in answer["schedule"]:
        paid = "not yet" if entry["paid"] is None else str(entry["paid"])
        out.print(f"  epoch {entry['epoch']:>4}  amount {entry['amount']}  paid {paid}")


def register(app: typer.Typer) -> None:
    """Add the trade commands to ``traco``."""
    app.command()(balance)
    app.command()(transfer)
    app.add_typer(hold_app, name="hold")
    app.add_typer(trc_app, name="trc")
    app.add_typer(coco_app, name="coco")
    app.add_typer(equity.app, name="equity")
