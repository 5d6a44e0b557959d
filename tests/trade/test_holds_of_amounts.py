"""Holds of amounts at trade's door, from a mutmut run over ``core/holds.py``,
``rules_tokens.py`` and ``ledger.py`` that found these unchecked: whom a hold may name (a
beneficiary who may hold the token, an admitted notary), what it may hold (not a locked or a
frozen amount), when it may still pay out (not from a frozen owner, not to a beneficiary who
may no longer hold the token), which refusal names the shortfall, the results integrators read,
and a service notary's release by its own command.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.trade.helpers import Chain, withdraw_kyc
from tests.trade.test_trc import attested
from traco.core.domain import DictState, TxContext
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import queries as q

COCO, TRC = "COCO", "TRC"


def trc_chain() -> Chain:
    """The dev cast, with TRC minted to the exporter and COCO handed to the exporter."""
    chain = Chain()
    attested(chain, 1_000_000, 1)
    chain.ok(chain.cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 10_000})
    chain.ok(chain.cast.council1, "trade.transfer", {"token": COCO, "to": "exporter", "amount": 1_000})
    return chain


def hold(token: str, beneficiary: str, amount: int = 100, hold_id: str = "h1", **extra: Any) -> dict[str, Any]:
    return {
        "hold_id": hold_id,
        "token": token,
        "beneficiary": beneficiary,
        "amount": amount,
        "expires_height": 90,
        **extra,
    }


def test_a_hold_names_only_a_beneficiary_who_may_hold_the_token_and_an_admitted_notary() -> None:
    chain = trc_chain()
    cast = chain.cast
    assert chain.code(cast.exporter, "trade.hold.create", hold(TRC, "unverified")) == "NOT_ELIGIBLE"  # TRC: KYC only
    assert chain.code(cast.exporter, "trade.hold.create", hold(COCO, "applicant")) == "NOT_A_MEMBER"
    assert chain.code(cast.exporter, "trade.hold.create", hold(COCO, "importer", notary="applicant")) == "NOT_A_MEMBER"
    assert chain.ok(cast.exporter, "trade.hold.create", hold(COCO, "unverified", notary="service:bridge")) == {
        "hold_id": "h1"
    }
    assert chain.account("exporter", COCO)["held"] == 100


def test_a_locked_amount_cannot_be_held_and_the_refusal_names_the_lock() -> None:
    chain = Chain(section=trade_genesis.development_section(founders_locked_until_height=50))
    founder = chain.cast.council2
    assert chain.account("council-2", COCO)["locked"] > 0
    assert chain.code(founder, "trade.hold.create", hold(COCO, "exporter", amount=1)) == "LOCKED_UNTIL"


def test_the_refusal_names_what_stands_in_the_way_held_or_locked() -> None:
    """With 1,000 in all and 600 held, 1,000 is ``HELD`` (it is there, but held), not
    ``INSUFFICIENT_FUNDS``; with a lock, what is neither held nor locked is all that moves."""
    chain = trc_chain()
    cast = chain.cast
    chain.ok(cast.exporter, "trade.hold.create", hold(COCO, "importer", amount=600))
    move = {"token": COCO, "to": "importer", "amount": 1_000}
    assert chain.code(cast.exporter, "trade.transfer", move) == "HELD"
    assert chain.code(cast.exporter, "trade.transfer", {**move, "amount": 1_001}) == "INSUFFICIENT_FUNDS"
    locked = Chain(section=trade_genesis.development_section(founders_locked_until_height=50))
    founder = locked.cast.council2
    total = locked.total("council-2", COCO)
    assert locked.code(founder, "trade.transfer", {"token": COCO, "to": "exporter", "amount": total}) == "LOCKED_UNTIL"


def test_a_hold_does_not_pay_out_of_a_frozen_account_or_to_one_no_longer_eligible() -> None:
    chain = trc_chain()
    cast = chain.cast
    chain.ok(cast.exporter, "trade.hold.create", hold(TRC, "importer"))
    chain.ok(cast.regulator, "trade.trc.freeze", {"account": "exporter", "reason": "court order 9"})
    assert chain.code(cast.importer, "trade.hold.execute", {"hold_id": "h1"}) == "FROZEN"
    chain.ok(cast.regulator, "trade.trc.unfreeze", {"account": "exporter", "reason": "order lifted"})
    withdraw_kyc(chain, cast.importer)  # while the hold stands
    assert chain.code(cast.importer, "trade.hold.execute", {"hold_id": "h1"}) == "NOT_ELIGIBLE"
    assert chain.total("importer", TRC) == 0 and chain.account("exporter", TRC)["held"] == 100


def test_the_results_of_a_transfer_and_a_renewal_and_what_a_renewal_records() -> None:
    chain = trc_chain()
    cast = chain.cast
    assert chain.ok(cast.exporter, "trade.transfer", {"token": COCO, "to": "importer", "amount": 5}) == {
        "token": COCO,
        "amount": 5,
    }
    due = chain.time + 60_000
    chain.ok(
        cast.exporter, "trade.hold.create", {**hold(COCO, "importer"), "expires_height": None, "expires_time": due}
    )
    later = due + 60_000
    assert chain.ok(cast.exporter, "trade.hold.renew", {"hold_id": "h1", "expires_time": later}) == {"hold_id": "h1"}
    renewed = q.hold(chain.state, "h1")
    assert renewed is not None and (renewed.expires_height, renewed.expires_time) == (None, later)
    event = chain.events[-1]
    assert event.type == "HoldRenewed" and event.data["previous"] == {"expires_height": None, "expires_time": due}


def test_a_service_notary_releases_only_by_its_own_command() -> None:
    chain = trc_chain()
    chain.ok(chain.cast.exporter, "trade.hold.create", hold(COCO, "importer", notary="service:bridge"))
    tx = TxContext("tradetest", chain.height + 1, -1, chain.time + 1, "ab" * 32, chain.cast.exporter.key, "", {})
    by_command = replace(tx, kind="trade.hold.release", payload={"hold_id": "h1"}, origin="bridge")
    by_other = replace(by_command, origin="doc")
    overlay = DictState(base=chain.state)
    assert chain.domain.execute(overlay, {"party": chain.party}, by_other).code == "NOT_BENEFICIARY"  # type: ignore[union-attr]
    released = chain.domain.execute(overlay, {"party": chain.party}, by_command)
    assert released.result == {"hold_id": "h1", "status": "released_by_notary"}  # type: ignore[union-attr]
