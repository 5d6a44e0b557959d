"""Tendermint consensus as a pure state machine: ``apply(state, input) -> (state, outputs)``.

This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(2018); comments cite its line numbers. It holds no sockets, clocks, randomness or keys, so
the same code runs under the Kafka driver and under the deterministic simulator
(``simnet.py``), and every schedule a test can think of can be replayed exactly.

Its inputs, outputs and state are plain values in ``machine_io.py``, re-exported here; this
module holds the rules.

How a driver uses it (one validator, one machine):

- Start from ``initial_state(address, config)``, or from ``machine_state.from_dict(saved)``
  after a restart.
- Feed inputs one at a time and **persist ``machine_state.to_dict(new_state)`` before acting
  on the outputs**. The state remembers every vote this validator cast, so after a crash it can never
  sign two different votes for the same (height, round, step) — the property that keeps the
  chain from forking when validators restart.
- ``StartHeight(h, validators)`` for the first height and after each ``Decision`` once block
  h-1 is committed (also to jump ahead after syncing sealed blocks from the block store).
- ``ProposalIn`` / ``VoteIn`` for every message from the ``consensus`` topic after checking
  the signature (and, for a proposal, fetching the block behind ``value_id`` and checking
  it: ``valid``). This includes the validator's own messages: a ``Broadcast`` is only
  remembered, and counts once it comes back signed (from the topic, or fed back directly by
  the driver — duplicates are ignored), so every commit in a ``Decision`` is fully signed.
- ``RequestValue(h, r)`` means "build a block"; answer with ``ValueReady(h, r, value_id)``.
- ``ScheduleTimeout`` means "feed ``TimeoutIn`` back after ``duration_ms``". Timers are not
  part of the state; duplicate or late timeouts are harmless.
- ``Resend()`` periodically while no progress is made, and once right after a restart: it
  re-emits this validator's messages for the current height (a restarted peer missed them),
  the timers of the current step, an unanswered ``RequestValue`` and an uncommitted
  ``Decision``. The driver's commit of a decision must therefore be idempotent by height.
  It also emits ``Relay`` for a few messages of *other* validators (see ``_relay``): send
  those exactly as they are, with their author's signature; never sign them yourself.
- ``Decision`` carries the commit (> 2/3 of the power in signed precommits); a validator
  that syncs sealed blocks instead should check theirs with ``verify_commit`` (and the
  signatures) before ``StartHeight(h + 1)``.
- ``Evidence`` names a validator that signed two different messages for one step; report it.

Deviations from the paper (none weakens safety):

- ``getValue()`` (line 18) is asynchronous: ``RequestValue`` out, ``ValueReady`` in.
- The propose timeout (line 21) is scheduled for the proposer too (as CometBFT does), so a
  block builder that is slow or lost does not stall the round.
- After a decision (line 49) the machine waits for ``StartHeight`` instead of moving to the
  next height itself (lines 52-54), because the validator set of the next height and the
  block commit belong to the driver.
- Bounded memory: messages for rounds beyond ``round + MAX_ROUNDS_AHEAD`` are dropped (a
  Byzantine validator cannot raise an honest round: the f+1 rule needs one honest sender);
  messages for height+1 are buffered, at most ``MAX_PENDING_PER_SENDER`` per sender and only
  from current validators; older or later heights are dropped (the driver syncs blocks).
- Gossip is partial and explicit: ``Resend`` relays the messages a peer needs to make
  progress (``_relay``), instead of assuming every message reaches everyone.
- A second, different vote from a validator is reported as ``Evidence`` and, if its value
  has other support, counted too, as the paper counts every received message (see
  ``votes.Tally``): otherwise a double voter can stall the chain.
- A non-validator (``address`` not in the set) runs the same rules without sending anything:
  an observer that still reports decisions.
"""

from __future__ import annotations

from dataclasses import replace

from .machine_io import (
    MAX_PENDING_PER_SENDER,
    MAX_ROUNDS_AHEAD,
    Broadcast,
    Decision,
    Evidence,
    Input,
    Output,
    ProposalIn,
    Relay,
    RequestValue,
    Resend,
    ScheduleTimeout,
    StartHeight,
    State,
    Step,
    TimeoutIn,
    TimingConfig,
    ValueReady,
    VoteIn,
    height_of,
    initial_state,
    started,
)
from .votes import (
    VOTE_KINDS,
    Proposal,
    RoundVotes,
    ValidatorInfo,
    ValidatorSet,
    Vote,
    VoteKind,
    message_from_dict,
    message_to_dict,
    verify_commit,
)

__all__ = [
    "MAX_PENDING_PER_SENDER",
    "MAX_ROUNDS_AHEAD",
    "Broadcast",
    "Decision",
    "Evidence",
    "Input",
    "Output",
    "Proposal",
    "ProposalIn",
    "Relay",
    "RequestValue",
    "Resend",
    "ScheduleTimeout",
    "StartHeight",
    "State",
    "Step",
    "TimeoutIn",
    "TimingConfig",
    "ValidatorInfo",
    "ValidatorSet",
    "ValueReady",
    "Vote",
    "VoteIn",
    "VoteKind",
    "apply",
    "height_of",
    "initial_state",
    "message_from_dict",
    "message_to_dict",
    "started",
    "verify_commit",
]

# ---------------------------------------------------------------------------------------------
# apply


class _Run:
    """The state being built by one ``apply`` call and the outputs emitted so far."""

    __slots__ = ("out", "s")

    def __init__(self, state: State) -> None:
        self.s = state
        self.out: list[Output] = []

    @property
    def vs(self) -> ValidatorSet:
        assert self.s.validators is not None  # only called once a height has started
        return self.s.validators

    def store_round(self, round: int, votes: RoundVotes) -> None:
        rounds = dict(self.s.rounds)
        rounds[round] = votes
        self.s = replace(self.s, rounds=rounds)

    def schedule(self, step: Step) -> None:
        s = self.s
        duration = s.config.timeout_ms(step, s.round)
        self.out.append(ScheduleTimeout(step, s.height, s.round, duration))


def apply(state: State, input: Input) -> tuple[State, list[Output]]:
    """Apply one input; returns the new state and what the driver must do, in order."""
    run = _Run(state)
    if isinstance(input, StartHeight):
        _start_height(run, input)
    elif isinstance(input, ProposalIn | VoteIn):
        _receive(run, input)
    elif isinstance(input, TimeoutIn):
        _on_timeout(run, input)
    elif isinstance(input, ValueReady):
        _on_value_ready(run, input)
    else:
        _resend(run)
    return run.s, run.out


def _start_height(run: _Run, start: StartHeight) -> None:
    old = run.s
    if old.validators is not None and start.height <= old.height:
        return  # never restart a height: that would forget the votes already cast
    carried = old.pending if old.validators is not None and start.height == old.height + 1 else {}
    # Lines 52-53: new height, locks and valid value reset, empty message log.
    run.s = State(address=old.address, config=old.config, validators=start.validators, height=start.height)
    _start_round(run, 0)  # line 54 (and line 10 for the first height)
    _evaluate(run, 0)
    for queue in carried.values():
        for item in queue:
            _receive(run, item)


def _receive(run: _Run, item: ProposalIn | VoteIn) -> None:
    s = run.s
    if s.validators is None:
        return
    message = item.proposal if isinstance(item, ProposalIn) else item.vote
    sender = _author(message)
    if message.height == s.height + 1:
        _buffer(run, sender, item)
        return
    if (
        message.height != s.height
        or s.decision is not None
        or sender not in s.validators
        or not 0 <= message.round <= s.round + MAX_ROUNDS_AHEAD
    ):
        return
    changed = (
        _record_proposal(run, item.proposal, item.valid)
        if isinstance(item, ProposalIn)
        else _record_vote(run, item.vote)
    )
    if changed:
        _evaluate(run, message.round)


def _buffer(run: _Run, sender: str, item: ProposalIn | VoteIn) -> None:
    s = run.s
    if s.validators is None or sender not in s.validators:
        return
    queue = s.pending.get(sender, ())
    if len(queue) >= MAX_PENDING_PER_SENDER or any(_same_input(q, item) for q in queue):
        return
    pending = dict(s.pending)
    pending[sender] = (*queue, item)
    run.s = replace(s, pending=pending)


def _same_input(a: ProposalIn | VoteIn, b: ProposalIn | VoteIn) -> bool:
    if isinstance(a, ProposalIn) and isinstance(b, ProposalIn):
        return a.proposal.same_as(b.proposal)
    if isinstance(a, VoteIn) and isinstance(b, VoteIn):
        return a.vote.same_as(b.vote)
    return False


def _record_proposal(run: _Run, proposal: Proposal, valid: bool) -> bool:
    vs = run.vs
    # "from proposer(h_p, r)" (lines 22, 28, 36, 49); a valid round must be an earlier round.
    if proposal.proposer != vs.proposer(proposal.height, proposal.round):
        return False
    if not -1 <= proposal.valid_round < proposal.round:
        return False
    before = run.s.round_votes(proposal.round)
    after, conflict = before.add_proposal(proposal, valid, vs.power_of(proposal.proposer))
    if conflict is not None:
        run.out.append(Evidence(conflict, proposal))
    if after is before:
        return False
    run.store_round(proposal.round, after)
    return True


def _record_vote(run: _Run, vote: Vote) -> bool:
    if vote.kind not in VOTE_KINDS:
        return False
    before = run.s.round_votes(vote.round)
    after, added = before.add_vote(vote, run.vs.power_of(vote.validator))
    if added.conflict is not None:
        run.out.append(Evidence(added.conflict, vote))
    if after is not before:
        run.store_round(vote.round, after)
    return added.counted


def _evaluate(run: _Run, touched: int) -> None:
    """Fire every upon-rule that has become true, until none is (the paper's atomic rules).

    ``touched`` is the round of the message just recorded: line 49 may fire for any round,
    line 55 for rounds above ours; the other rules only concern the current round.
    """
    if run.s.decision is not None:
        return
    if touched != run.s.round and _line49_decide(run, touched):
        return
    if touched > run.s.round and run.s.round_votes(touched).sender_power >= run.vs.one_third_plus:
        _start_round(run, touched)  # line 55: f+1 of the power is already in a later round
    while run.s.decision is None and not _line49_decide(run, run.s.round):
        if not (
            _line22_proposal(run)
            or _line28_proposal_with_polka(run)
            or _line34_any_prevotes(run)
            or _line36_polka(run)
            or _line44_nil_polka(run)
            or _line47_any_precommits(run)
        ):
            return


def _start_round(run: _Run, round: int) -> None:
    """StartRound (lines 11-21)."""
    run.s = replace(
        run.s,
        round=round,
        step="propose",
        awaiting_value=False,
        prevote_timer=False,
        precommit_timer=False,
        polka_seen=False,
    )
    s = run.s
    if s.is_validator and run.vs.proposer(s.height, round) == s.address:
        if s.valid_value is not None:
            _propose(run, s.valid_value, s.valid_round)  # lines 15-16, 19
        else:
            run.s = replace(s, awaiting_value=True)  # line 18: getValue(), answered later
            run.out.append(RequestValue(s.height, round))
    run.schedule("propose")  # line 21


def _propose(run: _Run, value_id: str, valid_round: int) -> None:
    s = run.s
    if any(isinstance(m, Proposal) and m.round == s.round for m in s.sent):
        return  # unreachable by the step discipline; never propose twice in a round
    proposal = Proposal(s.height, s.round, value_id, valid_round, s.address)
    run.s = replace(s, sent=(*s.sent, proposal))
    run.out.append(Broadcast(proposal))  # line 19


def _cast(run: _Run, kind: VoteKind, value_id: str | None) -> None:
    """Send our vote. It is remembered in ``sent`` (so it is never cast differently, even
    after a restart) and counted when it comes back signed, like everyone else's."""
    s = run.s
    if not s.is_validator:
        return
    if any(isinstance(m, Vote) and m.kind == kind and m.round == s.round for m in s.sent):
        return  # unreachable by the step discipline; never vote twice in a round
    vote = Vote(kind, s.height, s.round, value_id, s.address)
    run.s = replace(s, sent=(*s.sent, vote))
    run.out.append(Broadcast(vote))


def _current_proposal(run: _Run) -> tuple[Proposal | None, RoundVotes]:
    votes = run.s.round_votes(run.s.round)
    return votes.proposal, votes


def _line22_proposal(run: _Run) -> bool:
    s = run.s
    proposal, votes = _current_proposal(run)
    if s.step != "propose" or proposal is None or proposal.valid_round != -1:
        return False
    v = proposal.value_id
    acceptable = votes.proposal_valid and (s.locked_round == -1 or s.locked_value == v)  # 23
    _cast(run, "prevote", v if acceptable else None)  # lines 24, 26
    run.s = replace(run.s, step="prevote", awaiting_value=False)  # line 27
    return True


def _line28_proposal_with_polka(run: _Run) -> bool:
    s = run.s
    proposal, votes = _current_proposal(run)
    if s.step != "propose" or proposal is None or proposal.valid_round < 0:
        return False
    v, vr = proposal.value_id, proposal.valid_round
    if s.round_votes(vr).prevotes.power_for(v) < run.vs.quorum:
        return False
    acceptable = votes.proposal_valid and (s.locked_round <= vr or s.locked_value == v)  # 29
    _cast(run, "prevote", v if acceptable else None)  # lines 30, 32
    run.s = replace(run.s, step="prevote", awaiting_value=False)  # line 33
    return True


def _line34_any_prevotes(run: _Run) -> bool:
    s = run.s
    if s.step != "prevote" or s.prevote_timer:
        return False
    if s.round_votes(s.round).prevotes.total < run.vs.quorum:
        return False
    run.s = replace(s, prevote_timer=True)
    run.schedule("prevote")  # line 35
    return True


def _line36_polka(run: _Run) -> bool:
    s = run.s
    proposal, votes = _current_proposal(run)
    if s.polka_seen or s.step == "propose" or proposal is None or not votes.proposal_valid:
        return False
    v = proposal.value_id
    if votes.prevotes.power_for(v) < run.vs.quorum:
        return False
    run.s = replace(s, polka_seen=True)
    if s.step == "prevote":
        run.s = replace(run.s, locked_value=v, locked_round=s.round)  # lines 38-39
        _cast(run, "precommit", v)  # line 40
        run.s = replace(run.s, step="precommit")  # line 41
    run.s = replace(run.s, valid_value=v, valid_round=s.round)  # lines 42-43
    return True


def _line44_nil_polka(run: _Run) -> bool:
    s = run.s
    if s.step != "prevote" or s.round_votes(s.round).prevotes.power_for(None) < run.vs.quorum:
        return False
    _cast(run, "precommit", None)  # line 45
    run.s = replace(run.s, step="precommit")  # line 46
    return True


def _line47_any_precommits(run: _Run) -> bool:
    s = run.s
    if s.precommit_timer or s.round_votes(s.round).precommits.total < run.vs.quorum:
        return False
    run.s = replace(s, precommit_timer=True)
    run.schedule("precommit")  # line 48
    return True


def _line49_decide(run: _Run, round: int) -> bool:
    votes = run.s.round_votes(round)
    proposal = votes.proposal
    if proposal is None or not votes.proposal_valid:  # line 50: valid(v)
        return False
    v = proposal.value_id
    if votes.precommits.power_for(v) < run.vs.quorum:
        return False
    decision = Decision(run.s.height, round, v, votes.precommits.votes_for(v))
    run.s = replace(run.s, decision=decision)  # line 51; lines 52-54 wait for StartHeight
    run.out.append(decision)
    return True


def _on_timeout(run: _Run, timeout: TimeoutIn) -> None:
    s = run.s
    if s.validators is None or s.decision is not None or timeout.height != s.height or timeout.round != s.round:
        return
    if timeout.step == "propose" and s.step == "propose":  # lines 57-60
        _cast(run, "prevote", None)
        run.s = replace(run.s, step="prevote", awaiting_value=False)
    elif timeout.step == "prevote" and s.step == "prevote":  # lines 61-64
        _cast(run, "precommit", None)
        run.s = replace(run.s, step="precommit")
    elif timeout.step == "precommit":  # lines 65-67
        _start_round(run, s.round + 1)
    else:
        return
    _evaluate(run, run.s.round)


def _on_value_ready(run: _Run, ready: ValueReady) -> None:
    s = run.s
    if (
        not s.awaiting_value
        or s.decision is not None
        or s.step != "propose"
        or (ready.height, ready.round) != (s.height, s.round)
    ):
        return
    run.s = replace(s, awaiting_value=False)
    _propose(run, ready.value_id, s.valid_round)  # line 19 (valid_round is -1 here)
    _evaluate(run, s.round)


def _resend(run: _Run) -> None:
    s = run.s
    if s.validators is None:
        return
    run.out.extend(Broadcast(message) for message in s.sent)
    _relay(run)
    if s.decision is not None:
        run.out.append(s.decision)
        return
    if s.awaiting_value:
        run.out.append(RequestValue(s.height, s.round))
    if s.step == "propose":
        run.schedule("propose")
    if s.step == "prevote" and s.prevote_timer:
        run.schedule("prevote")
    if s.precommit_timer:
        run.schedule("precommit")


def _relay(run: _Run) -> None:
    """Forward what a peer needs to make progress but may never get from its author.

    The paper assumes gossip: whatever a correct process received, every correct process
    eventually receives. Resending only our own messages does not give that when the author
    has crashed since (a validator that missed one prevote of a polka can then never accept
    a proposal that cites it, and a chain with exactly a quorum alive stops). So we forward:
    after a decision, its proposal and commit; otherwise the current round's messages and the
    prevotes that justify our ``valid_value`` (the proof of lock cited by line 28). That is
    O(n) messages, not the whole height.
    """
    s = run.s
    forward: list[Proposal | Vote] = []
    if s.decision is not None:
        decided = s.round_votes(s.decision.round).proposal
        forward += [decided] if decided is not None else []
        forward += s.decision.precommits
    else:
        current = s.round_votes(s.round)
        forward += [current.proposal] if current.proposal is not None else []
        forward += current.prevotes.all_votes()
        forward += current.precommits.all_votes()
        if s.valid_value is not None and s.valid_round != s.round:
            forward += s.round_votes(s.valid_round).prevotes.votes_for(s.valid_value)
    run.out.extend(Relay(m) for m in forward if _author(m) != s.address)


def _author(message: Proposal | Vote) -> str:
    return message.proposer if isinstance(message, Proposal) else message.validator
