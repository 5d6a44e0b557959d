"""What ``GET /abs/{pool_id}`` and ``traco abs show`` present of a pool: its terms and assets, each
tranche's token, balance, arrears and holders, the pool account's cash, and recent distributions."""

from __future__ import annotations

from typing import Any

import orjson

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade.abs import state as s

RECENT = 20


def pool_view(view: StateView, pool_id: str) -> dict[str, Any] | None:
    record = s.pool(view, pool_id)
    if record is None:
        return None
    deal = record["deal"]
    tranches = []
    for terms, live in zip(record["tranches"], deal["tranches"], strict=True):
        holders = {account: bal["total"] for account, bal in q.holders(view, terms["token"])}
        tranches.append(
            {
                **terms,
                "balance": live["balance"],
                "unpaid_interest": live["unpaid_interest"],
                "factor_bp": live["balance"] * 10_000 // terms["size"],
                "carry": record["carry"][terms["name"]],
                "holders": holders,
            }
        )
    cash = q.balance(view, record["token"], record["account"])["total"]
    return {
        **{k: v for k, v in record.items() if k not in ("deal", "tranches")},
        "tranches": tranches,
        "equity_balance": deal["equity_balance"],
        "reserve": deal["reserve"],
        "reserve_target": deal["reserve_target"],
        "cumulative_losses": deal["cumulative_losses"],
        "loss_trigger_bp": deal["loss_trigger_bp"],
        "fees_unpaid": {"senior": deal["senior_fee"]["unpaid"], "sub": deal["sub_fee"]["unpaid"]},
        "cash": cash,
        "distributions": s.distributions(view, pool_id, RECENT),
    }


def invariants(view: StateView) -> list[str]:
    """The pools' promises, named when broken: each pool's account holds at least its reserve
    plus its tranches' carries (what it owes its holders), and no note balance exceeds its size."""
    problems: list[str] = []
    for _, raw in view.scan("abs/pool/"):
        record = orjson.loads(raw)
        deal, pool_id = record["deal"], record["pool_id"]
        owed = deal["reserve"] + sum(record["carry"].values())
        cash = q.balance(view, record["token"], record["account"])["total"]
        if cash < owed:
            problems.append(f"pool {pool_id}: its account holds {cash}, less than reserve and carries {owed}")
        for asset in record["assets"]:
            lien = asset.get("lien")
            if lien is not None and not lien["accepted"]:
                problems.append(
                    f"pool {pool_id}: receivable {asset['id']} is not under its lien in doc ({lien['code']})"
                )
        for terms, live in zip(record["tranches"], deal["tranches"], strict=True):
            if not 0 <= live["balance"] <= terms["size"]:
                problems.append(f"pool {pool_id}: tranche {terms['name']} balance {live['balance']} outside 0..size")
    return problems
