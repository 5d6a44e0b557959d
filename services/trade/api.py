"""The trade service's HTTP API: accounts, tokens, asset classes, holds, TRC's reserve, Coco's
schedule and equity-anchored tokens — reads of the node's own replica of trade.

Every answer is as of the last height this replica executed (``as_of_height``); errors have one
shape, ``{"detail": {"code", "message"}}`` (404 ``NOT_FOUND``, 422 ``INVALID``). Accounts are
party member ids; ``/accounts/{who}`` also takes a member's key or its ``traco:<chain>:<hex>``
address and answers for the member. Transactions are submitted signed to the consensus API
(``POST /tx``); this API only reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from traco.core import crypto
from traco.core.service_runtime import ServiceRuntime, upstream_projection
from traco.services.trade import flow_views, governed, queries, risk, views
from traco.services.trade.abs import views as abs_views
from traco.services.trade.domain import TRADE
from traco.services.trade.exchange import views as market_views

MAX_PAGE = 500


class Balance(BaseModel):
    total: int
    held: int
    locked: int
    available: int
    frozen: dict[str, Any] | None = None


class Account(BaseModel):
    account: str
    balances: dict[str, Balance]
    as_of_height: int


class Page(BaseModel):
    items: list[dict[str, Any]]
    offset: int
    limit: int
    total: int
    as_of_height: int


def _error(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message})


def _not_found(what: str) -> HTTPException:
    return _error(404, "NOT_FOUND", f"no {what}")


def _answer(found: dict[str, Any] | None, what: str, height: int) -> dict[str, Any]:
    """A view as served: 404 naming ``what`` when there is none, else the view and its height."""
    if found is None:
        raise _not_found(what)
    return {**found, "as_of_height": height}


def _page(items: list[dict[str, Any]], offset: int, limit: int, height: int) -> Page:
    return Page(items=items[offset : offset + limit], offset=offset, limit=limit, total=len(items), as_of_height=height)


Offset = Annotated[int, Query(ge=0, description="items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")]


def router(runtime: ServiceRuntime) -> APIRouter:
    api = APIRouter()
    view = runtime.store

    def member_of(who: str) -> str:
        """A member id from an id, a key or an address (the party projection of this replica)."""
        key = who
        if who.startswith("traco:"):
            try:
                chain, public = crypto.parse_address(who)
            except ValueError as exc:
                raise _error(422, "INVALID", f"{who}: {exc}") from None
            if chain != runtime.genesis.chain_id:
                raise _error(
                    422, "INVALID", f"{who} is an address on chain {chain!r}, not {runtime.genesis.chain_id!r}"
                )
            key = public.hex()
        if crypto.is_hex_public_key(key):
            record = TRADE.party.member(upstream_projection(view, "party"), key, runtime.block_time)
            if record is None:
                raise _not_found(f"member with key {key[:16]}…")
            return str(record["member_id"])
        return who

    @api.get("/accounts/{who}", response_model=Account)
    async def account(who: str) -> Account:
        """Balances of every token the member holds: total, held, locked, available, frozen."""
        shown = views.account_view(view, member_of(who), runtime.height)
        balances = {token: Balance(**values) for token, values in shown["balances"].items()}
        return Account(account=shown["account"], balances=balances, as_of_height=runtime.height)

    @api.get("/tokens", response_model=Page)
    async def tokens(offset: Offset = 0, limit: Limit = 100) -> Page:
        """Every token with its asset class, in token order."""
        found = [views.token_view(view, t["token"]) or {} for t in queries.tokens(view)]
        return _page(found, offset, limit, runtime.height)

    @api.get("/tokens/{token}")
    async def token(token: str) -> dict[str, Any]:
        """One token: supply, asset class and what the class allows."""
        return _answer(views.token_view(view, token), f"token {token}", runtime.height)

    @api.get("/asset-classes", response_model=Page)
    async def asset_classes(offset: Offset = 0, limit: Limit = 100) -> Page:
        """What each asset class requires of its tokens (transfer, hold, mint/burn, holders): the
        genesis's and those the council added (``defined_by: council``)."""
        own = queries.asset_classes(view)
        names = {c["name"] for c in own}
        voted = governed.council_classes(TRADE.party, upstream_projection(view, "party"))
        return _page([*own, *(c for c in voted if c["name"] not in names)], offset, limit, runtime.height)

    @api.get("/holds/{hold_id}")
    async def hold(hold_id: str) -> dict[str, Any]:
        """A hold of an amount, open or closed, and how it ended."""
        return _answer(views.hold_view(view, hold_id), f"hold {hold_id}", runtime.height)

    @api.get("/trc/reserve")
    async def reserve() -> dict[str, Any]:
        """TRC's backing: the last attestation, supply, pending redemptions, under-reserved, stale."""
        return _answer(views.reserve_view(view, runtime.block_time), "TRC on this chain", runtime.height)

    @api.get("/coco/schedule")
    async def coco_schedule(epochs: Annotated[int, Query(ge=1, le=2000)] = 52) -> dict[str, Any]:
        """Coco's emission by epoch, beside what each epoch paid so far."""
        return _answer(views.coco_view(view, epochs), "Coco on this chain", runtime.height)

    @api.get("/equity/{token}")
    async def equity(token: str) -> dict[str, Any]:
        """An equity-anchored token's terms, custodied shares, supply and whether it is within ratio."""
        return _answer(views.equity_view(view, token), f"equity-anchored token {token}", runtime.height)

    @api.get("/abs/{pool_id}")
    async def abs_pool(pool_id: str) -> dict[str, Any]:
        """A securitisation pool: assets, tranches (balance, arrears, holders), reserve, cash, recent distributions."""
        return _answer(abs_views.pool_view(view, pool_id), f"pool {pool_id}", runtime.height)

    @api.get("/escrows/{escrow_id}")
    async def escrow(escrow_id: str) -> dict[str, Any]:
        """An escrow: terms, what releases it, status, dispute, how it closed, and its hold."""
        return _answer(flow_views.escrow_view(view, escrow_id), f"escrow {escrow_id}", runtime.height)

    @api.get("/finance/requests/{request_id}")
    async def finance_request(request_id: str) -> dict[str, Any]:
        """A financing request and its open offers, best first (lowest rate, then earliest)."""
        return _answer(
            flow_views.finance_request_view(view, request_id, runtime.block_time),
            f"financing request {request_id}",
            runtime.height,
        )

    @api.get("/loans/{loan_id}")
    async def loan(loan_id: str) -> dict[str, Any]:
        """A loan, with interest owed and total due at the last block time this replica executed."""
        return _answer(flow_views.loan_view(view, loan_id, runtime.block_time), f"loan {loan_id}", runtime.height)

    @api.get("/dvp/{dvp_id}")
    async def dvp(dvp_id: str) -> dict[str, Any]:
        """A delivery-versus-payment settlement: terms, legs, status, and the buyer's token hold."""
        return _answer(flow_views.dvp_view(view, dvp_id), f"DvP {dvp_id}", runtime.height)

    @api.get("/risk/{who}")
    async def member_risk(who: str) -> dict[str, Any]:
        """A member's exposure: loans, held amounts, escrow, pledged documents, concentration (HHI)."""
        member = member_of(who)
        if TRADE.party.member_by_id(upstream_projection(view, "party"), member) is None:
            raise _not_found(f"member {member}")
        return {**risk.risk_view(view, member), "as_of_height": runtime.height}

    @api.get("/markets/{pair:path}")
    async def market(
        pair: str,
        depth: Annotated[int, Query(ge=1, le=MAX_PAGE, description="price levels per side")] = 20,
        trades: Annotated[int, Query(ge=1, le=100, description="last trades, newest first")] = 20,
    ) -> dict[str, Any]:
        """A pair's order book by price level, its last trades and its volume (``COCO/TRC`` or ``COCO-TRC``)."""
        return _answer(
            market_views.market_view(view, market_views.normal_pair(pair), depth, trades),
            f"pair {pair}",
            runtime.height,
        )

    @api.get("/invariants")
    async def invariants() -> dict[str, Any]:
        """The ledger's promises checked over this replica's whole state (empty list: sound)."""
        return {"problems": views.invariants(view), "as_of_height": runtime.height}

    return api
