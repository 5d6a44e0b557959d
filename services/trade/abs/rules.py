"""Securitisation (issue 10): an arranger pools loans it holds as lender, or invoices whose title it
holds in doc, and issues tranches A/B/C… as tokens; as servicer it pays the pool's collections in,
and the waterfall (``traco.services.trade.waterfall``) pays fees, tranche holders and the equity at
once, in the same transaction.

Why distribute at once rather than by a clause per period: the waterfall's period is the time
between two collections (block time), so there is no calendar to wait for; paying in the
collecting transaction makes the receipt show the whole outcome, keeps the pool's cash from
sitting where the arranger's and the investors' claims overlap, and needs no state for "due but
not yet distributed".

Receivables: a document of type ``invoice`` in doc (as trade sees it: doc's state as of the
previous block), ``active``, held by the arranger, with no pledge in force and no title hold,
never pooled before, whose ``metadata`` carries (all required, every problem named):

- ``amount``: a positive integer, minor units of the pool's token: what the debtor owes;
- ``debtor``: the debtor's member id (a string of party's member-id form);
- ``due_date``: an ISO 8601 calendar date (``"2026-12-31"``), not yet past at the block time
  (an invoice is overdue from 00:00 UTC on the day after its due date).

The title stays with the arranger in doc; trade records the invoice as pooled (it cannot be
pooled twice).

Loans: a loan of the loans flow (``loans.state``, read only) that is ``active``, whose lender is
the arranger, in the pool's token, never pooled before; it counts for its outstanding principal.
The arranger stays the lender of record and keeps servicing it (as an originator-servicer does):
the borrower repays the arranger, the pledge and its enforcement stay the arranger's in doc, and
the arranger passes what it collects to the pool with ``trade.abs.collect``. The loans flow has no
way to assign a loan to another account, and the pool's account could not be a financier in doc
(a financier is a member with a bank's or factor's role), so a pool cannot be lender of record.

Pool, tranches and equity: the pool's size is the sum of its assets' amounts; the tranches'
sizes must fit in it, and what they do not cover is the equity (the first-loss piece), which
the arranger keeps (risk retention): the waterfall's residual is paid to the arranger. Each
tranche is the token ``<pool_id><name>``, one unit per minor unit of its original size, all
issued to the arranger, in the asset class ``abs_tranche`` (qualified investors only: the
genesis's or the council's class of that name if there is one — it must admit only qualified
investors — else the class this flow adopts on first use). Units move with ``trade.transfer``.

Collections: ``amount`` of the pool's token moves from the arranger to the pool's account
``abs:<pool_id>``, and the waterfall runs on it for the block time since the last collection (or
the pooling). A tranche's interest and principal are paid to its unit holders pro rata to the
units each holds (held units included), rounded down per holder; fees to the fee's ``to``; the
residual to the arranger. The rounding remainder of a tranche (less than one minor unit per
holder) is its *carry*: it stays in the pool's account and is added to that tranche's next
payment, so it reaches the tranche's holders, never a junior tranche or the equity. The pool's
account therefore holds the reserve plus the carries; anything more (nothing a member can send
there) joins the next collection's available funds. Payouts go to every holder of record,
whatever its KYC status today: they pay an existing claim, not an acquisition.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.core.domain import Accepted, Command, Event, Outcome, Rejected, StateView
from traco.services.trade import governed
from traco.services.trade import queries as q
from traco.services.trade import waterfall as wf
from traco.services.trade.abs import payloads as p
from traco.services.trade.abs import state as s
from traco.services.trade.codes import DOC, Code, reject
from traco.services.trade.fields import MEMBER_ID_PATTERN
from traco.services.trade.flow import Rule
from traco.services.trade.ledger import Context, can_receive, can_spend
from traco.services.trade.loans import state as loans_state

LIEN_PLACE: Final = "doc.lien.place"
"""Pooling a receivable puts it under a lien in doc (``services/doc/managed.py``): sold to the
pool's investors, it can no longer be pledged, moved or held there."""

DAY_MS: Final = 86_400_000
DEFAULT_CLASS: Final = {
    "name": s.TRANCHE_CLASS,
    "transferable": True,
    "holdable": True,
    "mint": "none",
    "burn": "none",
    "eligibility": "qualified",
    "decimals": 2,
}
"""The class tranche units belong to when neither genesis nor the council defined one."""


class AbsCode(StrEnum):
    POOL_EXISTS = "POOL_EXISTS"
    UNKNOWN_POOL = "UNKNOWN_POOL"
    NOT_ARRANGER = "NOT_ARRANGER"
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    ASSET_NOT_HELD = "ASSET_NOT_HELD"
    """The arranger is not the document's holder (or the loan's lender)."""
    ASSET_ENCUMBERED = "ASSET_ENCUMBERED"
    """Pledged, held, superseded or surrendered, overdue; a loan not active: not a clean asset."""
    ASSET_POOLED = "ASSET_POOLED"
    ASSET_METADATA = "ASSET_METADATA"
    """An invoice's metadata lacks (or mangles) amount, debtor or due date."""
    ASSET_UNSUPPORTED = "ASSET_UNSUPPORTED"
    INVALID_TERMS = "INVALID_TERMS"
    TRANCHE_CLASS = "TRANCHE_CLASS"
    """The ``abs_tranche`` class on this chain admits more than qualified investors."""


Problems = list[tuple[str, str]]


def _refuse(problems: Problems) -> Rejected:
    """The first problem's code, every problem's message."""
    return reject(problems[0][0], "; ".join(message for _, message in problems))


def _due_ms(value: object) -> int | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(midnight.timestamp()) * 1000


def _receivable(ctx: Context, doc_id: str, problems: Problems) -> dict[str, Any] | None:
    """The pooled record of invoice ``doc_id``, or ``None`` with its problems added."""
    where = f"receivable {doc_id[:12]}…"
    doc = ctx.document(doc_id)
    if doc is None:
        problems.append((AbsCode.UNKNOWN_ASSET, f"{where}: doc has no such document"))
        return None
    found = len(problems)
    if doc.get("type") != "invoice":
        problems.append((AbsCode.ASSET_UNSUPPORTED, f"{where}: a {doc.get('type')}, not an invoice"))
    holder = (doc.get("holder") or {}).get("member_id")
    if holder != ctx.sender:
        problems.append((AbsCode.ASSET_NOT_HELD, f"{where}: held by {holder}, not by the arranger {ctx.sender}"))
    if doc.get("status") != "active":
        problems.append((AbsCode.ASSET_ENCUMBERED, f"{where}: the document is {doc.get('status')}"))
    pledge = doc.get("pledge")
    if isinstance(pledge, Mapping) and ctx.tx.time < pledge.get("expires_at", 0):
        problems.append((AbsCode.ASSET_ENCUMBERED, f"{where}: pledged (pledge {pledge.get('tx_id')})"))
    if doc.get("hold"):
        problems.append((AbsCode.ASSET_ENCUMBERED, f"{where}: its title is held ({doc['hold']})"))
    if (other := s.pooled_in(ctx.state, "receivable", doc_id)) is not None:
        problems.append((AbsCode.ASSET_POOLED, f"{where}: already in pool {other}"))
    raw_meta = doc.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    amount, debtor, due = meta.get("amount"), meta.get("debtor"), _due_ms(meta.get("due_date"))
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_SAFE_INTEGER:
        problems.append((AbsCode.ASSET_METADATA, f"{where}: metadata.amount must be a positive integer (minor units)"))
    if not isinstance(debtor, str) or not re.fullmatch(MEMBER_ID_PATTERN, debtor):
        problems.append((AbsCode.ASSET_METADATA, f"{where}: metadata.debtor must be the debtor's member id"))
    if due is None:
        problems.append((AbsCode.ASSET_METADATA, f"{where}: metadata.due_date must be a date, YYYY-MM-DD"))
    elif due + DAY_MS <= ctx.tx.time:
        problems.append((AbsCode.ASSET_ENCUMBERED, f"{where}: overdue since {meta['due_date']}"))
    if len(problems) > found:
        return None
    assert isinstance(amount, int) and isinstance(debtor, str) and due is not None
    return {"kind": "receivable", "id": doc_id, "amount": amount, "debtor": debtor, "due_at": due + DAY_MS}


def _loan(ctx: Context, loan_id: str, token: str, problems: Problems) -> dict[str, Any] | None:
    """The pooled record of loan ``loan_id``, or ``None`` with its problems added."""
    loan = loans_state.loan(ctx.state, loan_id)
    if loan is None:
        problems.append((AbsCode.UNKNOWN_ASSET, f"loan {loan_id}: there is no such loan"))
        return None
    found = len(problems)
    if loan["lender"] != ctx.sender:
        problems.append((AbsCode.ASSET_NOT_HELD, f"loan {loan_id}: its lender is {loan['lender']}, not the arranger"))
    if loan["status"] != "active":
        problems.append((AbsCode.ASSET_ENCUMBERED, f"loan {loan_id}: it is {loan['status']}, not active"))
    if loan["token"] != token:
        problems.append((AbsCode.INVALID_TERMS, f"loan {loan_id}: lent in {loan['token']}, the pool is in {token}"))
    if (other := s.pooled_in(ctx.state, "loan", loan_id)) is not None:
        problems.append((AbsCode.ASSET_POOLED, f"loan {loan_id}: already in pool {other}"))
    if len(problems) > found:
        return None
    return {
        "kind": "loan",
        "id": loan_id,
        "amount": loan["outstanding"],
        "debtor": loan["borrower"],
        "due_at": loan["maturity"],
        "rate_bp": loan["rate_bp"],
    }


def _tranche_class(ctx: Context, problems: Problems) -> tuple[dict[str, Any], bool]:
    """The tranche units' class and whether this pool adopts it (first use on this chain)."""
    cls = q.asset_class(ctx.state, s.TRANCHE_CLASS)
    if cls is not None:
        adopt = False
    else:
        adopt = True
        cls = governed.council_class(ctx.party, ctx.members, s.TRANCHE_CLASS) or dict(DEFAULT_CLASS)
    if cls["eligibility"] != "qualified" or not cls["transferable"] or cls["mint"] != "none":
        problems.append(
            (AbsCode.TRANCHE_CLASS, f"asset class {s.TRANCHE_CLASS} must be transferable, fixed supply, qualified only")
        )
    return cls, adopt


def pool(ctx: Context, a: p.AbsPool) -> Outcome:
    problems: Problems = []
    if s.pool(ctx.state, a.pool_id) is not None:
        return reject(AbsCode.POOL_EXISTS, f"a pool {a.pool_id} exists; pool ids are never reused")
    money = q.token(ctx.state, a.token)
    if money is None:
        return reject(Code.UNKNOWN_TOKEN, f"token: there is no token {a.token}")
    names = [t.name for t in a.tranches]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append((AbsCode.INVALID_TERMS, f"tranches: the name {name} is used twice"))
    for name in dict.fromkeys(names):
        token = s.tranche_token(a.pool_id, name)
        if q.token(ctx.state, token) is not None:
            problems.append((Code.TOKEN_EXISTS, f"tranches: a token {token} exists already"))
    cls, adopt = _tranche_class(ctx, problems)
    refused = can_receive(ctx, cls, s.tranche_token(a.pool_id, names[0]), ctx.sender)
    if refused is not None:
        problems.append((refused.code, f"the arranger receives the units: {refused.message}"))
    money_cls = q.asset_class(ctx.state, money["asset_class"]) or {}
    for label, fee in (("fees.senior", a.fees.senior), ("fees.sub", a.fees.sub)):
        if fee.to is not None and (refused := can_receive(ctx, money_cls, a.token, fee.to)) is not None:
            problems.append((refused.code, f"{label}.to: {refused.message}"))
    assets: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for asset in a.assets:
        kind, ident = ("loan", asset.loan) if isinstance(asset, p.LoanAsset) else ("receivable", asset.receivable)
        if (kind, ident) in seen:
            problems.append((AbsCode.INVALID_TERMS, f"assets: {kind} {ident} is listed twice"))
            continue
        seen.add((kind, ident))
        if kind == "loan":
            record = _loan(ctx, ident, a.token, problems)
        else:
            record = _receivable(ctx, ident, problems)
        if record is not None:
            assets.append(record)
    total = sum(x["amount"] for x in assets)
    sizes = sum(t.size for t in a.tranches)
    if not problems and sizes > total:
        problems.append((AbsCode.INVALID_TERMS, f"tranches: their sizes ({sizes}) exceed the pool ({total})"))
    if not problems and total > MAX_SAFE_INTEGER:
        problems.append((AbsCode.INVALID_TERMS, "assets: the pool exceeds 2**53 - 1 minor units"))
    if problems:
        return _refuse(problems)
    deal = wf.new_deal(
        [(t.name, t.size, t.coupon_bp) for t in a.tranches],
        equity=total - sizes,
        senior_fee=wf.Fee(rate_bp=a.fees.senior.rate_bp, fixed=a.fees.senior.fixed),
        sub_fee=wf.Fee(rate_bp=a.fees.sub.rate_bp, fixed=a.fees.sub.fixed),
        reserve_target=a.reserve_target,
        loss_trigger_bp=a.loss_trigger_bp,
    )
    assert isinstance(deal, wf.Deal), deal  # every term was checked above
    events: list[Event] = []
    if adopt:
        events.append(ctx.event("AssetClassAdopted", f"class:{s.TRANCHE_CLASS}", asset_class=cls))
    tranches = []
    for t in a.tranches:
        token = s.tranche_token(a.pool_id, t.name)
        record = {
            "token": token,
            "name": f"{a.pool_id} class {t.name}",
            "asset_class": cls["name"],
            "decimals": money["decimals"],
            "supply": 0,
            "kind": "abs_tranche",
        }
        events.append(ctx.event("TokenDefined", f"token:{token}", token=record))
        events.append(ctx.event("Minted", f"token:{token}", token=token, account=ctx.sender, amount=t.size))
        tranches.append({"name": t.name, "token": token, "size": t.size, "coupon_bp": t.coupon_bp})
    fees = {
        part: {"rate_bp": f.rate_bp, "fixed": f.fixed, "to": f.to or ctx.sender}
        for part, f in (("senior", a.fees.senior), ("sub", a.fees.sub))
    }
    record = {
        "pool_id": a.pool_id,
        "arranger": ctx.sender,
        "token": a.token,
        "account": s.account(a.pool_id),
        "assets": assets,
        "size": total,
        "equity": total - sizes,
        "tranches": tranches,
        "fees": fees,
        "deal": deal.to_json(),
        "status": "performing",
        "carry": {t.name: 0 for t in a.tranches},
        "collections": 0,
        "collected": 0,
        "paid_out": 0,
        "last_time": ctx.tx.time,
        "opened": ctx.stamp,
    }
    events.append(ctx.event("AbsPooled", f"abs:{a.pool_id}", pool=record))
    tokens = [x["token"] for x in tranches]
    liens = tuple(
        Command(target=DOC, kind=LIEN_PLACE, payload={"doc_id": x["id"], "reference": s.account(a.pool_id)})
        for x in assets
        if x["kind"] == "receivable"
    )
    result = {"pool_id": a.pool_id, "size": total, "equity": total - sizes, "tokens": tokens}
    return Accepted(tuple(events), result, liens)


def payouts(
    state: StateView, record: Mapping[str, Any], dist: wf.Distribution
) -> tuple[dict[str, int], dict[str, int]]:
    """Account -> amount of one distribution, and each tranche's rounding carry after it.

    Fees go to their ``to`` and the residual to the arranger, in full. A tranche's pot is what the
    waterfall paid it (interest and principal) plus its carry from earlier distributions; each
    unit holder gets ``floor(pot * units / size)``, and what that leaves (less than one minor unit
    per holder) is the tranche's new carry, kept in the pool's account for its holders."""
    out: dict[str, int] = {}

    def pay(account: str, amount: int) -> None:
        if amount > 0:
            out[account] = out.get(account, 0) + amount

    carry = dict(record["carry"])
    pay(record["fees"]["senior"]["to"], dist.paid_to("senior_fee", wf.SENIOR_FEE))
    for t in record["tranches"]:
        pot = carry[t["name"]] + dist.paid_to("interest", t["name"]) + dist.paid_to("principal", t["name"])
        shared = 0
        if pot:
            for account, bal in q.holders(state, t["token"]):
                share = pot * bal["total"] // t["size"]
                pay(account, share)
                shared += share
        carry[t["name"]] = pot - shared
    pay(record["fees"]["sub"]["to"], dist.paid_to("sub_fee", wf.SUB_FEE))
    pay(record["arranger"], dist.paid_to("residual", wf.EQUITY))
    return out, carry


def collect(ctx: Context, c: p.AbsCollect) -> Outcome:
    record = s.pool(ctx.state, c.pool_id)
    if record is None:
        return reject(AbsCode.UNKNOWN_POOL, f"there is no pool {c.pool_id}")
    if ctx.sender != record["arranger"]:
        return reject(AbsCode.NOT_ARRANGER, f"only the arranger ({record['arranger']}) collects for pool {c.pool_id}")
    token, account = record["token"], record["account"]
    if c.amount and (refused := can_spend(ctx, token, ctx.sender, c.amount)) is not None:
        return refused
    deal = wf.Deal.from_json(record["deal"])
    unclaimed = q.balance(ctx.state, token, account)["total"] - deal.reserve - sum(record["carry"].values())
    if unclaimed < 0:
        raise ValueError(
            f"pool {c.pool_id}'s account holds less than its reserve and carries: the state is inconsistent"
        )
    available = c.amount + unclaimed
    if available > MAX_SAFE_INTEGER:
        return reject(AbsCode.INVALID_TERMS, "amount: the pool's funds would exceed 2**53 - 1 minor units")
    dist = wf.distribute(deal, available, c.losses, ctx.tx.time - record["last_time"])
    out, carry = payouts(ctx.state, record, dist)
    seq = record["collections"] + 1
    memo = f"abs {c.pool_id} distribution {seq}"
    events: list[Event] = []
    if c.amount:
        moved = {"token": token, "from": ctx.sender, "to": account, "amount": c.amount, "memo": memo}
        events.append(ctx.event("Transferred", f"token:{token}", **moved))
    for to, amount in out.items():
        moved = {"token": token, "from": account, "to": to, "amount": amount, "memo": memo}
        events.append(ctx.event("Transferred", f"token:{token}", **moved))
    data = {
        "pool_id": c.pool_id,
        "seq": seq,
        "amount": c.amount,
        "carried_in": unclaimed,
        "losses": c.losses,
        "period_ms": dist.period_ms,
        "distribution": dist.to_json(),
        "payouts": [[to, amount] for to, amount in out.items()],
        "carry": carry,
    }
    events.append(ctx.event("AbsCollected", f"abs:{c.pool_id}", **data))
    result = {
        "pool_id": c.pool_id,
        "seq": seq,
        "waterfall": dist.waterfall,
        "paid": sum(out.values()),
        "carry": carry,
        "reserve": dist.deal.reserve,
        "defaulted": dist.deal.defaulted,
    }
    return Accepted(tuple(events), result)


RULES: Final[dict[str, Rule]] = {p.POOL: pool, p.COLLECT: collect}
