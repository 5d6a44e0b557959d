"""Simulations under the faults that make locks matter (``simnet.py``, ``attacks.py``).

Hypothesis draws the schedules: partitions that heal (lost or held messages), messages late
by far more than the timeouts, Byzantine validators (twins that split the network, an
equivocating proposer, double voters, nil voters, validators that withhold precommits),
crashes that lose the persisted state (amnesia: faulty, so counted against f) and
validator-set changes at heights every node agrees on. Every run checks agreement and
validity (``assert_safe``); the runs that end with the network healed and at most f faulty
also check that every honest validator goes on sealing.

The split-brain attacks (``attacks.py``) are where the lock rules earn their keep: each one
forks the chain as soon as line 23, line 29 or the lock of lines 36-41 is weakened (see
``tools/named_mutants.py``), and the pinned ``@example``s are schedules known to do so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.consensus.attacks import lock_split, stale_polka
from tests.consensus.test_simulation import assert_safe, f_of
from traco.services.consensus.simnet import Simulation
from traco.services.consensus.simnet_net import Behaviour, NetConfig, SplitRound

FAULT_SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ATTACK_SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BYZANTINE: tuple[Behaviour, ...] = ("twin", "equivocate", "double_vote", "nil_voter", "withhold")


def late_nets(max_late: float = 0.15, max_loss: float = 0.05) -> st.SearchStrategy[NetConfig]:
    """Networks whose slow messages take far longer than any timeout (200/100/100 ms)."""
    return st.builds(
        NetConfig,
        min_delay_ms=st.integers(1, 5),
        max_delay_ms=st.integers(5, 60),
        loss=st.floats(0, max_loss),
        duplicate=st.floats(0, 0.1),
        late=st.floats(0, max_late),
        late_ms=st.integers(200, 3000),
        withhold_ms=st.sampled_from([0, 500, 3000]),
    )


quiet_nets = st.builds(NetConfig, min_delay_ms=st.integers(1, 5), max_delay_ms=st.integers(5, 40))

# (start ms, length ms, group of each node (0-2), held rather than lost)
partitions = st.lists(
    st.tuples(
        st.integers(0, 6000),
        st.integers(100, 3000),
        st.lists(st.integers(0, 2), min_size=10, max_size=10),
        st.booleans(),
    ),
    max_size=4,
)


def apply_partitions(sim: Simulation, drawn: Sequence[tuple[int, int, list[int], bool]]) -> int:
    """Install the drawn partitions; returns when the last one heals."""
    healed = 0
    for start, length, membership, hold in drawn:
        groups = [[i for i in range(len(sim.nodes)) if membership[i % len(membership)] == g] for g in range(3)]
        sim.partition(groups, start, start + length, hold=hold)
        healed = max(healed, start + length)
    return healed


def expect_progress(sim: Simulation, height: int, after_ms: int, more: int = 3) -> None:
    """Every honest validator of ``height`` reaches ``more`` heights beyond the highest
    sealed so far, within a minute of virtual time after ``after_ms``."""
    sim.run(after_ms)
    honest = sim.honest_validators(height)
    goal = sim.max_height() + more
    reached = sim.run_until(lambda: sim.min_height(honest) >= goal, limit_ms=after_ms + 60_000)
    assert_safe(sim)
    assert reached, f"heights {[n.height for n in sim.nodes]}, wanted {goal} at {sim.now} ms"


# ---------------------------------------------------------------------------------------------
# Partitions, late messages, withheld votes, Byzantine validators


@FAULT_SETTINGS
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**32),
    net=late_nets(),
    cuts=partitions,
    liars=st.lists(st.sampled_from(BYZANTINE), max_size=2),
)
def test_partitions_that_heal_and_byzantine_validators_cannot_fork_or_stop_the_chain(
    n: int, seed: int, net: NetConfig, cuts: list[tuple[int, int, list[int], bool]], liars: list[Behaviour]
) -> None:
    behaviours = dict(enumerate(liars[: f_of(n)]))
    sim = Simulation([1] * n, seed=seed, net=net, behaviours=behaviours)
    healed = apply_partitions(sim, cuts)
    expect_progress(sim, sim.max_height() + 1, healed + 1)


@FAULT_SETTINGS
@given(
    seed=st.integers(0, 2**32),
    net=late_nets(max_late=0.3, max_loss=0.1),
    cuts=partitions,
)
def test_any_partition_with_more_than_f_byzantine_still_never_forks_among_four(
    seed: int, net: NetConfig, cuts: list[tuple[int, int, list[int], bool]]
) -> None:
    # Liveness is not promised here (two of four withhold or lie), agreement among the two
    # honest ones still is: they only decide on a quorum, which needs one of them.
    sim = Simulation([1] * 4, seed=seed, net=net, behaviours={0: "withhold", 1: "nil_voter"})
    apply_partitions(sim, cuts)
    sim.run(10_000)
    assert_safe(sim)


# ---------------------------------------------------------------------------------------------
# Split-brain attacks on the locks


def attacked_height(
    sim: Simulation, choice: int, fits: Callable[[Simulation, int], object], first: int = 2
) -> int | None:
    """One of the first heights from ``first`` on whose proposers fit the attack."""
    heights = [h for h in range(first, first + 40) if fits(sim, h) is not None][:3]
    return heights[choice % len(heights)] if heights else None


def twins_sim(n: int, seed: int, net: NetConfig, twins: Sequence[int]) -> Simulation:
    f = f_of(n)
    chosen = list(dict.fromkeys(i % n for i in twins))[:f]
    assume(len(chosen) == f)
    return Simulation([1] * n, seed=seed, net=net, behaviours=dict.fromkeys(chosen, "twin"))


def play(sim: Simulation, height: int, plan: list[SplitRound], decider: int, heal_ms: int, hold: bool) -> None:
    sim.split_brain(height, plan, isolate=[decider], heal_ms=heal_ms, hold=hold)
    expect_progress(sim, height, heal_ms, more=2)


@ATTACK_SETTINGS
@example(
    n=4, seed=0, net=NetConfig(min_delay_ms=1, max_delay_ms=20), twins=[1], choice=0, pick=0, heal_ms=2000, hold=True
)
@example(
    n=7,
    seed=1,
    net=NetConfig(min_delay_ms=2, max_delay_ms=30),
    twins=[2, 5],
    choice=1,
    pick=1,
    heal_ms=3000,
    hold=False,
)
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**32),
    net=quiet_nets,
    twins=st.lists(st.integers(0, 6), min_size=2, max_size=2),
    choice=st.integers(0, 2),
    pick=st.integers(0, 4),
    heal_ms=st.integers(800, 4000),
    hold=st.booleans(),
)
def test_a_split_brain_proposer_cannot_make_the_validators_it_locked_decide_otherwise(
    n: int, seed: int, net: NetConfig, twins: list[int], choice: int, pick: int, heal_ms: int, hold: bool
) -> None:
    # Round 0: X locks on v and one of X decides it; round 1 offers a fresh value to all.
    sim = twins_sim(n, seed, net, twins)
    height = attacked_height(sim, choice, lambda s, h: lock_split(s, h, pick))
    assume(height is not None)
    assert height is not None
    attack = lock_split(sim, height, pick)
    assert attack is not None
    play(sim, height, attack[0], attack[1], heal_ms, hold)


@ATTACK_SETTINGS
@example(n=4, seed=0, net=NetConfig(min_delay_ms=1, max_delay_ms=20), twins=[1], choice=0, heal_ms=2500, hold=True)
@example(n=7, seed=2, net=NetConfig(min_delay_ms=2, max_delay_ms=30), twins=[2, 5], choice=0, heal_ms=3000, hold=True)
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**32),
    net=quiet_nets,
    twins=st.lists(st.integers(0, 6), min_size=2, max_size=2),
    choice=st.integers(0, 2),
    heal_ms=st.integers(1000, 4000),
    hold=st.booleans(),
)
def test_a_polka_older_than_a_lock_cannot_unlock_it(
    n: int, seed: int, net: NetConfig, twins: list[int], choice: int, heal_ms: int, hold: bool
) -> None:
    # Round 0: C locks on w, B sees w's polka late; round 1: A and B lock on v, A decides;
    # round 2 re-proposes w citing round 0.
    sim = twins_sim(n, seed, net, twins)
    height = attacked_height(sim, choice, stale_polka)
    assume(height is not None)
    assert height is not None
    attack = stale_polka(sim, height)
    assert attack is not None
    play(sim, height, attack[0], attack[1], heal_ms, hold)


@ATTACK_SETTINGS
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**32),
    net=quiet_nets,
    twins=st.lists(st.integers(0, 6), min_size=2, max_size=2),
    choice=st.integers(0, 2),
    heal_ms=st.integers(1000, 4000),
    hold=st.booleans(),
)
def test_validators_locked_on_different_values_unlock_once_the_attacker_falls_silent(
    n: int, seed: int, net: NetConfig, twins: list[int], choice: int, heal_ms: int, hold: bool
) -> None:
    # The stale-polka split without its decider: C stays locked on w (round 0), A and B on
    # v (round 1). After the heal the twins crash for good, so the honest validators are
    # exactly a quorum and C must unlock through line 29 (v's polka is newer than its lock).
    sim = twins_sim(n, seed, net, twins)
    height = attacked_height(sim, choice, stale_polka)
    assume(height is not None)
    assert height is not None
    attack = stale_polka(sim, height)
    assert attack is not None
    plan = [attack[0][0], replace(attack[0][1], first_precommits=frozenset())]
    sim.split_brain(height, plan, heal_ms=heal_ms, hold=hold)
    for twin in [*sim.twin_of, *sim.twin_of.values()]:
        sim.crash(twin, heal_ms)
    expect_progress(sim, height, heal_ms, more=2)


# ---------------------------------------------------------------------------------------------
# Amnesia: a crash that loses the persisted state (a fault, like a Byzantine validator)


@FAULT_SETTINGS
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**32),
    net=late_nets(),
    victim=st.integers(0, 6),
    at=st.integers(0, 5000),
    down_for=st.integers(0, 1500),
    cuts=partitions,
    liar=st.sampled_from(BYZANTINE),
)
def test_an_amnesic_validator_within_f_cannot_fork_or_stop_the_chain(
    n: int,
    seed: int,
    net: NetConfig,
    victim: int,
    at: int,
    down_for: int,
    cuts: list[tuple[int, int, list[int], bool]],
    liar: Behaviour,
) -> None:
    victim %= n
    behaviours: dict[int, Behaviour] = {(victim + 1) % n: liar} if f_of(n) >= 2 else {}
    sim = Simulation([1] * n, seed=seed, net=net, behaviours=behaviours)
    sim.crash(victim, at, amnesia=True)
    sim.restart(victim, at + down_for)
    healed = apply_partitions(sim, cuts)
    expect_progress(sim, 1, max(healed, at + down_for) + 1)
    assert sim.nodes[victim].amnesic


@ATTACK_SETTINGS
@given(
    seed=st.integers(0, 2**32),
    net=quiet_nets,
    twin=st.integers(0, 6),
    choice=st.integers(0, 2),
    pick=st.integers(0, 4),
    down_ms=st.integers(0, 400),
    heal_ms=st.integers(1000, 4000),
)
def test_a_locked_validator_that_forgets_its_lock_is_one_fault_among_seven(
    seed: int, net: NetConfig, twin: int, choice: int, pick: int, down_ms: int, heal_ms: int
) -> None:
    # The lock split with one of the validators it locked restarting empty right after its
    # precommit: twin + amnesic = f = 2, so the others' locks still hold.
    sim = Simulation([1] * 7, seed=seed, net=net, behaviours={twin: "twin"})
    height = attacked_height(sim, choice, lambda s, h: lock_split(s, h, pick))
    assume(height is not None)
    assert height is not None
    attack = lock_split(sim, height, pick)
    assert attack is not None
    plan, decider = attack
    victim = next(i for i in sorted(plan[0].first) if i != decider)
    sim.crash_after(victim, height, 0, "precommit", down_ms=down_ms, amnesia=True)
    play(sim, height, plan, decider, heal_ms, hold=True)


def test_amnesia_is_a_fault_with_a_twin_among_four_the_lock_split_forks() -> None:
    # Two faults among four is beyond f = 1. The amnesic validator forgets its lock on v
    # and prevotes round 1's fresh value: a second decision. This is why an amnesic honest
    # validator counts against f, and the proof that the simulation can see a fork at all.
    forked = []
    for seed in range(5):
        sim = Simulation([1] * 4, seed=seed, net=NetConfig(max_delay_ms=20), behaviours={1: "twin"})
        height = attacked_height(sim, 0, lambda s, h: lock_split(s, h, 0))
        assert height is not None
        attack = lock_split(sim, height, 0)
        assert attack is not None
        plan, decider = attack
        victim = next(i for i in sorted(plan[0].first) if i != decider)
        sim.crash_after(victim, height, 0, "precommit", down_ms=0, amnesia=True)
        sim.split_brain(height, plan, isolate=[decider], heal_ms=3000)
        sim.run(6000)
        forked.append(any("agreement broken" in p for p in sim.safety_violations()))
    assert any(forked), "the attack never forked: the simulation cannot see what locks prevent"


# ---------------------------------------------------------------------------------------------
# Validator-set changes at heights every node agrees on


GENESIS = [1, 1, 1, 1, 0, 0]  # v4 and v5 are nodes outside the first set
powers_of_six = st.lists(st.integers(0, 3), min_size=6, max_size=6).filter(lambda p: sum(p) > 0)


def byzantine_below_a_third(powers: Sequence[int], who: int | None) -> bool:
    return who is None or 3 * powers[who] < sum(powers)


@FAULT_SETTINGS
@example(seed=5, net=NetConfig(), schedule=[(2, [0, 0, 1, 1, 1, 1])], liar=None, cuts=[])  # v0, v1 out; v4, v5 in
@example(
    seed=6,
    net=NetConfig(late=0.1),
    schedule=[(1, [1, 1, 1, 1, 1, 0]), (2, [0, 3, 2, 2, 0, 1])],
    liar=(1, "twin"),
    cuts=[],
)
@given(
    seed=st.integers(0, 2**32),
    net=late_nets(max_late=0.1),
    schedule=st.lists(st.tuples(st.integers(1, 4), powers_of_six), min_size=1, max_size=3),
    liar=st.none() | st.tuples(st.integers(0, 5), st.sampled_from(BYZANTINE)),
    cuts=partitions,
)
def test_validator_set_changes_mid_run_keep_agreement_and_the_new_set_seals_alone(
    seed: int,
    net: NetConfig,
    schedule: list[tuple[int, list[int]]],
    liar: tuple[int, Behaviour] | None,
    cuts: list[tuple[int, int, list[int], bool]],
) -> None:
    changes: dict[int, list[int]] = {}
    height = 1
    for gap, powers in schedule:
        height += gap
        changes[height] = powers
    last = max(changes)
    who = None if liar is None else liar[0]
    assume(all(byzantine_below_a_third(p, who) for p in [GENESIS, *changes.values()]))
    behaviours: dict[int, Behaviour] = {} if liar is None else {liar[0]: liar[1]}
    sim = Simulation(GENESIS, seed=seed, net=net, behaviours=behaviours, set_changes=changes)
    healed = apply_partitions(sim, cuts)
    final = sim.honest_validators(last)
    assume(final)
    reached = sim.run_until(lambda: sim.min_height(final) >= last, limit_ms=healed + 60_000)
    assert_safe(sim)
    assert reached, f"heights {[n.height for n in sim.nodes]}, wanted {last} at {sim.now} ms"
    # From here on only the last set votes: everyone else may crash.
    gone = [i for i, node in enumerate(sim.nodes) if node.name not in sim.validators_at(last + 1)]
    for i in gone:
        sim.crash(i, sim.now + 1)
    expect_progress(sim, last + 1, max(healed, sim.now) + 1)
    for h, sealed in sim.log.items():
        assert {v.validator for v in sealed.precommits} <= {v.address for v in sim.validators_at(h).validators}


@ATTACK_SETTINGS
@given(
    seed=st.integers(0, 2**32),
    net=quiet_nets,
    change_at=st.integers(2, 4),
    powers=powers_of_six,
    twin=st.integers(0, 5),
    stale=st.booleans(),
    choice=st.integers(0, 2),
    pick=st.integers(0, 4),
    heal_ms=st.integers(1000, 4000),
)
def test_the_split_brain_attacks_fail_against_a_validator_set_that_changed_mid_run(
    seed: int,
    net: NetConfig,
    change_at: int,
    powers: list[int],
    twin: int,
    stale: bool,
    choice: int,
    pick: int,
    heal_ms: int,
) -> None:
    assume(powers[twin] > 0 and byzantine_below_a_third(powers, twin) and byzantine_below_a_third(GENESIS, twin))
    sim = Simulation(GENESIS, seed=seed, net=net, behaviours={twin: "twin"}, set_changes={change_at: powers})

    def fits(s: Simulation, h: int) -> tuple[list[SplitRound], int] | None:
        return stale_polka(s, h) if stale else lock_split(s, h, pick)

    height = attacked_height(sim, choice, fits, first=change_at)
    assume(height is not None)
    assert height is not None
    attack = fits(sim, height)
    assert attack is not None
    play(sim, height, attack[0], attack[1], heal_ms, hold=True)
