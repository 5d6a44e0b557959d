"""``traco abs pool|collect|tranche|show``: securitisation — pool invoices or loans into tranche
tokens, pay a period's collections through the waterfall, move or look at a tranche, show a pool.

Amounts are integers in the pool token's minor units; a tranche unit is one minor unit of its
original size. A refused transaction prints its receipt code (e.g. ``ASSET_POOLED``) and exits
1; every problem of the input is named at once (exit 2), before anything is signed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.common import ApiOpt, DataDirOpt, JsonOpt, KeyOpt, fetch, out, print_json, service_client
from traco.cli.submit import TradeApiOpt, submit
from traco.core.timefmt import iso_utc

app = typer.Typer(no_args_is_help=True, help="Securitisation: pools of invoices and loans, tranches, the waterfall")

POOL, COLLECT = "trade.abs.pool", "trade.abs.collect"


def parse_tranche(spec: str, problems: list[str]) -> dict[str, Any] | None:
    """``NAME:SIZE:COUPON_BP`` (``A:600000:500``) as the payload's tranche, or a problem."""
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        problems.append(f"--tranche: {spec!r} is not NAME:SIZE:COUPON_BP (e.g. A:600000:500)")
        return None
    return {"name": parts[0], "size": int(parts[1]), "coupon_bp": int(parts[2])}


def parse_fee(option: str, spec: str | None, problems: list[str]) -> dict[str, Any] | None:
    """``RATE_BP[:FIXED[:TO]]`` (``25:500:bank-b``) as the payload's fee terms, or a problem."""
    if spec is None:
        return None
    parts = spec.split(":")
    numbers = parts[:2]
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in numbers):
        problems.append(f"{option}: {spec!r} is not RATE_BP[:FIXED[:TO]] (e.g. 25:500:bank-b)")
        return None
    fee: dict[str, Any] = {"rate_bp": int(parts[0])}
    if len(parts) > 1:
        fee["fixed"] = int(parts[1])
    if len(parts) > 2:
        fee["to"] = parts[2]
    return fee


@app.command("pool")
def abs_pool(
    pool_id: Annotated[str, typer.Argument(help="pool id, upper case (its tranches are <POOL><NAME>)")],
    tranche: Annotated[list[str], typer.Option("--tranche", help="NAME:SIZE:COUPON_BP, senior first; repeat")],
    loss_trigger_bp: Annotated[int, typer.Option("--loss-trigger-bp", help="cumulative losses, bp of the pool")],
    invoice: Annotated[
        list[str] | None, typer.Option("--invoice", help="doc id of an invoice you hold; repeat")
    ] = None,
    loan: Annotated[list[str] | None, typer.Option("--loan", help="id of a loan you lend; repeat")] = None,
    senior_fee: Annotated[str | None, typer.Option("--senior-fee", help="RATE_BP[:FIXED[:TO]]")] = None,
    sub_fee: Annotated[str | None, typer.Option("--sub-fee", help="RATE_BP[:FIXED[:TO]]")] = None,
    reserve_target: Annotated[int, typer.Option("--reserve-target", help="the reserve account's target")] = 0,
    token: Annotated[str, typer.Option("--token", help="the pool's money")] = "TRC",
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Pool invoices and loans you hold into tranches issued to you (qualified investors only)."""
    problems: list[str] = []
    assets = [{"receivable": d} for d in invoice or []] + [{"loan": x} for x in loan or []]
    if not assets:
        problems.append("give at least one --invoice or --loan")
    tranches = [parse_tranche(spec, problems) for spec in tranche]
    fees = {
        part: fee
        for part, fee in (
            ("senior", parse_fee("--senior-fee", senior_fee, problems)),
            ("sub", parse_fee("--sub-fee", sub_fee, problems)),
        )
        if fee is not None
    }
    payload = {
        "pool_id": pool_id,
        "assets": assets,
        "tranches": [t for t in tranches if t is not None],
        "fees": fees or None,
        "reserve_target": reserve_target,
        "loss_trigger_bp": loss_trigger_bp,
        "token": token,
    }
    skip = [name for name, bad in (("assets", not assets), ("tranches", None in tranches)) if bad]
    if any(p.startswith(("--senior-fee", "--sub-fee")) for p in problems):
        skip.append("fees")
    submit(POOL, payload, key, data_dir, api, found=problems, skip=skip)


@app.command("collect")
def abs_collect(
    pool_id: str,
    amount: Annotated[int, typer.Argument(help="collections paid into the pool (0: distribute what it holds)")],
    losses: Annotated[int, typer.Option("--losses", help="principal lost this period")] = 0,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Pay a period's collections into the pool (the arranger): the waterfall distributes them at once."""
    submit(COLLECT, {"pool_id": pool_id, "amount": amount, "losses": losses}, key, data_dir, api)


@app.command("tranche")
def abs_tranche(
    pool_id: str,
    name: Annotated[str, typer.Argument(help="the tranche, e.g. A")],
    to: Annotated[str | None, typer.Option("--to", help="move units to this qualified investor")] = None,
    units: Annotated[int | None, typer.Option("--units", help="how many units to move")] = None,
    as_json: JsonOpt = False,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
    trade_api: TradeApiOpt = None,
) -> None:
    """Show a tranche (balance, arrears, holders), or with --to and --units move units of it."""
    if to is not None or units is not None:
        problems = [f"{flag} is needed with the other" for flag, v in (("--to", to), ("--units", units)) if v is None]
        payload = {"token": f"{pool_id}{name}", "to": to, "amount": units}
        submit("trade.transfer", payload, key, data_dir, api, found=problems, skip=["to", "amount"] if problems else [])
        return
    with service_client(data_dir, "trade", trade_api) as client:
        answer = fetch(client, f"/abs/{pool_id}", f"no pool {pool_id}")
    found = next((t for t in answer["tranches"] if t["name"] == name), None)
    if found is None:
        out.print(f"pool {pool_id} has no tranche {name} (it has {', '.join(t['name'] for t in answer['tranches'])})")
        raise typer.Exit(1)
    if as_json:
        print_json(found, True)
        return
    out.print(_tranche_line(found))
    for account, held in found["holders"].items():
        out.print(f"    {account:<24} {held:>16} units")


def _tranche_line(t: dict[str, Any]) -> str:
    factor = f"{t['factor_bp'] / 100:.2f}%"
    return (
        f"  {t['name']}  {t['token']}  size {t['size']}  balance {t['balance']} ({factor})"
        f"  coupon {t['coupon_bp']} bp  unpaid interest {t['unpaid_interest']}  holders {len(t['holders'])}"
    )


@app.command("show")
def abs_show(
    pool_id: str, as_json: JsonOpt = False, data_dir: DataDirOpt = None, trade_api: TradeApiOpt = None
) -> None:
    """A pool: assets, tranches, equity, reserve, losses against the trigger, recent distributions."""
    with service_client(data_dir, "trade", trade_api) as client:
        answer = fetch(client, f"/abs/{pool_id}", f"no pool {pool_id}")
    if as_json:
        print_json(answer, True)
        return
    out.print(
        f"{answer['pool_id']}  {answer['status']}  arranger {answer['arranger']}  {answer['token']}"
        f"  size {answer['size']}  {len(answer['assets'])} assets  as of height {answer['as_of_height']}"
    )
    for t in answer["tranches"]:
        out.print(_tranche_line(t))
    out.print(f"  equity {answer['equity_balance']} of {answer['equity']} (kept by the arranger)")
    out.print(
        f"  reserve {answer['reserve']} of {answer['reserve_target']}  cash {answer['cash']}"
        f"  losses {answer['cumulative_losses']} (trigger {answer['loss_trigger_bp']} bp of {answer['size']})"
    )
    for d in answer["distributions"]:
        paid = sum(amount for _, amount in d["payouts"])
        out.print(
            f"  #{d['seq']} {iso_utc(d['time'])}  {d['waterfall']}  in {d['amount']}  losses {d['losses']}"
            f"  paid {paid}  carried {sum(d['carry'].values())}"
        )
