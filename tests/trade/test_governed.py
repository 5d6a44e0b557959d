"""What the council governs in trade (``services/trade/governed.py``): TRC's maximum reserve age
and compliance role, asset classes added by vote, and corrective transfers carried out once by
the ``correction`` clause. The council's decisions are written into the party view with party's
own ``mutate`` (``ServiceParamSet``, what a passed ``set_service_param`` vote emits; the vote
itself is party's test)."""

from __future__ import annotations

from typing import Any

from tests.trade.helpers import DAY, Chain
from tests.trade.test_equity import TERMS
from tests.trade.test_trc import attested
from traco.core.domain import Event
from traco.services.party.events import mutate as party_mutate
from traco.services.trade import queries as q


def council_sets(chain: Chain, key: str, value: dict[str, Any] | None) -> None:
    data = {"service": "trade", "key": key, "value": value, "height": chain.height, "index": 0, "time": chain.time}
    chain.party.apply(party_mutate(chain.party, Event("ServiceParamSet", "service:trade", data)))


def test_the_council_shortens_the_reserve_age_and_moves_the_compliance_role() -> None:
    chain = Chain()
    cast = chain.cast
    attested(chain, 10_000, 1)
    mint = {"to": "exporter", "amount": 100}
    chain.ok(cast.custodian, "trade.trc.mint", mint, dt=DAY)  # within the genesis's two days
    council_sets(chain, "trc", {"max_reserve_age_ms": DAY // 2})
    assert chain.code(cast.custodian, "trade.trc.mint", mint) == "RESERVE_STALE"
    council_sets(chain, "trc", {"max_reserve_age_ms": -5})  # not a usable value: ignored, genesis stands
    chain.ok(cast.custodian, "trade.trc.mint", mint)
    freeze = {"account": "exporter", "reason": "court order 17"}
    council_sets(chain, "trc", {"compliance_role": "bank"})
    assert chain.code(cast.regulator, "trade.trc.freeze", freeze) == "NOT_COMPLIANCE"
    chain.ok(cast.bank_a, "trade.trc.freeze", freeze)
    assert chain.replay() == chain.snapshot()


def test_an_equity_token_may_use_an_asset_class_the_council_added() -> None:
    chain = Chain()
    cast = chain.cast
    terms = {**TERMS, "asset_class": "hk_equity"}
    assert chain.code(cast.custodian, "trade.equity.define", terms) == "INVALID_PAYLOAD"  # no such class yet
    council_sets(chain, "asset_class/hk_equity", {"mint": "none", "burn": "none"})
    assert chain.code(cast.custodian, "trade.equity.define", terms) == "INVALID_PAYLOAD"  # not an equity class
    equity = {"mint": "deposit", "burn": "exercise", "eligibility": "qualified", "decimals": 0}
    council_sets(chain, "asset_class/hk_equity", equity)
    assert chain.ok(cast.custodian, "trade.equity.define", terms)["asset_class"] == "hk_equity"
    token = q.token(chain.state, "ECC")
    adopted = q.asset_class(chain.state, "hk_equity")
    assert token is not None and token["asset_class"] == "hk_equity"
    assert adopted is not None and adopted["eligibility"] == "qualified"
    council_sets(chain, "asset_class/hk_equity", None)  # the vote cannot change a token's class afterwards
    chain.ok(cast.custodian, "trade.equity.issue", {"token": "ECC", "to": "investor", "amount": 3, "shares": 2})
    assert chain.replay() == chain.snapshot()


def test_a_corrective_transfer_is_carried_out_once_even_from_a_frozen_account() -> None:
    chain = Chain()
    cast = chain.cast
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 500})
    chain.ok(cast.regulator, "trade.trc.freeze", {"account": "exporter", "reason": "misdirected payment"})
    correction = {"token": "TRC", "from": "exporter", "to": "importer", "amount": 200, "reason": "return it"}
    council_sets(chain, "correction/c-1", correction)
    council_sets(chain, "correction/c-2", {**correction, "amount": 10_000})  # more than there is
    result = chain.block()
    fired = [r for r in result.receipts if r.kind == "trade.clause.correction"]
    assert [r.result["subject"] for r in fired] == ["c-1", "c-2"]
    assert (chain.total("exporter", "TRC"), chain.total("importer", "TRC")) == (300, 200)
    assert q.read(chain.state, "correction/c-2") == {
        "applied": False,
        "problem": "exporter has 300 TRC not held; 10000 to correct",
        "height": chain.height,
        "time": chain.time,
    }
    again = chain.block()
    assert not [r for r in again.receipts if r.kind == "trade.clause.correction"]  # once only
    assert chain.replay() == chain.snapshot()
