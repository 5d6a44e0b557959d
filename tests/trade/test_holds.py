"""The hold primitive (``traco.core.holds``): each rule, the expiry boundary, and a Hypothesis
state machine that checks it against an obviously-right model of who may do what, when."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from traco.core import holds
from traco.core.domain import Rejected
from traco.core.holds import Hold, HoldStatus


def make(**overrides: object) -> Hold | Rejected:
    args: dict[str, object] = {
        "hold_id": "h1",
        "owner": "alice",
        "beneficiary": "bob",
        "notary": None,
        "asset": "TRC",
        "amount": 100,
        "expires_height": 10,
        "expires_time": None,
        "height": 5,
        "time": 1_000,
        "available": 100,
        "id_used": False,
    }
    args.update(overrides)
    return holds.create(**args)  # type: ignore[arg-type]


def ok(value: Hold | Rejected) -> Hold:
    assert isinstance(value, Hold), value
    return value


def code(value: Hold | Rejected) -> str:
    assert isinstance(value, Rejected), value
    return value.code


def test_create_checks_id_amount_parties_expiry_funds() -> None:
    assert ok(make()).status is HoldStatus.ORDERED
    assert code(make(id_used=True)) == "HOLD_EXISTS"
    assert code(make(amount=0)) == "INVALID_AMOUNT"
    assert code(make(beneficiary="alice")) == "SELF_HOLD"
    assert code(make(notary="alice")) == "SELF_HOLD"
    assert code(make(expires_height=None)) == "INVALID_EXPIRY"
    assert code(make(expires_height=5)) == "INVALID_EXPIRY"  # not after the current height
    assert code(make(expires_height=None, expires_time=1_000)) == "INVALID_EXPIRY"
    assert ok(make(expires_height=None, expires_time=1_001)).expires_time == 1_001
    assert code(make(available=99)) == "INSUFFICIENT_FUNDS"


def test_execute_in_full_or_in_part_by_the_decider_only() -> None:
    hold = ok(make())
    assert code(holds.execute(hold, "mallory", None, 6, 1)) == "NOT_BENEFICIARY"
    assert code(holds.execute(hold, "alice", None, 6, 1)) == "NOT_BENEFICIARY"
    full = ok(holds.execute(hold, "bob", None, 6, 1))
    assert (full.status, full.executed, full.returned) == (HoldStatus.EXECUTED, 100, 0)
    part = ok(holds.execute(hold, "bob", 30, 6, 1))
    assert (part.executed, part.returned, part.closed_height) == (30, 70, 6)
    assert code(holds.execute(hold, "bob", 0, 6, 1)) == "INVALID_AMOUNT"
    assert code(holds.execute(hold, "bob", 101, 6, 1)) == "INVALID_AMOUNT"
    assert code(holds.execute(full, "bob", None, 7, 1)) == "HOLD_CLOSED"


def test_a_notary_decides_instead_of_the_beneficiary_who_may_still_refuse() -> None:
    hold = ok(make(notary="service:trade"))
    assert code(holds.execute(hold, "bob", None, 6, 1)) == "NOT_BENEFICIARY"
    assert ok(holds.execute(hold, "service:trade", None, 6, 1)).executed == 100
    assert ok(holds.release(hold, "bob", 6, 1)).status is HoldStatus.RELEASED_BY_BENEFICIARY
    assert ok(holds.release(hold, "service:trade", 6, 1)).status is HoldStatus.RELEASED_BY_NOTARY
    assert code(holds.release(hold, "alice", 6, 1)) == "NOT_BENEFICIARY"


def test_expiry_is_exact_at_the_boundary_by_height_and_by_time() -> None:
    hold = ok(make(expires_height=10, expires_time=5_000))
    assert not holds.is_due(hold, 9, 4_999)
    assert holds.is_due(hold, 10, 0)
    assert holds.is_due(hold, 3, 5_000)
    assert ok(holds.execute(hold, "bob", None, 9, 4_999)).executed == 100
    assert code(holds.execute(hold, "bob", None, 10, 4_999)) == "HOLD_EXPIRED"
    assert code(holds.execute(hold, "bob", None, 9, 5_000)) == "HOLD_EXPIRED"
    assert code(holds.release(hold, "bob", 10, 0)) == "HOLD_EXPIRED"
    assert code(holds.renew(hold, "alice", 20, 9_000, 10, 0)) == "HOLD_EXPIRED"
    expired = holds.expire(hold, 10, "service:trade")
    assert (expired.status, expired.returned, expired.executed) == (HoldStatus.EXPIRED, 100, 0)
    assert not holds.is_due(expired, 99, 99_999)


def test_renew_only_by_the_owner_only_later() -> None:
    hold = ok(make(expires_height=10, expires_time=5_000))
    assert code(holds.renew(hold, "bob", 20, 6_000, 6, 1)) == "NOT_OWNER"
    assert ok(holds.renew(hold, "alice", 20, 5_000, 6, 1)).expires_height == 20
    assert code(holds.renew(hold, "alice", 10, 5_000, 6, 1)) == "INVALID_EXPIRY"  # nothing later
    assert code(holds.renew(hold, "alice", 9, 9_000, 6, 1)) == "INVALID_EXPIRY"  # one earlier
    assert code(holds.renew(hold, "alice", None, 9_000, 6, 1)) == "INVALID_EXPIRY"  # dropped
    height_only = ok(make())
    assert code(holds.renew(height_only, "alice", 20, 9_000, 6, 1)) == "INVALID_EXPIRY"  # added


def test_json_round_trip() -> None:
    hold = ok(make(notary="n", expires_time=9_000))
    for value in (hold, holds.expire(hold, 10, "service:trade"), ok(holds.execute(hold, "n", 7, 6, 1))):
        assert Hold.from_json(value.to_json()) == value


@given(
    eh=st.one_of(st.none(), st.integers(1, 50)),
    et=st.one_of(st.none(), st.integers(1, 50)),
    h=st.integers(0, 60),
    t=st.integers(0, 60),
)
def test_is_due_is_the_first_block_at_or_after_either_bound(eh: int | None, et: int | None, h: int, t: int) -> None:
    hold = replace(ok(make(expires_height=99)), expires_height=eh, expires_time=et)
    expected = (eh is not None and h >= eh) or (et is not None and t >= et)
    assert holds.is_due(hold, h, t) is expected


PEOPLE = ("alice", "bob", "notary", "mallory")


class HoldMachine(RuleBasedStateMachine):
    """One hold driven by anyone at advancing heights; a model says what must be allowed."""

    def __init__(self) -> None:
        super().__init__()
        self.height = 1
        self.time = 100
        self.hold = ok(make(notary="notary", expires_height=8, expires_time=160, height=1, time=100))
        self.model_open = True

    def _live(self) -> bool:
        return (
            self.model_open
            and self.height < (self.hold.expires_height or 10**9)
            and self.time < (self.hold.expires_time or 10**9)
        )

    @rule(dh=st.integers(0, 2), dt=st.integers(0, 15))
    def advance(self, dh: int, dt: int) -> None:
        self.height += dh
        self.time += dt
        if holds.is_due(self.hold, self.height, self.time):
            assert self.model_open and not self._live()
            self.hold = holds.expire(self.hold, self.height, "service:trade")
            self.model_open = False

    @rule(by=st.sampled_from(PEOPLE), amount=st.integers(-1, 120))
    def execute(self, by: str, amount: int) -> None:
        result = holds.execute(self.hold, by, amount, self.height, self.time)
        allowed = self._live() and by == "notary" and 0 < amount <= 100
        assert isinstance(result, Hold) is allowed
        if isinstance(result, Hold):
            assert result.executed + result.returned == result.amount
            self.hold, self.model_open = result, False

    @rule(by=st.sampled_from(PEOPLE))
    def release(self, by: str) -> None:
        result = holds.release(self.hold, by, self.height, self.time)
        assert isinstance(result, Hold) is (self._live() and by in ("bob", "notary"))
        if isinstance(result, Hold):
            assert result.returned == result.amount
            self.hold, self.model_open = result, False

    @rule(by=st.sampled_from(PEOPLE), dh=st.integers(-2, 3), dt=st.integers(-5, 20))
    def renew(self, by: str, dh: int, dt: int) -> None:
        old = self.hold
        assert old.expires_height is not None and old.expires_time is not None
        result = holds.renew(old, by, old.expires_height + dh, old.expires_time + dt, self.height, self.time)
        allowed = self._live() and by == "alice" and dh >= 0 and dt >= 0 and (dh > 0 or dt > 0)
        assert isinstance(result, Hold) is allowed
        if isinstance(result, Hold):
            self.hold = result

    @invariant()
    def closed_exactly_when_the_model_says(self) -> None:
        assert self.hold.is_open is self.model_open
        if not self.hold.is_open:
            assert self.hold.executed + self.hold.returned == self.hold.amount


TestHoldMachine = HoldMachine.TestCase
TestHoldMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@pytest.mark.parametrize("status", list(HoldStatus))
def test_closed_holds_refuse_everything(status: HoldStatus) -> None:
    if status is HoldStatus.ORDERED:
        return
    hold = replace(ok(make(notary="n")), status=status)
    assert code(holds.execute(hold, "n", None, 6, 1)) == "HOLD_CLOSED"
    assert code(holds.release(hold, "bob", 6, 1)) == "HOLD_CLOSED"
    assert code(holds.renew(hold, "alice", 20, None, 6, 1)) == "HOLD_CLOSED"


def test_every_closing_records_when_and_by_whom_and_creation_records_when() -> None:
    """What a reader of the state (an auditor, the API) is told about a hold's life; these
    fields are state, so a replica that records them otherwise diverges."""
    hold = ok(make(notary="notary", height=5, time=1_000))
    assert (hold.created_height, hold.created_time) == (5, 1_000)
    executed = ok(holds.execute(hold, "notary", 40, 7, 1_500))
    assert (executed.closed_height, executed.closed_by, executed.executed, executed.returned) == (7, "notary", 40, 60)
    refused = ok(holds.release(hold, "bob", 8, 1_600))
    assert (refused.status, refused.closed_height, refused.closed_by) == (HoldStatus.RELEASED_BY_BENEFICIARY, 8, "bob")
    overruled = ok(holds.release(hold, "notary", 9, 1_700))
    assert (overruled.status, overruled.closed_height, overruled.closed_by) == (
        HoldStatus.RELEASED_BY_NOTARY,
        9,
        "notary",
    )
    expired = holds.expire(hold, 10, "service:trade")
    assert (expired.closed_height, expired.closed_by, expired.returned) == (10, "service:trade", 100)


def test_a_renewal_moves_a_time_only_expiry_and_keeps_both_bounds_it_is_given() -> None:
    time_only = ok(make(expires_height=None, expires_time=5_000))
    renewed = ok(holds.renew(time_only, "alice", None, 8_000, 6, 1_000))
    assert (renewed.expires_height, renewed.expires_time) == (None, 8_000)
    both = ok(make(expires_height=10, expires_time=5_000))
    moved = ok(holds.renew(both, "alice", 12, 6_000, 6, 1_000))
    assert (moved.expires_height, moved.expires_time) == (12, 6_000)
