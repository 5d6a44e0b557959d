"""What the HTTP API and the CLI show of the trade state, and the invariants an auditor checks.

Pure reads (``queries`` underneath), shaped for ``/accounts/{addr}``, ``/tokens``,
``/holds/{id}``, ``/trc/reserve``, ``/coco/schedule``, ``/equity/{token}`` and the matching
``traco`` commands, so the runtime's routes only serialise. ``invariants(state)`` states the
ledger's promises as checks over the whole state (it scans everything: for tests, audits and the
API's health view, not for every block):

- per token, Σ account totals = supply, and per account, held = Σ its open holds;
- Coco: supply + pool = 10,000,000,000 × 10^decimals (Σ balances + Σ holds + pool = total);
- TRC: while the last valid attestation showed cover, supply + pending + fiat paid since it
  ≤ its reserve (no mint can break it; redemptions and payments keep it);
- equity-anchored tokens: supply · ratio_shares ≤ ratio_tokens · custodied shares.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from traco.core.domain import StateView
from traco.core.holds import Hold
from traco.services.trade import coco, flow_invariants
from traco.services.trade import queries as q


def account_view(state: StateView, account: str, height: int) -> dict[str, Any]:
    """Every token the account has a balance of: total, held, locked, available, frozen."""
    balances = {}
    for token in q.tokens(state):
        bal = q.account(state, token["token"], account, height)
        frozen = q.frozen(state, token["token"], account)
        if bal["total"] or frozen is not None:
            balances[token["token"]] = {**bal, "frozen": frozen}
    return {"account": account, "height": height, "balances": balances}


def token_view(state: StateView, token: str) -> dict[str, Any] | None:
    record = q.token(state, token)
    if record is None:
        return None
    return {**record, "asset_class": q.asset_class(state, record["asset_class"])}


def hold_view(state: StateView, hold_id: str) -> dict[str, Any] | None:
    hold = q.hold(state, hold_id)
    return None if hold is None else hold.to_json()


def reserve_view(state: StateView, time: int) -> dict[str, Any] | None:
    """TRC's backing as of block time ``time``: the last valid attestation, supply, pending
    redemptions, whether it is under-reserved (minting paused) or stale (minting closed)."""
    params = q.params(state, "trc")
    if params is None:
        return None
    token = q.token(state, params["token"])
    supply = 0 if token is None else int(token["supply"])
    last = q.reserve(state)
    pending = q.pending_redemptions(state)
    stale = last is None or time - int(last["as_of"]) > int(params["max_reserve_age_ms"])
    return {
        "token": params["token"],
        "supply": supply,
        "pending_redemptions": pending,
        "attestation": last,
        "under_reserved": last is not None and last["shortfall"] > 0,
        "stale": stale,
        "custodians": params["custodians"],
        "threshold": params["threshold"],
    }


def coco_view(state: StateView, epochs: int) -> dict[str, Any] | None:
    """The emission schedule's first ``epochs`` epochs beside what each paid."""
    params = q.params(state, "coco")
    if params is None:
        return None
    plan: list[dict[str, Any]] = []
    for entry in coco.schedule(params, epochs):
        paid = q.epoch_paid(state, entry["epoch"])
        plan.append({**entry, "paid": None if paid is None else paid["paid"]})
    token = q.token(state, params["token"])
    return {
        "token": params["token"],
        "total": params["total"],
        "pool": q.pool(state),
        "circulating": 0 if token is None else token["supply"],
        "progress": q.epoch(state),
        "schedule": plan,
    }


def equity_view(state: StateView, token: str) -> dict[str, Any] | None:
    terms = q.equity(state, token)
    record = q.token(state, token)
    if terms is None or record is None:
        return None
    supply = int(record["supply"])
    within = supply * int(terms["ratio_shares"]) <= int(terms["ratio_tokens"]) * int(terms["custodied_shares"])
    return {**terms, "supply": supply, "within_ratio": within}


def invariants(state: StateView) -> list[str]:
    """Every broken promise, named (empty when the state is sound)."""
    problems: list[str] = []
    held: dict[tuple[str, str], int] = defaultdict(int)
    for _, raw in state.scan("hold/"):
        hold = Hold.from_json(orjson.loads(raw))
        if hold.is_open:
            held[(hold.asset, hold.owner)] += hold.amount
    for token in q.tokens(state):
        name = token["token"]
        total = 0
        for account, bal in q.holders(state, name):
            total += bal["total"]
            if bal["held"] != held.pop((name, account), 0):
                problems.append(f"{name}/{account}: held {bal['held']} is not the sum of its open holds")
            if not 0 <= bal["held"] <= bal["total"]:
                problems.append(f"{name}/{account}: held {bal['held']} outside 0..{bal['total']}")
        if total != token["supply"]:
            problems.append(f"{name}: accounts hold {total}, supply is {token['supply']}")
    problems.extend(f"{t}/{a}: open holds of {n} without a balance" for (t, a), n in held.items())
    params = q.params(state, "coco")
    if params is not None:
        record = q.token(state, params["token"])
        circulating = 0 if record is None else int(record["supply"])
        if circulating + q.pool(state) != params["total"]:
            problems.append(f"Coco: {circulating} circulating + {q.pool(state)} pool != {params['total']}")
    trc = q.params(state, "trc")
    last = q.reserve(state)
    if trc is not None and last is not None and last["shortfall"] == 0:
        record = q.token(state, trc["token"])
        supply = 0 if record is None else int(record["supply"])
        owed = supply + q.pending_redemptions(state) + sum(int(p["amount"]) for p in last["paid_after"])
        if owed > last["reserve"]:
            problems.append(f"TRC: {owed} owed against an attested reserve of {last['reserve']}")
    for _, raw in state.scan("equity/"):
        terms = orjson.loads(raw)
        view = equity_view(state, terms["token"])
        if view is not None and not view["within_ratio"]:
            problems.append(
                f"{terms['token']}: {view['supply']} tokens exceed the ratio of {terms['custodied_shares']}"
            )
    problems.extend(flow_invariants.invariants(state))
    return problems
