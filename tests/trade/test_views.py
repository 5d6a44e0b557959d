"""The API-shaped reads and the invariant checks: what a user sees, and that a broken promise is
named (the checks are only worth running in the machines if they can fail)."""

from __future__ import annotations

from tests.trade.helpers import DAY, Chain
from traco.core.domain import encode
from traco.services.trade import queries as q
from traco.services.trade import views


def minted(chain: Chain) -> None:
    for custodian in (chain.cast.custodian, chain.cast.bank_a):
        chain.ok(custodian, "trade.trc.attest", {"reserve": 10_000, "as_of": T_ATTEST, "seq": 1})
    chain.ok(chain.cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 6_000})


T_ATTEST = 1_700_000_000_500


def test_account_and_reserve_views() -> None:
    chain = Chain()
    minted(chain)
    chain.ok(
        chain.cast.exporter,
        "trade.hold.create",
        {"hold_id": "h", "token": "TRC", "beneficiary": "importer", "amount": 1_000, "expires_height": 50},
    )
    view = views.account_view(chain.state, "exporter", chain.height)
    assert view["balances"] == {"TRC": {"total": 6_000, "held": 1_000, "locked": 0, "available": 5_000, "frozen": None}}
    reserve = views.reserve_view(chain.state, chain.time)
    assert reserve is not None
    assert (reserve["supply"], reserve["under_reserved"], reserve["stale"]) == (6_000, False, False)
    assert views.reserve_view(chain.state, T_ATTEST + 2 * DAY + 1)["stale"] is True  # type: ignore[index]
    lost = {"reserve": 5_000, "as_of": chain.time, "seq": 2}
    for custodian in (chain.cast.custodian, chain.cast.bank_b):
        chain.ok(custodian, "trade.trc.attest", lost)
    assert views.reserve_view(chain.state, chain.time)["under_reserved"] is True  # type: ignore[index]
    assert views.hold_view(chain.state, "h")["status"] == "ordered"  # type: ignore[index]
    assert views.invariants(chain.state) == []


def test_coco_view_shows_the_schedule_beside_what_was_paid() -> None:
    chain = Chain()
    params = q.params(chain.state, "coco")
    assert params is not None
    chain.block(dt=params["start_time"] + 2 * params["epoch_ms"] - chain.time)
    view = views.coco_view(chain.state, 3)
    assert view is not None
    assert [e["paid"] is not None for e in view["schedule"]] == [True, True, False]
    assert view["circulating"] + view["pool"] == view["total"]


def test_invariants_name_a_broken_state() -> None:
    chain = Chain()
    minted(chain)
    assert views.invariants(chain.state) == []
    chain.state.apply({q.balance_key("TRC", "importer"): encode({"total": 5_000, "held": 0})})
    problems = views.invariants(chain.state)
    assert any("TRC: accounts hold 11000, supply is 6000" in p for p in problems)
    chain.state.apply({q.POOL: encode({"amount": 1})})
    assert any(p.startswith("Coco:") for p in views.invariants(chain.state))
    chain.state.apply({q.token_key("TRC"): encode({**q.token(chain.state, "TRC"), "supply": 11_000})})  # type: ignore[dict-item]
    assert any(p.startswith("TRC: 11000 owed") for p in views.invariants(chain.state))
