"""TRC against attested reserves: threshold attestations, the mint bound, fail-closed staleness,
shortfall pausing, redemption with a Coco fee, compliance freezes; and a Hypothesis machine that
checks supply never exceeds the last valid reserve and that minting fails closed."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.trade.helpers import DAY, Chain
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import queries as q
from traco.services.trade import views

TRC = "TRC"
MAX_AGE = 2 * DAY


def attested(chain: Chain, reserve: int, seq: int, age: int = 0) -> None:
    payload = {"reserve": reserve, "as_of": chain.time - age, "seq": seq}
    assert chain.ok(chain.cast.custodian, "trade.trc.attest", payload)["valid"] is False
    assert chain.ok(chain.cast.bank_a, "trade.trc.attest", payload)["valid"] is True


def test_an_attestation_counts_only_when_the_threshold_signs_the_same_triple() -> None:
    chain = Chain()
    cast = chain.cast
    first = {"reserve": 10_000, "as_of": chain.time, "seq": 1}
    assert chain.code(cast.exporter, "trade.trc.attest", first) == "NOT_CUSTODIAN"
    assert chain.ok(cast.custodian, "trade.trc.attest", first) == {"seq": 1, "signers": ["custodian"], "valid": False}
    assert chain.code(cast.custodian, "trade.trc.attest", first) == "ALREADY_ATTESTED"
    other = {**first, "reserve": 99_999}
    assert chain.ok(cast.bank_a, "trade.trc.attest", other)["valid"] is False  # a different triple
    assert q.reserve(chain.state) is None
    assert chain.ok(cast.bank_b, "trade.trc.attest", first) == {
        "seq": 1,
        "signers": ["bank-b", "custodian"],
        "valid": True,
        "shortfall": 0,
    }
    assert q.reserve(chain.state)["reserve"] == 10_000  # type: ignore[index]
    assert not list(chain.state.scan("trc/att/")), "signatures at or below a valid seq are dropped"
    assert chain.code(cast.custodian, "trade.trc.attest", first) == "STALE_ATTESTATION"  # seq not above 1
    assert chain.code(cast.custodian, "trade.trc.attest", {**first, "seq": 2, "as_of": first["as_of"] - 1}) == (
        "STALE_ATTESTATION"
    )
    assert chain.code(cast.custodian, "trade.trc.attest", {**first, "seq": 2, "as_of": chain.time + 10_000}) == (
        "STALE_ATTESTATION"
    )
    assert chain.replay() == chain.snapshot()


def test_mint_is_bounded_by_the_reserve_and_fails_closed() -> None:
    chain = Chain()
    cast = chain.cast
    mint = {"to": "exporter", "amount": 6_000}
    assert chain.code(cast.custodian, "trade.trc.mint", mint) == "RESERVE_STALE"  # no attestation yet
    attested(chain, 10_000, 1)
    assert chain.code(cast.exporter, "trade.trc.mint", mint) == "NOT_CUSTODIAN"
    assert chain.code(cast.custodian, "trade.trc.mint", {**mint, "to": "unverified"}) == "KYC_REQUIRED"
    assert chain.code(cast.custodian, "trade.trc.mint", {**mint, "to": "applicant"}) == "NOT_A_MEMBER"
    chain.ok(cast.custodian, "trade.trc.mint", mint)
    assert chain.code(cast.bank_b, "trade.trc.mint", {**mint, "amount": 4_001}) == "RESERVE_EXCEEDED"
    as_of = q.reserve(chain.state)["as_of"]  # type: ignore[index]
    at_max_age = as_of + MAX_AGE - chain.time
    chain.ok(cast.bank_b, "trade.trc.mint", {**mint, "amount": 3_999}, dt=at_max_age)  # exactly the maximum age
    assert chain.supply(TRC) == 9_999
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "importer", "amount": 1}, dt=1) == "RESERVE_STALE"


def test_a_shortfall_pauses_minting_until_cover_returns_redemptions_go_on() -> None:
    chain = Chain()
    cast = chain.cast
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 8_000})
    attested(chain, 5_000, 2)  # the custodian lost funds
    assert q.reserve(chain.state)["shortfall"] == 3_000  # type: ignore[index]
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1}) == "UNDER_RESERVED"
    chain.ok(cast.council1, "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 100_000})
    redemption = chain.ok(cast.exporter, "trade.trc.redeem", {"amount": 1_000, "custodian": "custodian"})
    assert redemption["fee"] == 10_000
    assert chain.supply(TRC) == 7_000
    attested(chain, 9_000, 3)  # cover: 7,000 supply + 1,000 pending <= 9,000
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1_001}) == "RESERVE_EXCEEDED"
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1_000})
    assert chain.replay() == chain.snapshot()


def test_redemption_burns_charges_coco_and_waits_for_the_custodian() -> None:
    chain = Chain()
    cast = chain.cast
    attested(chain, 2_000_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1_500_000})
    redeem = {"amount": 1_000_000, "custodian": "bank-a"}
    assert chain.code(cast.exporter, "trade.trc.redeem", redeem) == "INSUFFICIENT_FUNDS"  # the Coco fee
    chain.ok(cast.council1, "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 60_000})
    assert chain.code(cast.exporter, "trade.trc.redeem", {**redeem, "custodian": "exporter"}) == "NOT_CUSTODIAN"
    rid = chain.ok(cast.exporter, "trade.trc.redeem", redeem)["redemption_id"]
    assert q.redemption(chain.state, rid)["status"] == "pending"  # type: ignore[index]
    assert (chain.total("exporter", TRC), chain.total("exporter", "COCO"), chain.total("bank-a", "COCO")) == (
        500_000,
        10_000,
        50_000,
    )
    assert q.pending_redemptions(chain.state) == 1_000_000
    # supply 500,000 + pending 1,000,000 = 1,500,000 of 2,000,000: room 500,000
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 500_001}) == "RESERVE_EXCEEDED"
    assert chain.code(cast.custodian, "trade.trc.redeemed", {"redemption_id": rid}) == "NOT_CUSTODIAN"
    paid = chain.run(cast.bank_a, "trade.trc.redeemed", {"redemption_id": rid})
    assert paid.accepted, paid.code
    record = q.redemption(chain.state, rid)  # who paid and when, on the record
    assert record is not None and record["status"] == "paid" and record["amount"] == 1_000_000
    assert record["paid"] == {"by": "bank-a", "tx_id": paid.tx_id, "height": chain.height, "time": chain.time}
    assert chain.code(cast.bank_a, "trade.trc.redeemed", {"redemption_id": rid}) == "REDEMPTION_CLOSED"
    assert q.pending_redemptions(chain.state) == 0
    # the fiat left the reserve after its attestation: it still counts against it
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 500_001}) == "RESERVE_EXCEEDED"
    attested(chain, 1_000_000, 2)  # the new attestation reflects the payment
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 500_000})
    assert chain.code(cast.bank_a, "trade.trc.redeemed", {"redemption_id": "ab" * 32}) == "UNKNOWN_REDEMPTION"
    assert chain.replay() == chain.snapshot()


def test_trc_reaches_kyc_members_only_and_compliance_freezes_with_a_reason() -> None:
    chain = Chain()
    cast = chain.cast
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 5_000})
    move = {"token": TRC, "to": "unverified", "amount": 1}
    assert chain.code(cast.exporter, "trade.transfer", move) == "NOT_ELIGIBLE"
    freeze = {"account": "exporter", "reason": "court order 2026/17"}
    assert chain.code(cast.carrier, "trade.trc.freeze", freeze) == "NOT_PERMITTED"  # party's role table
    assert chain.code(cast.exporter, "trade.trc.freeze", freeze) == "NOT_COMPLIANCE"  # trade.* but not the role
    chain.ok(cast.regulator, "trade.trc.freeze", freeze)
    assert q.frozen(chain.state, TRC, "exporter")["reason"] == "court order 2026/17"  # type: ignore[index]
    assert chain.code(cast.regulator, "trade.trc.freeze", freeze) == "ALREADY_FROZEN"
    assert chain.code(cast.exporter, "trade.transfer", {**move, "to": "importer"}) == "FROZEN"
    hold = {"hold_id": "f", "token": TRC, "beneficiary": "importer", "amount": 1, "expires_height": 99}
    assert chain.code(cast.exporter, "trade.hold.create", hold) == "FROZEN"
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1}) == "FROZEN"
    assert chain.code(cast.exporter, "trade.trc.redeem", {"amount": 1, "custodian": "custodian"}) == "FROZEN"
    chain.ok(cast.regulator, "trade.trc.unfreeze", {**freeze, "reason": "order lifted"})
    assert chain.code(cast.regulator, "trade.trc.unfreeze", freeze) == "NOT_FROZEN"
    chain.ok(cast.exporter, "trade.transfer", {**move, "to": "importer"})
    assert chain.replay() == chain.snapshot()


class TrcMachine(RuleBasedStateMachine):
    """Attest, mint, redeem, confirm and let time pass; a model predicts every mint's fate."""

    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        self.chain.ok(self.chain.cast.council1, "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 10**9})
        self.seq = 0
        self.last: dict[str, int] | None = None
        self.supply = 0
        self.pending: dict[str, int] = {}
        self.paid_after: list[tuple[int, int]] = []

    @rule(reserve=st.integers(0, 50_000), age=st.integers(0, 3 * DAY))
    def attest(self, reserve: int, age: int) -> None:
        self.seq += 1
        as_of = max(self.chain.time + self.chain.tick - age, self.last["as_of"] if self.last else 0)
        payload = {"reserve": reserve, "as_of": as_of, "seq": self.seq}
        self.chain.ok(self.chain.cast.bank_b, "trade.trc.attest", payload)
        self.chain.ok(self.chain.cast.custodian, "trade.trc.attest", payload)
        pending = sum(self.pending.values())
        self.paid_after = [(t, a) for t, a in self.paid_after if t > as_of]
        paid = sum(a for _, a in self.paid_after)  # fiat the attested reserve still counted
        self.last = {"reserve": reserve, "as_of": as_of, "shortfall": max(0, self.supply + pending + paid - reserve)}

    @rule(amount=st.integers(1, 30_000))
    def mint(self, amount: int) -> None:
        time = self.chain.time + self.chain.tick
        receipt = self.chain.run(self.chain.cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": amount})
        expected = (
            self.last is not None
            and time - self.last["as_of"] <= 2 * DAY
            and self.last["shortfall"] == 0
            and self.supply + amount + sum(self.pending.values()) + sum(a for _, a in self.paid_after)
            <= self.last["reserve"]
        )
        assert receipt.accepted is expected, receipt.code
        if receipt.accepted:
            self.supply += amount
            assert self.last is not None and self.supply <= self.last["reserve"]

    @rule(amount=st.integers(1, 20_000))
    def redeem(self, amount: int) -> None:
        receipt = self.chain.run(
            self.chain.cast.exporter, "trade.trc.redeem", {"amount": amount, "custodian": "bank-a"}
        )
        assert receipt.accepted is (amount <= self.supply), receipt.code
        if receipt.accepted:
            self.supply -= amount
            self.pending[receipt.result["redemption_id"]] = amount

    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        if not self.pending:
            return
        rid = data.draw(st.sampled_from(sorted(self.pending)))
        self.chain.ok(self.chain.cast.bank_a, "trade.trc.redeemed", {"redemption_id": rid})
        self.paid_after.append((self.chain.time, self.pending.pop(rid)))

    @rule(hours=st.integers(1, 30))
    def wait(self, hours: int) -> None:
        self.chain.block(dt=hours * 3_600_000)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.chain.supply(TRC) == self.supply
        assert q.pending_redemptions(self.chain.state) == sum(self.pending.values())

    @invariant()
    def the_ledger_keeps_its_promises(self) -> None:
        assert views.invariants(self.chain.state) == []

    def teardown(self) -> None:
        assert self.chain.replay() == self.chain.snapshot()


TestTrcMachine = TrcMachine.TestCase
TestTrcMachine.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)


def test_kyc_that_lapses_stops_trc_reaching_the_member() -> None:
    from tests.trade.helpers import T0, Cast

    cast = Cast()
    cast.add("lapsing", ("importer",), kyc_expires=T0 + 10_000)
    chain = Chain(cast=cast)
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "lapsing", "amount": 10})  # before its KYC expires
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 10})
    chain.block(dt=T0 + 10_000 - chain.time - chain.tick)  # the next transaction lands exactly at expiry
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "lapsing", "amount": 1}) == "KYC_REQUIRED"
    assert chain.code(cast.exporter, "trade.transfer", {"token": TRC, "to": "lapsing", "amount": 1}) == "NOT_ELIGIBLE"
    assert chain.total("lapsing", TRC) == 10  # what it holds stays its own


def redeemed_and_paid(chain: Chain) -> tuple[int, int]:
    """10,000 TRC minted against 10,000 attested, then 4,000 redeemed and paid out by the
    custodian: the block time before the payment, and the payment's own."""
    cast = chain.cast
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 10_000})
    chain.ok(cast.council1, "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 10_000})
    rid = chain.ok(cast.exporter, "trade.trc.redeem", {"amount": 4_000, "custodian": "custodian"})["redemption_id"]
    before = chain.time
    chain.ok(cast.custodian, "trade.trc.redeemed", {"redemption_id": rid})
    return before, chain.time


def test_fiat_paid_after_an_attestations_as_of_counts_as_gone() -> None:
    chain = Chain()
    cast = chain.cast
    as_of, _ = redeemed_and_paid(chain)  # the custodian's statement is as of before it pays
    # 6,000 TRC remain; the statement still counts the 4,000 paid after it: 6,000 + 4,000 > 9,000
    statement = {"reserve": 9_000, "as_of": as_of, "seq": 2}
    chain.ok(cast.custodian, "trade.trc.attest", statement)
    assert chain.ok(cast.bank_a, "trade.trc.attest", statement)["shortfall"] == 1_000
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1}) == "UNDER_RESERVED"
    assert views.invariants(chain.state) == []


def test_a_shortfall_of_one_pauses_minting() -> None:
    chain = Chain()
    cast = chain.cast
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 8_000})
    attested(chain, 7_999, 2)
    assert q.reserve(chain.state)["shortfall"] == 1  # type: ignore[index]
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1}) == "UNDER_RESERVED"


def test_fiat_paid_at_an_attestations_as_of_is_in_the_statement() -> None:
    """A statement as of the very time of a payment reflects it: only what is paid after its
    ``as_of`` still counts against it."""
    chain = Chain()
    cast = chain.cast
    _, paid_at = redeemed_and_paid(chain)
    statement = {"reserve": 6_000, "as_of": paid_at, "seq": 2}
    chain.ok(cast.custodian, "trade.trc.attest", statement)
    assert chain.ok(cast.bank_a, "trade.trc.attest", statement)["shortfall"] == 0
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1}) == "RESERVE_EXCEEDED"
    assert views.invariants(chain.state) == []


def test_a_redemption_with_no_fee_moves_no_coco() -> None:
    """Where the fee schedule charges nothing, redeeming needs no Coco and moves none."""
    section = trade_genesis.development_section()
    section["trc"] = {**section["trc"], "redemption_fees": [{"min_amount": 0, "fee": 0}]}
    chain = Chain(section=section)
    cast = chain.cast
    attested(chain, 10_000, 1)
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 5_000})
    assert chain.total("exporter", "COCO") == 0
    before = len(chain.events)
    assert chain.ok(cast.exporter, "trade.trc.redeem", {"amount": 2_000, "custodian": "custodian"})["fee"] == 0
    assert chain.supply(TRC) == 3_000
    assert not [e for e in chain.events[before:] if e.data.get("token") == "COCO"]


def test_fiat_paid_after_an_as_of_keeps_counting_through_the_next_attestation() -> None:
    """A payment after the last statement's ``as_of`` stays counted against every later
    statement dated before it, and stops counting at the first dated at or after it (found by
    mutmut: an attestation that forgot the payments carried from the previous one kept every
    example of the machine accepting the same mints)."""
    chain = Chain()
    cast = chain.cast
    before, paid_at = redeemed_and_paid(chain)  # 6,000 TRC remain; 4,000 paid out at paid_at
    statement = {"reserve": 12_000, "as_of": before, "seq": 2}  # still counts the 4,000 paid after it
    chain.ok(cast.custodian, "trade.trc.attest", statement)
    assert chain.ok(cast.bank_a, "trade.trc.attest", statement)["shortfall"] == 0
    assert q.reserve(chain.state)["paid_after"] == [{"time": paid_at, "amount": 4_000}]  # type: ignore[index]
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 2_001}) == "RESERVE_EXCEEDED"
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 2_000})  # 12,000 - 4,000 - 6,000
    chain.block()
    statement = {"reserve": 9_000, "as_of": paid_at, "seq": 3}  # dated at the payment: it reflects it
    chain.ok(cast.custodian, "trade.trc.attest", statement)
    assert chain.ok(cast.bank_a, "trade.trc.attest", statement)["shortfall"] == 0
    assert q.reserve(chain.state)["paid_after"] == []  # type: ignore[index]
    assert chain.code(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1_001}) == "RESERVE_EXCEEDED"
    chain.ok(cast.custodian, "trade.trc.mint", {"to": "exporter", "amount": 1_000})  # 9,000 - 8,000
    assert views.invariants(chain.state) == []
    assert chain.replay() == chain.snapshot()
