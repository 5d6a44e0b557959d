"""Properties: replaying the same transactions gives the same bytes, and the council's vote count
decides exactly as an independent reference (fractions, brute force) says.

Determinism is what lets every replica and every auditor agree (architecture: Execution): we run random
sequences of party transactions — most of them refused — twice, and once more by folding the
accepted events through ``mutate`` from genesis, and demand byte-identical state each time.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.party.kit import (
    DAY,
    HOUR,
    T0,
    Chain,
    agreement_payload,
    dev_genesis,
    pub,
    register_payload,
    rotate_payload,
)
from traco.core.domain import Accepted, DictState, Rejected
from traco.services.party import queries
from traco.services.party.codes import Code
from traco.services.party.domain import PARTY
from traco.services.party.genesis import GenesisMember, PartyGenesis, genesis_events, genesis_state
from traco.services.party.models import Rules
from traco.services.party.state import canonical_namespace

CAST = ["exporter", "importer", "carrier", "bank-a", "kyc", "council-1", "council-2", "council-3"]
APPLICANTS = ["new-0", "new-1", "new-2"]
ACTORS = CAST + APPLICANTS + [f"{name}-r{i}" for name in ("exporter", "council-1") for i in range(2)]
ROLES = ["exporter", "bank", "carrier", "council", "insurer"]


def _digest(i: int) -> str:
    return hashlib.sha256(f"agreement {i}".encode()).hexdigest()


def _build(op: tuple[Any, ...], chain: Chain, now: int) -> tuple[str, str, dict[str, Any]]:
    """Turn a drawn operation into ``(sender, kind, payload)``; ``now`` is the coming block time.

    Votes name a proposal relative to the latest one, so that most of them find a proposal.
    """
    match op:
        case ("register", sponsor, who, roles, tamper):
            payload = register_payload(who, [who], roles=roles)
            if tamper:
                payload["keys"][0]["proof"] = "00" * 64
            return sponsor, "party.register", payload
        case ("kyc", sender, target, status, days):
            return sender, "party.kyc", {"member_id": target, "status": status, "expires_at": now + days * DAY}
        case ("agreement", sender, parties, signers, n):
            return sender, "party.agreement", agreement_payload(_digest(n), signers, parties=parties)
        case ("rotate", sender, member_id, new, hours, old):
            extra = {} if old is None else {"old_key": pub(old)}
            payload = rotate_payload(member_id, old or sender, new, overlap_ms=hours * HOUR, **extra)
            return sender, "party.key.rotate", payload
        case ("propose", sender, action):
            return sender, "party.propose", {"action": action}
        case ("vote", sender, back, choice):
            latest = chain.state.get("proposal_seq")
            last = 0 if latest is None else int(orjson.loads(latest)["last"])
            return sender, "party.vote", {"proposal_id": max(1, last - back), "choice": choice}
        case ("delegate", sender, principal, kinds, days):
            return sender, "party.delegate", {"principal": principal, "kinds": kinds, "expires_at": now + days * DAY}
        case ("garbage", sender, kind, payload):
            return sender, kind, payload
    raise AssertionError(op)


members = st.sampled_from(CAST + APPLICANTS + ["nobody"])
actions = st.one_of(
    st.builds(lambda m: {"type": "admit_member", "member_id": m}, members),
    st.builds(lambda m: {"type": "suspend_member", "member_id": m}, members),
    st.builds(lambda m, r: {"type": "grant_role", "member_id": m, "role": r}, members, st.sampled_from(ROLES)),
    st.builds(lambda m, r: {"type": "revoke_role", "member_id": m, "role": r}, members, st.sampled_from(ROLES)),
    st.builds(
        lambda i, p: {"type": "add_validator", "public_key": pub(f"validator-{i}"), "power": p},
        st.integers(0, 5),
        st.integers(1, 3),
    ),
    st.builds(lambda i: {"type": "remove_validator", "public_key": pub(f"validator-{i}")}, st.integers(0, 5)),
    st.builds(
        lambda ns, m: {"type": "assign_namespace", "namespace": ns, "member_id": m},
        st.sampled_from(["MAEU", "nmfta:maeu", "SMDG:MAEU", "HLCU", "BIC:HLCU"]),
        st.sampled_from(["carrier", "exporter", None]),
    ),
    st.builds(
        lambda t: {
            "type": "set_rules",
            "rules": {"quorum": 1, "threshold_num": 2, "threshold_den": 3, "timeout_ms": t},
        },
        st.integers(1, 3 * DAY),
    ),
)
actors = st.sampled_from(ACTORS)
COUNCIL = ["council-1", "council-2", "council-3", "council-1-r0", "council-1-r1"]


def usually(likely: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly a sender who may plausibly succeed, sometimes anyone (to reach the refusals)."""
    return st.one_of(likely, likely, likely, actors)


@st.composite
def agreements(draw: st.DrawFn) -> tuple[Any, ...]:
    parties = draw(st.lists(st.sampled_from([*CAST, "exporter-r0"]), min_size=2, max_size=3, unique=True))
    signers = draw(st.one_of(st.just(parties), st.just(parties), st.lists(actors, max_size=3, unique=True)))
    sender = draw(st.one_of(st.just(parties[0]), actors))
    return ("agreement", sender, parties, signers, draw(st.integers(0, 3)))


@st.composite
def rotations(draw: st.DrawFn) -> tuple[Any, ...]:
    member_id = draw(st.sampled_from(["exporter", "council-1"]))
    chain_of_keys = [member_id, f"{member_id}-r0", f"{member_id}-r1"]
    sender = draw(usually(st.sampled_from(chain_of_keys)))
    new = draw(usually(st.sampled_from(chain_of_keys[1:])))
    old = draw(st.one_of(st.none(), st.none(), st.sampled_from(chain_of_keys)))
    return ("rotate", sender, member_id, new, draw(st.integers(0, 48)), old)


takeovers = st.builds(
    lambda m, step: ("rotate", m, m, f"{m}-r{step}", 24, None if step == 0 else f"{m}-r0"),
    st.sampled_from(["exporter", "council-1"]),
    st.sampled_from([0, 1]),
)
"""The two halves of version 2's key-rotation case: the original key rotates itself out for
``-r0``, then (still in its overlap) tries to rotate ``-r0`` out for ``-r1``."""

votes = st.tuples(
    st.just("vote"),
    usually(st.sampled_from(COUNCIL[:3])),
    st.sampled_from([0, 0, 0, 1, 2, 5]),
    st.sampled_from(["yes", "yes", "no", "abstain"]),
)
ops = st.one_of(
    st.tuples(
        st.just("register"),
        usually(st.just("bank-a")),
        st.sampled_from(APPLICANTS),
        st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True),
        st.booleans(),
    ),
    st.tuples(
        st.just("kyc"),
        usually(st.just("kyc")),
        members,
        st.sampled_from(["verified", "pending", "revoked"]),
        st.integers(-1, 400),
    ),
    agreements(),
    rotations(),
    takeovers,
    takeovers,
    st.tuples(st.just("propose"), usually(st.sampled_from(COUNCIL[:3])), actions),
    st.tuples(st.just("propose"), usually(st.sampled_from(COUNCIL[:3])), actions),
    votes,
    votes,
    votes,
    st.tuples(
        st.just("delegate"),
        usually(st.sampled_from(CAST)),
        st.sampled_from(["Farm Co-op", "Tiny Lender"]),
        st.one_of(
            st.just([]),  # a revocation
            *[
                st.lists(
                    st.sampled_from(["doc.register", "doc.pledge", "trade.*", "party.agreement"]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                )
            ]
            * 3,
        ),
        st.integers(-1, 30),
    ),
    st.tuples(
        st.just("garbage"),
        actors,
        st.sampled_from(sorted(PARTY.kinds)),
        st.dictionaries(
            st.sampled_from(["member_id", "action", "x"]),
            st.one_of(st.integers(), st.text(max_size=3), st.none()),
            max_size=2,
        ),
    ),
)
blocks = st.lists(
    st.tuples(st.lists(ops, min_size=1, max_size=5), st.sampled_from([1_000, 1_000, 1_000, HOUR, DAY, 8 * DAY])),
    min_size=1,
    max_size=12,
)


def _run(plan: list[tuple[list[tuple[Any, ...]], int]], rules: int = 1) -> Chain:
    chain = Chain.dev(rules=rules)
    for block_ops, advance in plan:
        now = chain.time + advance
        chain.block(*(_build(op, chain, now) for op in block_ops), advance=advance)
    return chain


@pytest.mark.parametrize("rules", [1, 2])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=blocks)
def test_replay_gives_byte_identical_state(rules: int, plan: list[tuple[list[tuple[Any, ...]], int]]) -> None:
    first, second = _run(plan, rules), _run(plan, rules)
    assert dict(first.state.scan("")) == dict(second.state.scan(""))
    assert [(tx.tx_id, o) for tx, o in first.log] == [(tx.tx_id, o) for tx, o in second.log]
    # Event sourcing: genesis events plus the accepted events, folded through mutate, are the state.
    replay = DictState()
    for event in genesis_events(dev_genesis(), rules):
        replay.apply(PARTY.mutate(replay, event))
    for _, outcome in first.log:
        if isinstance(outcome, Accepted):
            for event in outcome.events:
                replay.apply(PARTY.mutate(replay, event))
    assert dict(replay.scan("")) == dict(first.state.scan(""))
    # The random plans do exercise the rules: something is usually accepted and something refused.
    codes = {o.code for _, o in first.log if isinstance(o, Rejected)}
    assert codes <= ALL_CODES
    if rules >= 2:
        _v2_holds(first)


def _v2_holds(chain: Chain) -> None:
    """Rules version 2, read from the log alone: no accepted rotation was sent by a key then
    rotating out, and no two namespace entries are spellings of one namespace."""
    rotating_out: dict[str, int] = {}
    for tx, outcome in chain.log:
        if not isinstance(outcome, Accepted):
            continue
        if tx.kind == "party.key.rotate":
            until = rotating_out.get(tx.sender)
            assert until is None or tx.time >= until, f"a key rotating out (until {until}) rotated: {tx}"
        for event in outcome.events:
            if event.type == "KeyRotated":
                rotating_out[event.data["old_key"]] = event.data["valid_until"]
    names = [key.removeprefix("namespace/") for key, _ in chain.state.scan("namespace/")]
    assert len({canonical_namespace(n) for n in names}) == len(names), names


ALL_CODES = {code.value for code in Code}


# --------------------------------------------------------------------------- voting against a reference


def _reference_status(n: int, rules: Rules, votes: dict[int, str]) -> str:
    """Independent statement of the rule: exact fractions, and "can it still pass?" by trying
    every way the members who have not voted could still vote."""
    yes = sum(1 for c in votes.values() if c == "yes")
    threshold = Fraction(rules.threshold_num, rules.threshold_den)
    if len(votes) >= min(rules.quorum, n) and Fraction(yes, n) > threshold:
        return "passed"
    remaining = n - len(votes)
    for extra_yes in range(remaining + 1):
        # extra_yes more yes votes and the rest abstaining: all voted, so the quorum is met.
        if Fraction(yes + extra_yes, n) > threshold:
            return "open"
    return "rejected"


@st.composite
def elections(draw: st.DrawFn) -> tuple[int, Rules, list[tuple[int, str, int]]]:
    n = draw(st.integers(1, 7))
    den = draw(st.integers(2, 7))
    num = draw(st.integers((den + 1) // 2, den - 1))
    rules = Rules(
        quorum=draw(st.integers(1, n + 2)),
        threshold_num=num,
        threshold_den=den,
        timeout_ms=draw(st.integers(1, 10_000)),
    )
    steps = draw(
        st.lists(
            st.tuples(st.integers(0, n), st.sampled_from(["yes", "no", "abstain"]), st.integers(0, 3_000)), max_size=12
        )
    )
    return n, rules, steps


@settings(max_examples=300, deadline=None)
@given(elections())
def test_votes_decide_exactly_as_the_reference_says(election: tuple[int, Rules, list[tuple[int, str, int]]]) -> None:
    n, rules, steps = election
    council = [f"seat-{i}" for i in range(n)]
    genesis = PartyGenesis(
        genesis_time=T0,
        members=(
            *(
                GenesisMember(name=c, organisation=c, jurisdiction="SG", public_key=pub(c), roles=["council"])
                for c in council
            ),
            GenesisMember(
                name="trader", organisation="Trader", jurisdiction="SG", public_key=pub("trader"), roles=["exporter"]
            ),
        ),
        role_kinds={"council": ["party.propose", "party.vote"], "exporter": ["doc.register"], "insurer": ["doc.event"]},
        rules=rules,
    )
    chain = Chain(genesis_state(genesis))
    pid = chain.propose("seat-0", {"type": "grant_role", "member_id": "trader", "role": "insurer"})
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None
    deadline = record["deadline"]
    assert deadline == chain.time + rules.timeout_ms

    votes: dict[int, str] = {}
    status = "open"
    for voter, choice, advance in steps:
        now = chain.time + advance
        if voter == n:
            expected = "NOT_PERMITTED"  # the trader holds no vote
        elif status != "open":
            expected = "PROPOSAL_CLOSED"
        elif now > deadline:
            expected = "PROPOSAL_EXPIRED"
        elif voter in votes:
            expected = "ALREADY_VOTED"
        else:
            expected = "OK"
            votes[voter] = choice
            status = _reference_status(n, rules, votes)
        sender = "trader" if voter == n else council[voter]
        outcome = chain.vote(sender, pid, choice, advance=advance)
        if expected == "OK":
            assert isinstance(outcome, Accepted), outcome
            assert outcome.result["status"] == status
        else:
            assert isinstance(outcome, Rejected) and outcome.code == expected, (outcome, expected)

    final = queries.proposal(chain.state, pid, chain.time)
    assert final is not None
    granted = "insurer" in queries.roles_of(chain.state, pub("trader"), chain.time)
    assert granted == (status == "passed") == (final["status"] == "passed")
    if granted:
        # Never without a strict majority of the council as it stood when the proposal was made.
        assert 2 * final["yes"] > len(final["council"]) == n
    assert final["yes"] + final["no"] + final["abstain"] == len(votes)
