"""Unit tests of the consensus rules (Algorithm 1 of "The latest gossip on BFT consensus").

Messages are delivered by hand so each test pins one rule: the happy path, locking, the
valid-value rule, the f+1 round skip, timeouts, proposer checks, deduplication, evidence,
next-height buffering, persistence and the weighted proposer rotation.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.services.consensus import machine
from traco.services.consensus.machine import (
    MAX_PENDING_PER_SENDER,
    MAX_ROUNDS_AHEAD,
    Broadcast,
    Decision,
    Evidence,
    Input,
    Output,
    Proposal,
    ProposalIn,
    Relay,
    RequestValue,
    Resend,
    ScheduleTimeout,
    StartHeight,
    State,
    TimeoutIn,
    TimingConfig,
    ValidatorInfo,
    ValidatorSet,
    ValueReady,
    Vote,
    VoteIn,
    apply,
    initial_state,
    message_from_dict,
    verify_commit,
)
from traco.services.consensus.machine_state import from_dict, to_dict
from traco.services.consensus.votes import VOTE_KINDS, VoteKind

TIMING = TimingConfig(propose_ms=1000, prevote_ms=500, precommit_ms=400, delta_ms=250)
FOUR = ValidatorSet(tuple(ValidatorInfo(f"v{i}", 1) for i in range(4)))
H = 1


def sig(author: str) -> bytes:
    return f"sig:{author}".encode()


def proposer(round: int, height: int = H, vs: ValidatorSet = FOUR) -> str:
    return vs.proposer(height, round)


def not_proposer(round: int, height: int = H, vs: ValidatorSet = FOUR) -> str:
    """A validator that does not propose ``round`` nor the next one (so it never proposes
    during a two-round test)."""
    busy = {vs.proposer(height, round), vs.proposer(height, round + 1)}
    return next(v.address for v in vs.validators if v.address not in busy)


def proposal_in(round: int, value: str, valid_round: int = -1, *, valid: bool = True, height: int = H) -> ProposalIn:
    p = Proposal(height, round, value, valid_round, proposer(round, height), sig("p"))
    return ProposalIn(p, valid)


def vote_in(kind: VoteKind, round: int, value: str | None, who: str, height: int = H) -> VoteIn:
    return VoteIn(Vote(kind, height, round, value, who, sig(who)))


def others(me: str, vs: ValidatorSet = FOUR) -> list[str]:
    return [v.address for v in vs.validators if v.address != me]


def started(me: str, vs: ValidatorSet = FOUR, height: int = H) -> State:
    state, _ = apply(initial_state(me, TIMING), StartHeight(height, vs))
    return state


def test_a_machine_has_started_once_it_has_its_first_height() -> None:
    fresh = initial_state("v0", TIMING)
    assert not machine.started(fresh) and machine.height_of(fresh) == 0
    assert machine.started(started("v0")) and machine.height_of(started("v0")) == H


def feed(state: State, inputs: Iterable[Input]) -> tuple[State, list[Output]]:
    outputs: list[Output] = []
    for item in inputs:
        state, out = apply(state, item)
        outputs += out
    return state, outputs


def sent(outputs: Sequence[Output]) -> list[Proposal | Vote]:
    return [o.message for o in outputs if isinstance(o, Broadcast)]


def votes_sent(outputs: Sequence[Output], kind: VoteKind) -> list[str | None]:
    return [m.value_id for m in sent(outputs) if isinstance(m, Vote) and m.kind == kind]


def signed_inputs(outputs: Sequence[Output]) -> list[Input]:
    """What the driver does with a Broadcast: sign it and deliver it (also to itself)."""
    items: list[Input] = []
    for m in sent(outputs):
        if isinstance(m, Proposal):
            items.append(ProposalIn(replace(m, signature=sig(m.proposer)), True))
        else:
            items.append(VoteIn(replace(m, signature=sig(m.validator))))
    return items


def loopback(state: State, outputs: Sequence[Output]) -> tuple[State, list[Output]]:
    return feed(state, signed_inputs(outputs))


def polka(state: State, round: int, value: str | None, voters: Iterable[str]) -> tuple[State, list[Output]]:
    return feed(state, [vote_in("prevote", round, value, v) for v in voters])


# ---------------------------------------------------------------------------------------------
# Validator set: quorum math and proposer rotation


@pytest.mark.parametrize(
    ("powers", "quorum", "one_third_plus"),
    [
        ([1, 1, 1, 1], 3, 2),
        ([1, 1, 1], 3, 2),
        ([1] * 7, 5, 3),
        ([2, 2, 1, 1], 5, 3),  # total 6: exactly 2/3 (4) is not enough
        ([1, 2, 3, 4], 7, 4),  # total 10
        ([50, 30, 20], 67, 34),
        ([1], 1, 1),
    ],
)
def test_quorum_is_strictly_more_than_two_thirds_of_the_power(
    powers: list[int], quorum: int, one_third_plus: int
) -> None:
    vs = ValidatorSet(tuple(ValidatorInfo(f"v{i}", p) for i, p in enumerate(powers)))
    assert vs.total_power == sum(powers)
    assert vs.quorum == quorum
    assert vs.one_third_plus == one_third_plus
    assert 3 * vs.quorum > 2 * vs.total_power >= 3 * (vs.quorum - 1)
    assert 3 * vs.one_third_plus > vs.total_power >= 3 * (vs.one_third_plus - 1)
    assert vs.power_of("v0") == powers[0]
    assert vs.power_of("stranger") == 0


def test_validator_set_rejects_nonsense_and_ignores_input_order() -> None:
    with pytest.raises(ValueError, match="twice"):
        ValidatorSet((ValidatorInfo("a", 1), ValidatorInfo("a", 2)))
    with pytest.raises(ValueError, match="power"):
        ValidatorSet((ValidatorInfo("a", 0),))
    with pytest.raises(ValueError, match="at least one"):
        ValidatorSet(())
    ab = ValidatorSet((ValidatorInfo("a", 1), ValidatorInfo("b", 3)))
    ba = ValidatorSet((ValidatorInfo("b", 3), ValidatorInfo("a", 1)))
    assert ab == ba
    assert [ab.proposer(h, r) for h in range(5) for r in range(5)] == [
        ba.proposer(h, r) for h in range(5) for r in range(5)
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=9), st.integers(0, 10**6))
def test_proposer_rotation_is_proportional_to_power_and_smooth(powers: list[int], start: int) -> None:
    vs = ValidatorSet(tuple(ValidatorInfo(f"v{i}", p) for i, p in enumerate(powers)))
    total = vs.total_power
    # Any `total` consecutive heights, from anywhere: each proposes exactly its power.
    counts = Counter(vs.proposer(start + h, 0) for h in range(total))
    assert counts == {f"v{i}": p for i, p in enumerate(powers)}
    # And evenly spread: at every point of the cycle each validator is close to its exact
    # share (no long droughts, no bursts). Not within two: validators of power 1 all aim at the
    # middle of the cycle, so n of them there push a heavy validator back by about n/2 (found by
    # Hypothesis with [1, 1, 1, 1, 1, 15]); within n/2 + 1 holds.
    running: Counter[str] = Counter()
    bound = len(powers) / 2 + 1
    for k in range(1, total + 1):
        running[vs.proposer(k - 1, 0)] += 1
        assert all(abs(running[f"v{i}"] - k * p / total) <= bound for i, p in enumerate(powers))
    # The rotation is (height + round): the next round of a height is the next slot.
    assert all(vs.proposer(7, r) == vs.proposer(7 + r, 0) for r in range(total))


def test_proposer_rotation_of_equal_powers_is_plain_round_robin() -> None:
    assert [FOUR.proposer(h, 0) for h in range(8)] == ["v0", "v1", "v2", "v3"] * 2


def test_weighted_proposer_rotation_is_the_interleaving_the_docstring_promises() -> None:
    # Slots at (2j + 1) / 2w, ties by address: every node must derive exactly this order.
    three = ValidatorSet((ValidatorInfo("a", 1), ValidatorInfo("b", 2), ValidatorInfo("c", 3)))
    assert [three.proposer(0, r) for r in range(6)] == ["c", "b", "a", "c", "b", "c"]
    two = ValidatorSet((ValidatorInfo("a", 1), ValidatorInfo("b", 4)))
    assert [two.proposer(0, r) for r in range(5)] == ["b", "b", "a", "b", "b"]


def test_proposer_rotation_with_a_million_units_of_power() -> None:
    powers = [500_009, 300_007, 199_999]
    vs = ValidatorSet(tuple(ValidatorInfo(f"v{i}", p) for i, p in enumerate(powers)))
    window = Counter(vs.proposer(h, 0) for h in range(10_000))
    for i, p in enumerate(powers):
        assert abs(window[f"v{i}"] - 10_000 * p / vs.total_power) < 2
    assert vs.proposer(vs.total_power + 5, 0) == vs.proposer(5, 0)


# ---------------------------------------------------------------------------------------------
# One height, delivered by hand


def test_happy_path_one_validator_step_by_step() -> None:
    me = not_proposer(0)
    state, out = apply(initial_state(me, TIMING), StartHeight(H, FOUR))
    assert out == [ScheduleTimeout("propose", H, 0, 1000)]  # line 21

    state, out = apply(state, proposal_in(0, "block-A"))  # line 22
    assert votes_sent(out, "prevote") == ["block-A"]
    assert state.step == "prevote"

    state, out = loopback(state, out)
    state, out = polka(state, 0, "block-A", others(me)[:2])  # now 3 of 4 prevotes
    assert votes_sent(out, "precommit") == ["block-A"]  # lines 36-40
    assert state.step == "precommit"  # line 41
    assert ScheduleTimeout("prevote", H, 0, 500) in out  # line 34
    assert (state.locked_value, state.locked_round) == ("block-A", 0)
    assert (state.valid_value, state.valid_round) == ("block-A", 0)

    state, out = loopback(state, out)
    assert not [o for o in out if isinstance(o, Decision)]  # our precommit alone: 1 of 4
    state, out = feed(state, [vote_in("precommit", 0, "block-A", v) for v in others(me)[:2]])
    decisions = [o for o in out if isinstance(o, Decision)]
    assert len(decisions) == 1  # line 49
    decision = decisions[0]
    assert (decision.height, decision.round, decision.value_id) == (H, 0, "block-A")
    assert len(decision.precommits) == 3
    assert all(v.signature == sig(v.validator) for v in decision.precommits)
    assert verify_commit(FOUR, H, "block-A", decision.precommits)
    assert state.decision == decision


def test_a_lone_validator_moves_only_on_its_own_signed_messages() -> None:
    solo = ValidatorSet((ValidatorInfo("v0", 1),))  # quorum 1: a value nobody voted has no power
    state, out = apply(initial_state("v0", TIMING), StartHeight(H, solo))
    assert RequestValue(H, 0) in out
    state, out = apply(state, ValueReady(H, 0, "A"))
    state, out = loopback(state, out)  # the proposal is back: prevote
    assert votes_sent(out, "prevote") == ["A"]
    assert votes_sent(out, "precommit") == []
    state, out = loopback(state, out)  # the prevote is back: a polka of one, precommit
    assert votes_sent(out, "precommit") == ["A"]
    assert not [o for o in out if isinstance(o, Decision)]
    state, out = loopback(state, out)  # the precommit is back: decide
    decisions = [o for o in out if isinstance(o, Decision)]
    assert [(d.value_id, len(d.precommits)) for d in decisions] == [("A", 1)]


def test_proposer_asks_for_a_value_and_counts_its_own_proposal_when_it_comes_back() -> None:
    me = proposer(0)
    state, out = apply(initial_state(me, TIMING), StartHeight(H, FOUR))
    assert RequestValue(H, 0) in out  # line 18: getValue()
    assert apply(state, ValueReady(H, 1, "wrong-round"))[1] == []

    state, out = apply(state, ValueReady(H, 0, "my-block"))
    assert sent(out) == [Proposal(H, 0, "my-block", -1, me)]  # line 19
    assert state.round_votes(0).proposal is None  # not counted before it is signed

    state, out = loopback(state, out)
    assert votes_sent(out, "prevote") == ["my-block"]
    assert state.round_votes(0).proposal == Proposal(H, 0, "my-block", -1, me, sig(me))


def test_all_four_validators_decide_the_same_block() -> None:
    states = {v.address: initial_state(v.address, TIMING) for v in FOUR.validators}
    queue: list[Input] = []
    inboxes: dict[str, list[Input]] = {a: [StartHeight(H, FOUR)] for a in states}
    decided: dict[str, Decision] = {}
    for _ in range(20):
        for address in states:
            items, inboxes[address] = inboxes[address], []
            for item in items:
                states[address], out = apply(states[address], item)
                for o in out:
                    if isinstance(o, RequestValue):
                        inboxes[address].append(ValueReady(o.height, o.round, f"{address}-blk"))
                    elif isinstance(o, Decision):
                        decided[address] = o
                queue += signed_inputs(out)
        for item in queue:
            for address in states:
                inboxes[address].append(item)
        queue = []
    assert set(decided) == set(states)
    assert {d.value_id for d in decided.values()} == {f"{proposer(0)}-blk"}


# ---------------------------------------------------------------------------------------------
# Locking and the valid value


def locked_on_a_in_round_0(me: str) -> State:
    state = started(me)
    state, out = apply(state, proposal_in(0, "A"))
    state, out = loopback(state, out)
    state, out = polka(state, 0, "A", others(me)[:2])
    assert state.locked_value == "A"
    state, _ = loopback(state, out)
    state, _ = feed(state, [vote_in("precommit", 0, None, v) for v in others(me)[:2]])
    state, out = apply(state, TimeoutIn("precommit", H, 0))  # lines 65-67
    assert state.round == 1
    return state


def test_a_locked_validator_prevotes_nil_for_another_value() -> None:
    me = not_proposer(0)
    state = locked_on_a_in_round_0(me)
    state, out = apply(state, proposal_in(1, "B"))  # lines 22-26: locked on A, B is new
    assert votes_sent(out, "prevote") == [None]


def test_a_locked_validator_prevotes_its_locked_value_again() -> None:
    me = not_proposer(0)
    state = locked_on_a_in_round_0(me)
    state, out = apply(state, proposal_in(1, "A", valid_round=0))  # line 28-30
    assert votes_sent(out, "prevote") == ["A"]


def test_a_polka_in_a_later_round_unlocks() -> None:
    me = not_proposer(0)
    state = locked_on_a_in_round_0(me)
    state, _ = apply(state, TimeoutIn("propose", H, 1))
    state, _ = polka(state, 1, "B", others(me))  # others saw B win round 1
    state, _ = apply(state, TimeoutIn("prevote", H, 1))
    state, _ = feed(state, [vote_in("precommit", 1, None, v) for v in others(me)])
    state, _ = apply(state, TimeoutIn("precommit", H, 1))
    assert state.round == 2
    # Round 2 re-proposes B citing the round-1 polka: lockedRound 0 <= vr 1 (line 29).
    state, out = apply(state, proposal_in(2, "B", valid_round=1))
    assert votes_sent(out, "prevote") == ["B"]


def test_a_polka_older_than_the_lock_does_not_unlock() -> None:
    me = next(v.address for v in FOUR.validators if v.address not in {proposer(r) for r in range(3)})
    state = started(me)
    state, out = apply(state, TimeoutIn("propose", H, 0))  # no proposal in round 0: nil
    state, _ = loopback(state, out)
    state, _ = polka(state, 0, "B", others(me))  # the others saw B win round 0
    state, out = apply(state, TimeoutIn("prevote", H, 0))
    state, _ = loopback(state, out)
    state, _ = feed(state, [vote_in("precommit", 0, None, v) for v in others(me)])
    state, _ = apply(state, TimeoutIn("precommit", H, 0))
    state, out = apply(state, proposal_in(1, "A"))  # round 1: lock on A
    state, _ = loopback(state, out)
    state, out = polka(state, 1, "A", others(me)[:2])
    state, _ = loopback(state, out)
    assert (state.locked_value, state.locked_round) == ("A", 1)
    state, _ = feed(state, [vote_in("precommit", 1, None, v) for v in others(me)[:2]])
    state, _ = apply(state, TimeoutIn("precommit", H, 1))
    assert state.round == 2
    # Round 2 re-proposes B citing round 0: its polka is verified (line 28) but older than
    # the lock, and B is not the locked value (line 29: lockedRound 1 > vr 0).
    state, out = apply(state, proposal_in(2, "B", valid_round=0))
    assert votes_sent(out, "prevote") == [None]


def test_a_proposal_citing_an_unseen_polka_waits_then_prevotes_nil() -> None:
    me = not_proposer(0)
    state = locked_on_a_in_round_0(me)
    state, out = apply(state, proposal_in(1, "B", valid_round=0))
    assert votes_sent(out, "prevote") == []  # line 28 needs 2f+1 prevotes for B in round 0
    state, out = apply(state, TimeoutIn("propose", H, 1))  # lines 57-60
    assert votes_sent(out, "prevote") == [None]


def test_a_late_polka_updates_the_valid_value_but_not_the_lock() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, TimeoutIn("propose", H, 0))  # no proposal yet: prevote nil
    state, _ = loopback(state, out)
    state, out = polka(state, 0, "A", others(me)[:2])  # 3 prevotes in all, 2 for A
    assert ScheduleTimeout("prevote", H, 0, 500) in out
    state, out = apply(state, TimeoutIn("prevote", H, 0))  # lines 61-64
    assert votes_sent(out, "precommit") == [None]
    state, _ = apply(state, proposal_in(0, "A"))
    state, out = polka(state, 0, "A", others(me)[2:])  # line 36 with step = precommit
    assert votes_sent(out, "precommit") == []
    assert (state.valid_value, state.valid_round) == ("A", 0)  # lines 42-43
    assert (state.locked_value, state.locked_round) == (None, -1)


def test_the_proposer_re_proposes_its_valid_value_with_its_valid_round() -> None:
    me = proposer(1)
    state = started(me)
    state, out = apply(state, proposal_in(0, "A"))
    state, out = loopback(state, out)
    state, _ = polka(state, 0, "A", others(me)[:2])
    assert state.valid_value == "A"
    state, _ = feed(state, [vote_in("precommit", 0, None, v) for v in others(me)[:2]])
    state, out = apply(state, TimeoutIn("precommit", H, 0))
    assert RequestValue(H, 1) not in out
    assert sent(out) == [Proposal(H, 1, "A", 0, me)]  # lines 15-16, 19


def test_a_nil_polka_precommits_nil() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, TimeoutIn("propose", H, 0))
    state, _ = loopback(state, out)
    state, out = polka(state, 0, None, others(me)[:2])  # lines 44-46
    assert votes_sent(out, "precommit") == [None]
    assert state.step == "precommit"


def test_an_invalid_proposal_gets_a_nil_prevote_and_is_never_decided() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, proposal_in(0, "BAD", valid=False))  # line 23: valid(v)
    assert votes_sent(out, "prevote") == [None]
    state, out = feed(state, [vote_in("precommit", 0, "BAD", v) for v in others(me)])
    assert not [o for o in out if isinstance(o, Decision)]  # line 50: valid(v)
    assert state.decision is None


def test_a_polka_for_a_block_this_validator_finds_invalid_neither_locks_nor_precommits() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, proposal_in(0, "BAD", valid=False))
    state, _ = loopback(state, out)
    state, out = polka(state, 0, "BAD", others(me))  # the others found it valid: line 36 asks valid(v)
    assert votes_sent(out, "precommit") == []
    assert (state.locked_value, state.valid_value) == (None, None)


def test_a_polka_that_arrives_before_the_one_a_proposal_cites_still_locks_once_prevoted() -> None:
    me = not_proposer(0)
    state = started(me)
    state, _ = feed(state, [vote_in("prevote", 1, "A", v) for v in others(me)])  # skip to round 1 (line 55)
    state, out = apply(state, proposal_in(1, "A", valid_round=0))  # cites a polka not seen yet: wait
    assert state.round == 1
    assert state.step == "propose"
    state, out = polka(state, 0, "A", others(me))  # the cited polka: line 28 prevotes, then line 36
    assert votes_sent(out, "prevote") == ["A"]
    assert votes_sent(out, "precommit") == ["A"]
    assert (state.locked_value, state.locked_round) == ("A", 1)


# ---------------------------------------------------------------------------------------------
# Timeouts and rounds


def test_timeouts_grow_with_the_round_and_stale_ones_are_ignored() -> None:
    me = not_proposer(0)
    state = started(me)
    assert TIMING.timeout_ms("propose", 3) == 1000 + 3 * 250
    state, _ = apply(state, TimeoutIn("propose", H, 0))
    state, _ = polka(state, 0, None, others(me))
    state, _ = feed(state, [vote_in("precommit", 0, None, v) for v in others(me)])
    state, out = apply(state, TimeoutIn("precommit", H, 0))
    assert state.round == 1
    assert ScheduleTimeout("propose", H, 1, 1250) in out
    for stale in (
        TimeoutIn("precommit", H, 0),
        TimeoutIn("propose", H, 0),
        TimeoutIn("propose", 9, 1),
    ):
        assert apply(state, stale) == (state, [])


def test_every_round_arms_its_own_prevote_and_precommit_timeouts() -> None:
    me = not_proposer(0)
    state = started(me)
    for r in (0, 1):  # lines 34 and 47 fire "for the first time" in each round
        state, out = apply(state, TimeoutIn("propose", H, r))
        state, _ = loopback(state, out)
        state, out = feed(
            state, [vote_in("prevote", r, None, others(me)[0]), vote_in("prevote", r, "B", others(me)[1])]
        )
        assert ScheduleTimeout("prevote", H, r, 500 + r * 250) in out
        state, out = apply(state, TimeoutIn("prevote", H, r))
        state, _ = loopback(state, out)
        state, out = feed(state, [vote_in("precommit", r, None, v) for v in others(me)[:2]])
        assert ScheduleTimeout("precommit", H, r, 400 + r * 250) in out
        state, _ = apply(state, TimeoutIn("precommit", H, r))
        assert state.round == r + 1


def test_the_prevote_timeout_starts_only_after_two_thirds_of_any_prevotes() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, TimeoutIn("propose", H, 0))
    state, out = polka(state, 0, "A", others(me)[:1])
    state, out2 = polka(state, 0, None, others(me)[1:2])
    assert not [o for o in out + out2 if isinstance(o, ScheduleTimeout)]
    state, out = apply(state, VoteIn(Vote("prevote", H, 0, "C", others(me)[2], b"s")))
    assert ScheduleTimeout("prevote", H, 0, 500) in out  # line 34: 3 of 4, split
    assert apply(state, VoteIn(Vote("prevote", H, 0, None, me, b"s")))[1] == []  # once only


def test_f_plus_one_in_a_later_round_skips_ahead() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, vote_in("prevote", 5, None, others(me)[0]))
    assert state.round == 0  # one of four is not f+1
    state, out = apply(state, vote_in("precommit", 5, None, others(me)[1]))
    assert state.round == 5  # line 55
    assert ScheduleTimeout("propose", H, 5, 1000 + 5 * 250) in out


def test_a_proposer_skipped_past_its_round_stops_asking_for_a_value() -> None:
    me = proposer(0)
    state = started(me)  # awaiting its value for round 0 (line 18)
    state, _ = feed(state, [vote_in("prevote", 1, None, v) for v in others(me)[:2]])
    assert state.round == 1  # line 55; round 1 belongs to another proposer
    _, out = apply(state, Resend())
    assert not [o for o in out if isinstance(o, RequestValue)]


def test_late_precommits_of_an_earlier_round_still_decide() -> None:
    me = not_proposer(0)
    state = started(me)
    state, _ = feed(state, [proposal_in(0, "A"), *(vote_in("prevote", 1, None, v) for v in others(me)[:2])])
    assert state.round == 1  # skipped on (line 55) before round 0 was decided
    state, out = feed(state, [vote_in("precommit", 0, "A", v) for v in others(me)])
    decisions = [o for o in out if isinstance(o, Decision)]
    assert [(d.round, d.value_id) for d in decisions] == [(0, "A")]  # line 49, any round


def test_one_heavy_validator_is_f_plus_one_by_itself() -> None:
    vs = ValidatorSet((ValidatorInfo("big", 4), *(ValidatorInfo(f"s{i}", 2) for i in range(3))))
    me = "s0"
    state = started(me, vs)
    state, _ = apply(state, VoteIn(Vote("prevote", H, 3, None, "big", b"s")))
    assert state.round == 3  # power 4 of 10 > 1/3


def test_rounds_too_far_ahead_are_dropped() -> None:
    me = not_proposer(0)
    state = started(me)
    far = MAX_ROUNDS_AHEAD + 1
    after, out = feed(state, [vote_in("prevote", far, None, v) for v in others(me)])
    assert after == state
    assert out == []
    state, _ = feed(state, [vote_in("prevote", far - 1, None, v) for v in others(me)[:2]])
    assert state.round == MAX_ROUNDS_AHEAD  # the last round still taken (line 55)


# ---------------------------------------------------------------------------------------------
# Who may speak, and how often


def test_a_proposal_from_the_wrong_proposer_is_ignored() -> None:
    me = not_proposer(0)
    state = started(me)
    impostor = others(me)[0] if others(me)[0] != proposer(0) else others(me)[1]
    bad = ProposalIn(Proposal(H, 0, "X", -1, impostor, b"s"), True)
    assert apply(state, bad) == (state, [])
    assert apply(state, proposal_in(2, "Y", valid_round=2))[0].round_votes(2).proposal is None
    assert apply(state, proposal_in(0, "Y", valid_round=-2))[0].round_votes(0).proposal is None


def test_votes_from_non_validators_are_ignored() -> None:
    state = started("v0")
    assert apply(state, vote_in("prevote", 0, None, "mallory")) == (state, [])


def test_a_duplicate_vote_counts_once() -> None:
    me = not_proposer(0)
    state = started(me)
    voter = others(me)[0]
    state, _ = feed(state, [vote_in("prevote", 0, "A", voter)] * 5)
    assert state.round_votes(0).prevotes.power_for("A") == 1
    assert state.round_votes(0).prevotes.total == 1


def test_a_double_vote_is_reported_once_and_counts_only_for_supported_values() -> None:
    me = not_proposer(0)
    state = started(me)
    cheat, honest = others(me)[0], others(me)[1]
    first, second, third = (vote_in("prevote", 0, v, cheat) for v in ("A", "B", None))
    state, out = feed(state, [first, second, second, third])
    assert out == [Evidence(first.vote, second.vote)]  # reported once
    assert dict(state.round_votes(0).prevotes.power) == {"A": 1}  # B, nil: nobody else
    assert state.round_votes(0).prevotes.total == 1
    # Once an honest validator supports nil, the cheat's nil vote (relayed again) counts
    # for nil too: the paper counts every message, and liveness needs it.
    state, _ = feed(state, [vote_in("prevote", 0, None, honest), third])
    assert dict(state.round_votes(0).prevotes.power) == {"A": 1, None: 2}
    assert state.round_votes(0).prevotes.total == 2


def test_a_polka_that_includes_a_double_voter_can_still_be_verified_by_everyone() -> None:
    # The cheat told us "nil" but told others "A"; the locked proposer of round 1 cites the
    # round-0 polka for A. Relayed to us, the cheat's A vote completes that polka.
    me = not_proposer(0)
    state = started(me)
    cheat, a, b = others(me)
    state, _ = feed(state, [vote_in("prevote", 0, None, cheat), proposal_in(0, "A")])
    state, out = polka(state, 0, "A", [a, b])  # our own A prevote is not looped back
    assert state.round_votes(0).prevotes.power_for("A") == 2
    state, _ = feed(state, [vote_in("precommit", 0, None, v) for v in (a, b, cheat)])
    state, _ = apply(state, TimeoutIn("precommit", H, 0))
    state, out = apply(state, proposal_in(1, "A", valid_round=0))
    assert votes_sent(out, "prevote") == []  # polka for A at round 0 not verified yet
    state, out = apply(state, vote_in("prevote", 0, "A", cheat))  # relayed by a peer
    assert votes_sent(out, "prevote") == ["A"]


def test_an_equivocating_proposer_is_reported_and_its_first_proposal_kept() -> None:
    me = not_proposer(0)
    state = started(me)
    a, b = proposal_in(0, "A"), proposal_in(0, "B")
    state, out = feed(state, [a, b])
    assert Evidence(a.proposal, b.proposal) in out
    assert state.round_votes(0).proposal == a.proposal
    assert votes_sent(out, "prevote") == ["A"]
    state, out = apply(state, proposal_in(0, "C"))  # once reported is enough
    assert not [o for o in out if isinstance(o, Evidence)]


def test_an_observer_never_sends_but_still_decides() -> None:
    state = started("observer")
    assert not state.is_validator
    state, out = feed(state, [proposal_in(0, "A")])
    state, out2 = polka(state, 0, "A", ["v0", "v1", "v2"])
    state, out3 = feed(state, [vote_in("precommit", 0, "A", v) for v in ("v0", "v1", "v2")])
    everything = out + out2 + out3
    assert sent(everything) == []
    assert [o.value_id for o in everything if isinstance(o, Decision)] == ["A"]


# ---------------------------------------------------------------------------------------------
# Heights


def decided_state(me: str) -> State:
    state = started(me)
    state, _ = feed(state, [proposal_in(0, "A")])
    state, _ = feed(state, [vote_in("precommit", 0, "A", v) for v in others(me)])
    assert state.decision is not None
    return state


def test_after_a_decision_the_height_is_closed_and_the_next_one_buffered() -> None:
    me = not_proposer(0, height=H + 1)
    state = decided_state(me)
    assert apply(state, vote_in("prevote", 1, None, others(me)[0])) == (state, [])
    assert apply(state, TimeoutIn("precommit", H, 0)) == (state, [])
    early = [proposal_in(0, "N", height=H + 1)] + [vote_in("prevote", 0, "N", v, height=H + 1) for v in others(me)]
    state, out = feed(state, early)
    assert out == []
    assert apply(state, vote_in("prevote", 0, None, "v1", height=H + 2)) == (state, [])
    state, out = apply(state, StartHeight(H + 1, FOUR))
    assert votes_sent(out, "prevote") == ["N"]
    assert votes_sent(out, "precommit") == ["N"]  # the buffered polka was replayed
    assert (state.height, state.decision, state.locked_value) == (H + 1, None, "N")
    assert apply(state, StartHeight(H + 1, FOUR)) == (state, [])  # never restart a height
    assert apply(state, proposal_in(0, "old")) == (state, [])  # older heights are ignored


def test_a_next_height_message_is_buffered_once_however_often_it_comes() -> None:
    me = not_proposer(0)
    state = decided_state(me)
    early = vote_in("prevote", 0, None, "v1", height=H + 1)
    state, _ = feed(state, [early, early, replace(early, vote=replace(early.vote, signature=b"other"))])
    assert len(state.pending["v1"]) == 1


def test_the_next_height_buffer_is_bounded_per_sender() -> None:
    me = not_proposer(0)
    state = decided_state(me)
    spam = [vote_in("prevote", r, None, "v1", height=H + 1) for r in range(2 * MAX_PENDING_PER_SENDER)]
    state, _ = feed(state, spam)
    assert len(state.pending["v1"]) == MAX_PENDING_PER_SENDER
    state, _ = feed(state, [vote_in("prevote", 0, None, "mallory", height=H + 1)])
    assert "mallory" not in state.pending


# ---------------------------------------------------------------------------------------------
# Persistence, restarts, resend


def messy_state() -> State:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, proposal_in(0, "A"))
    state, _ = loopback(state, out)
    state, _ = feed(state, [proposal_in(0, "Y")])  # an equivocating proposer
    assert state.round_votes(0).proposal_equivocated
    state, _ = polka(state, 0, "A", others(me)[:2])
    state, _ = feed(state, [vote_in("prevote", 0, "Z", others(me)[0])])  # evidence
    state, _ = feed(state, [vote_in("precommit", 3, None, others(me)[2])])
    state, _ = feed(state, [vote_in("prevote", 0, None, "v1", height=H + 1)])
    return state


def test_state_round_trips_through_json() -> None:
    for state in (initial_state("v9", TIMING), started("v0"), messy_state(), decided_state("v3")):
        restored = from_dict(json.loads(json.dumps(to_dict(state))))
        assert restored == state
        assert to_dict(restored) == to_dict(state)
    with pytest.raises(ValueError, match="version"):
        from_dict({**to_dict(messy_state()), "version": 99})


def test_a_restarted_validator_resends_but_never_votes_differently() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, proposal_in(0, "A"))
    assert votes_sent(out, "prevote") == ["A"]
    restarted = from_dict(json.loads(json.dumps(to_dict(state))))  # before the loopback
    restarted, out = apply(restarted, Resend())
    assert votes_sent(out, "prevote") == ["A"]  # the same vote again
    assert ScheduleTimeout("propose", H, 0, 1000) not in out  # step is prevote now
    restarted, out = apply(restarted, TimeoutIn("propose", H, 0))
    assert votes_sent(out, "prevote") == []  # no second prevote in round 0


def test_resend_repeats_own_messages_timers_and_relays_what_peers_may_have_missed() -> None:
    me = proposer(0)
    state = started(me)
    state, out = apply(state, Resend())
    assert RequestValue(H, 0) in out  # an unanswered getValue()
    assert ScheduleTimeout("propose", H, 0, 1000) in out
    state, out = apply(state, ValueReady(H, 0, "A"))
    state, out = loopback(state, out)  # our proposal comes back: we prevote
    state, out = loopback(state, out)  # our prevote comes back
    state, _ = polka(state, 0, "A", others(me)[:2])
    _, out = apply(state, Resend())
    assert {(m.kind if isinstance(m, Vote) else "proposal") for m in sent(out)} == {
        "proposal",
        "prevote",
        "precommit",
    }
    relayed = [o.message for o in out if isinstance(o, Relay)]
    assert sorted(m.validator for m in relayed if isinstance(m, Vote)) == sorted(others(me)[:2])
    assert all(m.signature for m in relayed)


def test_a_precommit_timeout_in_the_propose_step_starts_the_next_round_without_a_prevote() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = feed(state, [vote_in("precommit", 0, None, v) for v in others(me)])  # line 47
    assert ScheduleTimeout("precommit", H, 0, 400) in out
    state, out = apply(state, TimeoutIn("precommit", H, 0))  # lines 65-67, still in propose
    assert state.round == 1
    assert votes_sent(out, "prevote") == []


def test_once_the_proposer_has_proposed_or_timed_out_a_resend_no_longer_asks_for_a_value() -> None:
    me = proposer(0)
    timed_out, _ = apply(started(me), TimeoutIn("propose", H, 0))
    proposed, out = apply(started(me), ValueReady(H, 0, "A"))
    prevoted, _ = loopback(proposed, out)  # lines 22-27 on our own proposal
    other = locked_on_a_in_round_0(not_proposer(0))
    reproposal, _ = apply(other, proposal_in(1, "A", valid_round=0))  # lines 28-33
    for state in (timed_out, proposed, prevoted, reproposal):
        _, out = apply(state, Resend())
        assert not [o for o in out if isinstance(o, RequestValue)]


def test_a_restarted_validator_waiting_in_prevote_gets_its_prevote_timer_back_and_no_other() -> None:
    me = not_proposer(0)
    state = started(me)
    state, out = apply(state, proposal_in(0, "A"))
    state, _ = loopback(state, out)
    state, out = feed(state, [vote_in("prevote", 0, None, others(me)[0]), vote_in("prevote", 0, "B", others(me)[1])])
    assert ScheduleTimeout("prevote", H, 0, 500) in out  # line 34: 3 of 4 prevotes, no polka
    restarted = from_dict(json.loads(json.dumps(to_dict(state))))
    _, out = apply(restarted, Resend())
    assert ScheduleTimeout("prevote", H, 0, 500) in out  # timers die with the process
    state, out = apply(restarted, TimeoutIn("prevote", H, 0))  # lines 61-64: precommit nil
    _, out = apply(state, Resend())
    assert not [o for o in out if isinstance(o, ScheduleTimeout) and o.step == "prevote"]


def test_resend_relays_the_round_and_the_polka_behind_the_valid_value() -> None:
    me = not_proposer(0)
    state = locked_on_a_in_round_0(me)  # valid value A from round 0, now in round 1
    state, out = apply(state, proposal_in(1, "B"))
    state, _ = feed(state, [vote_in("prevote", 1, "B", others(me)[0])])
    _, out = apply(state, Resend())
    relayed = {(type(m).__name__, m.round, m.value_id) for m in (o.message for o in out if isinstance(o, Relay))}
    assert ("Proposal", 1, "B") in relayed  # the current round: its proposal ...
    assert ("Vote", 1, "B") in relayed  # ... and its votes
    assert ("Vote", 0, "A") in relayed  # the proof of the valid value, which line 28 asks for


def test_a_message_without_a_signature_decodes_unsigned() -> None:
    vote = message_from_dict(
        {"type": "vote", "kind": "prevote", "height": 1, "round": 0, "value_id": None, "validator": "v0"}
    )
    assert vote == Vote("prevote", 1, 0, None, "v0", b"")


def test_resend_after_a_decision_repeats_the_decision() -> None:
    state = decided_state("v0")
    _, out = apply(state, Resend())
    assert state.decision in out
    relayed = [o.message for o in out if isinstance(o, Relay)]
    assert any(isinstance(m, Proposal) for m in relayed)


# ---------------------------------------------------------------------------------------------
# Tallies against an obviously right recount


vote_strategy = st.builds(
    vote_in,
    st.sampled_from(["prevote", "precommit"]),
    st.integers(0, 3),
    st.sampled_from(["A", "B", "forged", None]),
    st.sampled_from(["v0", "v1", "v2", "v3", "mallory"]),
)


def recount(votes: Sequence[VoteIn], kind: VoteKind, round: int) -> Counter[str | None]:
    """The counting rule, slowly: a validator's first vote counts; a later, different vote
    counts too if its value already had support when it arrived; nothing counts twice."""
    power: Counter[str | None] = Counter()
    voted: dict[str, set[str | None]] = {}
    for item in votes:
        v = item.vote
        if (v.kind, v.round) != (kind, round) or v.validator not in FOUR:
            continue
        mine = voted.setdefault(v.validator, set())
        if v.value_id in mine or (mine and power[v.value_id] == 0):
            continue
        mine.add(v.value_id)
        power[v.value_id] += 1
    return +power


@settings(max_examples=100, deadline=None)
@given(st.lists(vote_strategy, max_size=40))
def test_tallies_match_a_slow_recount(votes: list[VoteIn]) -> None:
    state = started("observer")  # never sends, never decides without a proposal
    state, out = feed(state, votes)
    for kind in VOTE_KINDS:
        for rnd in range(4):
            tally = state.round_votes(rnd).tally(kind)
            expected = recount(votes, kind, rnd)
            assert dict(tally.power) == dict(expected)
            first_voters = {v.vote.validator for v in votes if (v.vote.kind, v.vote.round) == (kind, rnd)}
            assert tally.total == len(first_voters & {"v0", "v1", "v2", "v3"})
    double_voters = {
        (v.vote.kind, v.vote.round, v.vote.validator)
        for v in votes
        for w in votes
        if v.vote.validator != "mallory"
        and (v.vote.kind, v.vote.round, v.vote.validator) == (w.vote.kind, w.vote.round, w.vote.validator)
        and v.vote.value_id != w.vote.value_id
    }
    assert len([o for o in out if isinstance(o, Evidence)]) == len(double_voters)
    assert from_dict(json.loads(json.dumps(to_dict(state)))) == state


def test_verify_commit_needs_a_quorum_of_distinct_matching_precommits() -> None:
    good = [Vote("precommit", H, 0, "A", v, sig(v)) for v in ("v0", "v1", "v2")]
    assert verify_commit(FOUR, H, "A", good)
    assert not verify_commit(FOUR, H, "A", good[:2])
    assert not verify_commit(FOUR, H, "A", [*good[:2], good[0]])
    assert not verify_commit(FOUR, H, "B", good)
    assert not verify_commit(FOUR, H + 1, "A", good)
    assert not verify_commit(FOUR, H, "A", [*good[:2], Vote("precommit", H, 1, "A", "v3")])
    assert not verify_commit(FOUR, H, "A", [*good[:2], Vote("prevote", H, 0, "A", "v3")])
    assert not verify_commit(FOUR, H, "A", [*good[:2], Vote("precommit", H, 0, "A", "x")])
