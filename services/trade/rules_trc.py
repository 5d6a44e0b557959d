"""TRC, the fiat-backed stablecoin: attestations, mint, redemption, freezes (architecture: The code (trade)).

Rules (each cited where it is implemented):

- **R1 attestation by threshold.** A custodian named in genesis signs ``(reserve, as_of, seq)``
  (``AttestationSigned``); once ``threshold`` custodians have signed the *same* triple for a
  ``seq``, it becomes the last valid attestation (``ReserveAttested``). A custodian signs one
  triple per ``seq`` (``ALREADY_ATTESTED``), so it cannot count towards two different ones.
- **R2 order.** ``seq`` strictly increases over valid attestations, ``as_of`` never goes back,
  and ``as_of`` is not after the block time (``STALE_ATTESTATION``). Signatures for a ``seq`` at
  or below a valid one are dropped when it becomes valid.
- **R3 mint bound.** A custodian mints only to a KYC-valid member, and only while
  ``supply + amount <= reserve - pending - paid_since`` where ``pending`` is TRC redeemed whose
  fiat is not yet paid and ``paid_since`` is fiat paid out (``trade.trc.redeemed``) after the
  attestation's ``as_of`` — money the attested reserve no longer holds (``RESERVE_EXCEEDED``).
  So no mint ever takes supply above the last valid attestation's reserve.
- **R4 fail closed.** No attestation yet, or the last one's ``as_of`` older than
  ``max_reserve_age_ms`` at the block time: ``RESERVE_STALE``.
- **R5 shortfall.** An attestation whose reserve is below ``supply + pending + paid_since``
  (fiat paid out after its ``as_of``, which the attested reserve still counted) records the
  ``shortfall`` and pauses minting (``UNDER_RESERVED``) until a later one shows cover.
  Redemptions go on.
- **R6 redemption.** The holder burns TRC (``Burned``), pays the Coco fee of the governed
  schedule to the custodian it names, and a redemption is pending until that custodian confirms
  the fiat payment (``trade.trc.redeemed``).
- **R8 governance.** The maximum reserve age, the redemption fee schedule and the compliance
  role are the genesis's until the council sets ``service_param trade/trc`` (``governed``).
- **R7 compliance.** Holders of the governed compliance role (a party role) freeze and unfreeze
  an account's TRC, each with a reason on record. A frozen account neither sends, receives,
  holds nor redeems TRC. (A corrective transfer needs a council vote: not a trade kind.)

Deviation: TRC's custodian set and threshold come from genesis only; changing them by council
vote needs a party proposal type (see the report to the integrator).
"""

from __future__ import annotations

from typing import Any

from traco.core.domain import Accepted, Outcome, Rejected
from traco.services.trade import governed
from traco.services.trade import payloads as p
from traco.services.trade import queries as q
from traco.services.trade.codes import Code, reject
from traco.services.trade.ledger import Context, can_spend


def _params(ctx: Context) -> dict[str, Any] | Rejected:
    params = q.params(ctx.state, "trc")
    if params is None:
        return reject(Code.NOT_CONFIGURED, "this chain has no TRC (no trc section in the trade genesis)")
    return governed.trc_params(params, ctx.party, ctx.members)  # the council's overrides (R8)


def _custodian(ctx: Context, params: dict[str, Any]) -> Rejected | None:
    if ctx.sender not in params["custodians"]:
        return reject(Code.NOT_CUSTODIAN, f"{ctx.sender} is not a TRC custodian ({', '.join(params['custodians'])})")
    return None


def attest(ctx: Context, a: p.TrcAttest) -> Outcome:
    params = _params(ctx)
    if isinstance(params, Rejected):
        return params
    refused = _custodian(ctx, params)
    if refused is not None:
        return refused
    last = q.reserve(ctx.state)
    if a.as_of > ctx.tx.time:  # R2
        return reject(Code.STALE_ATTESTATION, f"as_of {a.as_of} is after the block time {ctx.tx.time}")
    if last is not None and a.seq <= last["seq"]:
        return reject(Code.STALE_ATTESTATION, f"seq {a.seq} is not above the last valid attestation's {last['seq']}")
    if last is not None and a.as_of < last["as_of"]:
        return reject(Code.STALE_ATTESTATION, f"as_of {a.as_of} is before the last valid one's {last['as_of']}")
    signed = q.attestations(ctx.state, a.seq)
    if ctx.sender in signed:  # R1
        return reject(Code.ALREADY_ATTESTED, f"{ctx.sender} already attested seq {a.seq}")
    events = [ctx.event("AttestationSigned", "trc", seq=a.seq, custodian=ctx.sender, reserve=a.reserve, as_of=a.as_of)]
    signers = sorted(
        {ctx.sender}
        | {
            c
            for c, s in signed.items()
            if c in params["custodians"] and (s["reserve"], s["as_of"]) == (a.reserve, a.as_of)
        }
    )
    result: dict[str, Any] = {"seq": a.seq, "signers": signers, "valid": False}
    if len(signers) >= params["threshold"]:
        token = q.token(ctx.state, params["token"])
        supply = 0 if token is None else int(token["supply"])
        pending = q.pending_redemptions(ctx.state)
        # R5: fiat paid out after as_of was still in the attested reserve and is gone now
        paid_since = sum(int(p["amount"]) for p in (last or {}).get("paid_after", []) if p["time"] > a.as_of)
        shortfall = max(0, supply + pending + paid_since - a.reserve)
        events.append(
            ctx.event(
                "ReserveAttested",
                "trc",
                seq=a.seq,
                reserve=a.reserve,
                as_of=a.as_of,
                signers=signers,
                supply=supply,
                pending=pending,
                paid_since=paid_since,
                shortfall=shortfall,
            )
        )
        result.update(valid=True, shortfall=shortfall)
    return Accepted(tuple(events), result)


def headroom(ctx: Context, params: dict[str, Any]) -> int | Rejected:
    """How much more TRC may exist now (R3-R5), or why none may be minted."""
    last = q.reserve(ctx.state)
    if last is None:
        return reject(Code.RESERVE_STALE, "no reserve attestation yet; minting is closed")
    age = ctx.tx.time - int(last["as_of"])
    if age > int(params["max_reserve_age_ms"]):
        return reject(
            Code.RESERVE_STALE,
            f"the last attestation (seq {last['seq']}) is {age} ms old; the maximum is {params['max_reserve_age_ms']}",
        )
    if last["shortfall"] > 0:
        return reject(
            Code.UNDER_RESERVED,
            f"attestation seq {last['seq']} showed a shortfall of {last['shortfall']}; minting waits for cover",
        )
    paid_since = sum(int(paid["amount"]) for paid in last["paid_after"])
    token = q.token(ctx.state, params["token"])
    supply = 0 if token is None else int(token["supply"])
    return int(last["reserve"]) - q.pending_redemptions(ctx.state) - paid_since - supply


def mint(ctx: Context, m: p.TrcMint) -> Outcome:
    params = _params(ctx)
    if isinstance(params, Rejected):
        return params
    refused = _custodian(ctx, params)
    if refused is not None:
        return refused
    token = params["token"]
    if ctx.member(m.to) is None:
        return reject(Code.NOT_A_MEMBER, f"{m.to} is not an admitted member")
    if not ctx.kyc_valid(m.to):
        return reject(Code.KYC_REQUIRED, f"TRC is minted only to KYC-verified members; {m.to} is not")
    if q.frozen(ctx.state, token, m.to) is not None:
        return reject(Code.FROZEN, f"{m.to}'s {token} is frozen")
    room = headroom(ctx, params)
    if isinstance(room, Rejected):
        return room
    if m.amount > room:
        return reject(
            Code.RESERVE_EXCEEDED, f"minting {m.amount} would exceed the attested reserve; room: {max(0, room)}"
        )
    event = ctx.event("Minted", f"token:{token}", token=token, account=m.to, amount=m.amount)
    return Accepted((event,), {"token": token, "amount": m.amount})


def fee_for(params: dict[str, Any], amount: int) -> int:
    """The Coco fee of redeeming ``amount`` TRC: the highest tier whose ``min_amount`` it reaches."""
    fee = 0
    for tier in params["redemption_fees"]:
        if amount >= tier["min_amount"]:
            fee = int(tier["fee"])
    return fee


def redeem(ctx: Context, r: p.TrcRedeem) -> Outcome:
    params = _params(ctx)
    if isinstance(params, Rejected):
        return params
    if r.custodian not in params["custodians"]:
        return reject(Code.NOT_CUSTODIAN, f"{r.custodian} is not a TRC custodian")
    token = params["token"]
    refused = can_spend(ctx, token, ctx.sender, r.amount)
    if refused is not None:
        return refused
    fee = fee_for(params, r.amount)
    events = [ctx.event("Burned", f"token:{token}", token=token, account=ctx.sender, amount=r.amount)]
    if fee > 0:
        coco = q.params(ctx.state, "coco")
        if coco is None:
            return reject(Code.NOT_CONFIGURED, "the redemption fee is in Coco and this chain has no Coco")
        refused = can_spend(ctx, coco["token"], ctx.sender, fee)
        if refused is not None:
            return reject(refused.code, f"the redemption fee of {fee} Coco: {refused.message}")
        moved = {
            "token": coco["token"],
            "from": ctx.sender,
            "to": r.custodian,
            "amount": fee,
            "memo": "TRC redemption fee",
        }
        events.append(ctx.event("Transferred", f"token:{coco['token']}", **moved))
    record = {
        "redemption_id": ctx.tx.tx_id,
        "holder": ctx.sender,
        "custodian": r.custodian,
        "amount": r.amount,
        "fee": fee,
        "status": "pending",
        **ctx.stamp,
    }
    events.append(ctx.event("RedemptionRequested", f"redemption:{ctx.tx.tx_id}", redemption=record))
    return Accepted(tuple(events), {"redemption_id": ctx.tx.tx_id, "fee": fee})


def redeemed(ctx: Context, r: p.TrcRedeemed) -> Outcome:
    record = q.redemption(ctx.state, r.redemption_id)
    if record is None:
        return reject(Code.UNKNOWN_REDEMPTION, f"there is no redemption {r.redemption_id}")
    if record["status"] != "pending":
        return reject(Code.REDEMPTION_CLOSED, f"redemption {r.redemption_id} is already {record['status']}")
    if ctx.sender != record["custodian"]:
        return reject(Code.NOT_CUSTODIAN, f"only {record['custodian']} confirms redemption {r.redemption_id}")
    event = ctx.event("RedemptionPaid", f"redemption:{r.redemption_id}", redemption_id=r.redemption_id)
    return Accepted((event,), {"redemption_id": r.redemption_id})


def _compliance(ctx: Context) -> tuple[dict[str, Any], str] | Rejected:
    params = _params(ctx)
    if isinstance(params, Rejected):
        return params
    if not ctx.has_role(params["compliance_role"]):
        return reject(Code.NOT_COMPLIANCE, f"only the {params['compliance_role']} role freezes or unfreezes TRC")
    return params, params["token"]


def freeze(ctx: Context, f: p.TrcFreeze) -> Outcome:
    found = _compliance(ctx)
    if isinstance(found, Rejected):
        return found
    _, token = found
    if q.frozen(ctx.state, token, f.account) is not None:
        return reject(Code.ALREADY_FROZEN, f"{f.account}'s {token} is already frozen")
    event = ctx.event("AccountFrozen", f"token:{token}", token=token, account=f.account, reason=f.reason)
    return Accepted((event,), {"account": f.account})


def unfreeze(ctx: Context, f: p.TrcFreeze) -> Outcome:
    found = _compliance(ctx)
    if isinstance(found, Rejected):
        return found
    _, token = found
    if q.frozen(ctx.state, token, f.account) is None:
        return reject(Code.NOT_FROZEN, f"{f.account}'s {token} is not frozen")
    event = ctx.event("AccountUnfrozen", f"token:{token}", token=token, account=f.account, reason=f.reason)
    return Accepted((event,), {"account": f.account})
