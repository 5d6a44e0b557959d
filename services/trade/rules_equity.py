"""Equity-anchored tokens (the ECC seed; its BSA contract's four elements), architecture: The code (trade)

Rules:

- **E1 definition.** ``trade.equity.define`` fixes the four elements: the anchored security
  (e.g. a Hong Kong main-board share code), the ratio (ECC: 3 tokens : 2 shares), where it
  circulates, and how it is exercised (exercise centre, settlement agent, custodian). The token
  belongs to the genesis's equity asset class (qualified investors only). The named custodian
  defines it, since it is the one that attests the deposits.
- **E2 ratio.** Tokens outstanding (held ones included) never exceed ``ratio × custodied
  shares``: ``supply · ratio_shares <= ratio_tokens · custodied`` in integers, checked on every
  issue (``RATIO_EXCEEDED``); settlement burns tokens and removes shares in the same ratio, so
  it keeps the bound. An optional ``max_tokens`` caps the issue (ECC: 210,000,000).
- **E3 holders.** Only qualified investors receive the token (``NOT_QUALIFIED``), by issue,
  transfer or hold execution (``ledger.can_receive``).
- **E4 exercise.** ``trade.equity.exercise`` holds the tokens (``traco.core.holds``) for the
  service with the settlement agent as notary, expiring after the governed settlement window,
  and files the instruction. The amount must convert to whole shares (``INVALID_AMOUNT``).
- **E5 settlement.** The settlement agent's ``trade.equity.settled`` either executes the hold
  and burns the tokens, reducing the custodied shares (accepted), or releases it so the tokens
  return (refused). If it never answers, the hold clause returns them at expiry. Exercise holds
  are closed only this way, never by ``trade.hold.*``.

- **E6 custody statements.** The token's custodian lists its periodic custody statements
  (``trade.equity.statement``): the statement's SHA-256, the ``chain.anchor`` transaction that
  anchored it, and the shares it reports. Trade cannot see the chain's own state, so it records
  the claim; ``traco equity show`` proves each anchor with a light-client proof and checks that
  it anchors exactly that digest, and shows whether the reported shares match the custodied ones.
"""

from __future__ import annotations

from typing import Any

from traco.core import holds
from traco.core.domain import Accepted, Outcome, Rejected
from traco.core.holds import Hold
from traco.services.trade import governed
from traco.services.trade import payloads as p
from traco.services.trade import queries as q
from traco.services.trade.codes import SERVICE, Code, reject
from traco.services.trade.ledger import Context, can_receive, can_spend, token_and_class

BURN_ACCOUNT = f"service:{SERVICE}"
"""The beneficiary of exercise holds: executed tokens land here and are burnt in the same step."""


def define(ctx: Context, d: p.EquityDefine) -> Outcome:
    params = q.params(ctx.state, "equity")
    if params is None:
        return reject(Code.NOT_CONFIGURED, "this chain has no equity asset class (no equity section in trade genesis)")
    if q.token(ctx.state, d.token) is not None:
        return reject(Code.TOKEN_EXISTS, f"a token {d.token} exists")
    if ctx.sender != d.exercise.custodian:
        return reject(
            Code.NOT_CUSTODIAN, f"the custodian named in the terms ({d.exercise.custodian}) defines the token"
        )
    if ctx.member(d.exercise.settlement_agent) is None:
        return reject(Code.NOT_A_MEMBER, f"settlement agent {d.exercise.settlement_agent} is not an admitted member")
    name = d.asset_class or params["asset_class"]
    cls = q.asset_class(ctx.state, name)
    adopted = cls is None
    if cls is None:
        cls = governed.council_class(ctx.party, ctx.members, name)
    if cls is None or (cls["mint"], cls["burn"]) != ("deposit", "exercise"):
        return reject(
            Code.INVALID_PAYLOAD,
            f"asset_class: {name} is not an equity class (mint deposit, burn exercise) of the genesis or the council",
        )
    token = {
        "token": d.token,
        "name": d.name,
        "asset_class": cls["name"],
        "decimals": cls["decimals"],
        "supply": 0,
        "kind": "equity",
    }
    terms = {
        "token": d.token,
        "security": d.security,
        "ratio_tokens": d.ratio_tokens,
        "ratio_shares": d.ratio_shares,
        "circulation": d.circulation,
        "exercise": d.exercise.model_dump(mode="json"),
        "max_tokens": d.max_tokens,
        "custodied_shares": 0,
        "defined": ctx.stamp,
    }
    events = (
        *([ctx.event("AssetClassAdopted", f"class:{name}", asset_class=cls)] if adopted else []),
        ctx.event("TokenDefined", f"token:{d.token}", token=token),
        ctx.event("EquityDefined", f"token:{d.token}", equity=terms),
    )
    return Accepted(events, {"token": d.token, "asset_class": name})


def _terms(ctx: Context, token: str) -> dict[str, Any] | Rejected:
    terms = q.equity(ctx.state, token)
    if terms is None:
        return reject(Code.UNKNOWN_TOKEN, f"there is no equity-anchored token {token}")
    return terms


def within_ratio(terms: dict[str, Any], supply: int, shares: int) -> bool:
    """E2 in integers: ``supply / shares <= ratio_tokens / ratio_shares``."""
    return supply * int(terms["ratio_shares"]) <= int(terms["ratio_tokens"]) * shares


def issue(ctx: Context, i: p.EquityIssue) -> Outcome:
    terms = _terms(ctx, i.token)
    if isinstance(terms, Rejected):
        return terms
    if ctx.sender != terms["exercise"]["custodian"]:
        return reject(Code.NOT_CUSTODIAN, f"only {terms['exercise']['custodian']} issues {i.token}")
    found = token_and_class(ctx.state, i.token)
    if isinstance(found, Rejected):
        return found
    token, cls = found
    refused = can_receive(ctx, cls, i.token, i.to)  # E3
    if refused is not None:
        return refused
    supply = int(token["supply"]) + i.amount
    shares = int(terms["custodied_shares"]) + i.shares
    if terms["max_tokens"] is not None and supply > terms["max_tokens"]:
        return reject(Code.RATIO_EXCEEDED, f"{i.token} is capped at {terms['max_tokens']}; this would make {supply}")
    if not within_ratio(terms, supply, shares):  # E2
        return reject(
            Code.RATIO_EXCEEDED,
            f"{supply} {i.token} against {shares} custodied shares exceeds"
            f" {terms['ratio_tokens']} tokens per {terms['ratio_shares']} shares",
        )
    events = []
    if i.shares:
        events.append(ctx.event("SharesDeposited", f"token:{i.token}", token=i.token, shares=i.shares))
    events.append(ctx.event("Minted", f"token:{i.token}", token=i.token, account=i.to, amount=i.amount))
    return Accepted(tuple(events), {"token": i.token, "supply": supply, "custodied_shares": shares})


def exercise(ctx: Context, e: p.EquityExercise) -> Outcome:
    terms = _terms(ctx, e.token)
    if isinstance(terms, Rejected):
        return terms
    if e.amount * int(terms["ratio_shares"]) % int(terms["ratio_tokens"]):  # E4
        return reject(
            Code.INVALID_AMOUNT,
            f"{e.amount} {e.token} is not a whole number of shares at {terms['ratio_tokens']}:{terms['ratio_shares']}",
        )
    refused = can_spend(ctx, e.token, ctx.sender, e.amount)
    if refused is not None:
        return refused
    params = q.params(ctx.state, "equity")
    assert params is not None
    agent = terms["exercise"]["settlement_agent"]
    made = holds.create(
        hold_id=q.exercise_hold_id(ctx.tx.tx_id),
        owner=ctx.sender,
        beneficiary=BURN_ACCOUNT,
        notary=agent,
        asset=e.token,
        amount=e.amount,
        expires_height=None,
        expires_time=ctx.tx.time + int(params["settlement_window_ms"]),
        height=ctx.tx.height,
        time=ctx.tx.time,
        available=e.amount,
        id_used=q.read(ctx.state, q.hold_key(q.exercise_hold_id(ctx.tx.tx_id))) is not None,
    )
    if isinstance(made, Rejected):
        return made
    shares = e.amount * int(terms["ratio_shares"]) // int(terms["ratio_tokens"])
    record = {
        "exercise_id": ctx.tx.tx_id,
        "hold_id": made.hold_id,
        "token": e.token,
        "holder": ctx.sender,
        "amount": e.amount,
        "shares": shares,
        "centre": terms["exercise"]["centre"],
        "settlement_agent": agent,
        "status": "pending",
        **ctx.stamp,
    }
    events = (
        ctx.event("HoldCreated", f"hold:{made.hold_id}", hold=made.to_json()),
        ctx.event("ExerciseFiled", f"exercise:{ctx.tx.tx_id}", exercise=record),
    )
    return Accepted(events, {"exercise_id": ctx.tx.tx_id, "shares": shares})


def settled(ctx: Context, s: p.EquitySettled) -> Outcome:
    record = q.exercise(ctx.state, s.exercise_id)
    if record is None:
        return reject(Code.UNKNOWN_EXERCISE, f"there is no exercise {s.exercise_id}")
    if record["status"] != "pending":
        return reject(Code.HOLD_CLOSED, f"exercise {s.exercise_id} is already {record['status']}")
    if ctx.sender != record["settlement_agent"]:
        return reject(Code.NOT_SETTLEMENT_AGENT, f"only {record['settlement_agent']} settles this exercise")
    hold = q.hold(ctx.state, record["hold_id"])
    assert hold is not None, "an exercise always has its hold"
    done: Hold | Rejected
    if s.accepted:
        done = holds.execute(hold, ctx.sender, None, ctx.tx.height, ctx.tx.time)
    else:
        done = holds.release(hold, ctx.sender, ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    events = [ctx.event("HoldExecuted" if s.accepted else "HoldReleased", f"hold:{hold.hold_id}", hold=done.to_json())]
    shares = record["shares"] if s.accepted else 0
    if s.accepted:  # E5: burn and remove the shares in the same step
        token = record["token"]
        events.append(ctx.event("Burned", f"token:{token}", token=token, account=BURN_ACCOUNT, amount=done.executed))
    events.append(
        ctx.event(
            "ExerciseSettled",
            f"exercise:{s.exercise_id}",
            exercise_id=s.exercise_id,
            accepted=s.accepted,
            shares=shares,
            reason=s.reason,
        )
    )
    return Accepted(tuple(events), {"exercise_id": s.exercise_id, "accepted": s.accepted, "shares": shares})


def statement(ctx: Context, s: p.EquityStatement) -> Outcome:
    terms = _terms(ctx, s.token)
    if isinstance(terms, Rejected):
        return terms
    if ctx.sender != terms["exercise"]["custodian"]:
        return reject(Code.NOT_CUSTODIAN, f"only {terms['exercise']['custodian']} lists {s.token}'s custody statements")
    if any(listed["anchor_tx_id"] == s.anchor_tx_id for listed in terms.get("statements", [])):
        return reject(Code.DUPLICATE_STATEMENT, f"the statement anchored by {s.anchor_tx_id} is already listed")
    listed = {"anchor_tx_id": s.anchor_tx_id, "digest": s.digest, "shares": s.shares}
    event = ctx.event("CustodyStatementListed", f"token:{s.token}", token=s.token, statement=listed)
    return Accepted((event,), {"token": s.token, "matches_custody": s.shares == int(terms["custodied_shares"])})
