"""Split-brain attacks on the lock rules, for the simulation tests (``simnet.split_brain``).

Each recipe turns the validators of one height into roles (from the public proposer
rotation, as a real attacker would) and returns the plan the Byzantine twins play. Against
the machine as written they change nothing: agreement holds. Each exists because one rule
of Algorithm 1 is all that stands between the plan and a fork:

- ``lock_split``: the twin proposing round 0 shows value v to a set X of honest validators
  (just enough for a polka with its own prevote) and another value to the rest, Y, which
  holds the next proposer. X locks on v; only one of X (the "decider") gets the twin's
  precommit and decides v, then is cut off. In round 1 Y's proposer offers a fresh value w.
  Only the lock (line 23's ``lockedRound = -1 ∨ lockedValue = v``, set by lines 36-41)
  keeps X from prevoting w, which with Y and the twin is a polka and then a second decision.
- ``stale_polka``: round 0 gives group C (holding round 2's proposer) a polka for w that
  group B sees only after it has moved on; round 1 gives A ∪ B a polka for a fresh v, which
  the decider in A decides. Round 2's proposer re-proposes w citing round 0. B is locked on
  v from round 1 > 0 and holds round 0's polka for w: only line 29's ``lockedRound ≤ vr``
  keeps B from prevoting w, which with C and the twins is a polka and a second decision.

Powers may differ; the groups are sized by power. A recipe returns None when the height's
proposers do not fit it (the caller picks another height).
"""

from __future__ import annotations

from collections.abc import Sequence

from traco.services.consensus.simnet import Simulation
from traco.services.consensus.simnet_net import SplitRound


def _roles(sim: Simulation, height: int, rounds: int) -> tuple[list[int], list[int], int] | None:
    """(proposers of rounds 0..rounds-1 as node indices, honest validators, twins' power), or
    None unless round 0's proposer is a twin and the others are honest."""
    vs = sim.validators_at(height)
    names = [n.name for n in sim.nodes]
    twins = {names[i] for i in sim.twin_of.values()}
    proposers = [vs.proposer(height, r) for r in range(rounds)]
    if proposers[0] not in twins or any(p in twins for p in proposers[1:]):
        return None
    honest = sim.honest_validators(height)
    return [names.index(p) for p in proposers], honest, sum(vs.power_of(t) for t in twins)


def _power(sim: Simulation, height: int, nodes: Sequence[int]) -> int:
    vs = sim.validators_at(height)
    return sum(vs.power_of(sim.nodes[i].name) for i in nodes)


def lock_split(sim: Simulation, height: int, pick: int) -> tuple[list[SplitRound], int] | None:
    """The plan and its decider (``pick`` chooses which member of X decides)."""
    roles = _roles(sim, height, 2)
    if roles is None:
        return None
    (_, nxt), honest, twin_power = roles
    need = sim.validators_at(height).quorum - twin_power
    x: list[int] = []
    for i in honest:
        if i != nxt and _power(sim, height, x) < need:
            x.append(i)
    y = [i for i in honest if i not in x]
    if _power(sim, height, x) < need or not y:
        return None
    decider = x[pick % len(x)]
    return [SplitRound(frozenset(x), frozenset(y), first_precommits=frozenset({decider}))], decider


def stale_polka(sim: Simulation, height: int) -> tuple[list[SplitRound], int] | None:
    """The plan and its decider (round 1's proposer)."""
    roles = _roles(sim, height, 3)
    if roles is None:
        return None
    (_, a, c), honest, twin_power = roles
    need = sim.validators_at(height).quorum - twin_power
    rest = [i for i in honest if i not in (a, c)]
    if not rest:
        return None
    group_a, group_b, group_c = [a], [rest[0]], [c]
    for i in rest[1:]:
        (group_c if _power(sim, height, group_b + group_c) < need else group_a).append(i)
    b_or_c, a_or_b = group_b + group_c, group_a + group_b
    quorum = need + twin_power  # each side needs the twins for a polka, and gets them
    if not all(need <= _power(sim, height, side) < quorum for side in (b_or_c, a_or_b)):
        return None
    plan = [
        SplitRound(frozenset(group_a), frozenset(b_or_c), second_prevotes_late=frozenset(group_b)),
        SplitRound(frozenset(a_or_b), frozenset(group_c), first_precommits=frozenset({a})),
    ]
    return plan, a
