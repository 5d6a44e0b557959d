"""Named mutants of the consensus rules (``tools/named_mutants.py`` runs them): one precise,
plausible bug each in a safety or liveness rule of Algorithm 1 as ``services/consensus/machine.py``
and ``votes.py`` write it — a lock check dropped, a polka or commit counted at f+1 instead of
2f+1, a quorum that is a mere majority, a proposer rotation that ignores the round. And the
light client's binding rules (``core/lightclient.py``, also the sync's check of a block): a
commit that names another block, a state proof whose header or checkpoint is not of the chain
or service it names. And the validity rule's signature cache and the strict Ed25519 encoding
check, which must hold on their own (this libsodium also refuses those cases; a faster
verifier may not)."""

from __future__ import annotations

from dataclasses import dataclass

MACHINE = "services/consensus/machine.py"
VOTES = "services/consensus/votes.py"
MACHINE_TESTS = "tests/consensus/test_machine.py"
SIM = "tests/consensus/test_simulation.py"
FAULTS = "tests/consensus/test_simulation_faults.py"
LIGHT_CLIENT = "core/lightclient.py"
VALIDITY = "services/consensus/validity.py"
VALIDITY_TESTS = "tests/consensus/test_validity.py"
CRYPTO = "core/crypto.py"
LIGHT_TESTS = "tests/core/test_lightclient.py"
STATE_PROOF_TESTS = "tests/core/test_state_value_proof.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # the fastest tests that kill it (node ids)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "lock-23-ignored",
        "line 23: prevote a new proposal whatever the lock",
        MACHINE,
        "acceptable = votes.proposal_valid and (s.locked_round == -1 or s.locked_value == v)  # 23",
        "acceptable = votes.proposal_valid  # 23",
        (f"{FAULTS}::test_a_split_brain_proposer_cannot_make_the_validators_it_locked_decide_otherwise",),
    ),
    Mutant(
        "lock-29-ignored",
        "line 29: prevote a re-proposal whatever the lock",
        MACHINE,
        "acceptable = votes.proposal_valid and (s.locked_round <= vr or s.locked_value == v)  # 29",
        "acceptable = votes.proposal_valid  # 29",
        (f"{FAULTS}::test_a_polka_older_than_a_lock_cannot_unlock_it",),
    ),
    Mutant(
        "lock-36-41-never-set",
        "lines 38-39: a polka for the proposal does not lock",
        MACHINE,
        "run.s = replace(run.s, locked_value=v, locked_round=s.round)  # lines 38-39",
        "pass  # lines 38-39",
        (f"{FAULTS}::test_a_split_brain_proposer_cannot_make_the_validators_it_locked_decide_otherwise",),
    ),
    Mutant(
        "lock-29-never-unlocks",
        "line 29: a newer polka (lockedRound <= vr) does not unlock",
        MACHINE,
        "(s.locked_round <= vr or s.locked_value == v)  # 29",
        "(s.locked_round == -1 or s.locked_value == v)  # 29",
        (f"{FAULTS}::test_validators_locked_on_different_values_unlock_once_the_attacker_falls_silent",),
    ),
    Mutant(
        "valid-42-43-never-set",
        "lines 42-43: a polka does not make the value the one to re-propose",
        MACHINE,
        "run.s = replace(run.s, valid_value=v, valid_round=s.round)  # lines 42-43",
        "pass  # lines 42-43",
        (f"{FAULTS}::test_validators_locked_on_different_values_unlock_once_the_attacker_falls_silent",),
    ),
    Mutant(
        "polka-36-at-f+1",
        "line 36: f+1 prevotes are a polka (lock and precommit)",
        MACHINE,
        "if votes.prevotes.power_for(v) < run.vs.quorum:",
        "if votes.prevotes.power_for(v) < run.vs.one_third_plus:",
        (f"{FAULTS}::test_a_split_brain_proposer_cannot_make_the_validators_it_locked_decide_otherwise",),
    ),
    Mutant(
        "polka-28-at-f+1",
        "line 28: a re-proposal's valid round needs only f+1 prevotes",
        MACHINE,
        "if s.round_votes(vr).prevotes.power_for(v) < run.vs.quorum:",
        "if s.round_votes(vr).prevotes.power_for(v) < run.vs.one_third_plus:",
        (f"{MACHINE_TESTS}::test_a_polka_that_includes_a_double_voter_can_still_be_verified_by_everyone",),
    ),
    Mutant(
        "decide-49-at-f+1",
        "line 49: f+1 precommits decide",
        MACHINE,
        "if votes.precommits.power_for(v) < run.vs.quorum:",
        "if votes.precommits.power_for(v) < run.vs.one_third_plus:",
        (f"{FAULTS}::test_a_split_brain_proposer_cannot_make_the_validators_it_locked_decide_otherwise",),
    ),
    Mutant(
        "skip-55-needs-2f+1",
        "line 55: skipping to a later round needs 2f+1 instead of f+1",
        MACHINE,
        "run.s.round_votes(touched).sender_power >= run.vs.one_third_plus",
        "run.s.round_votes(touched).sender_power >= run.vs.quorum",
        (f"{MACHINE_TESTS}::test_f_plus_one_in_a_later_round_skips_ahead",),
    ),
    Mutant(
        "quorum-is-majority",
        "quorum: more than 1/2 of the power instead of more than 2/3",
        VOTES,
        "return self._total * 2 // 3 + 1",
        "return self._total // 2 + 1",
        (f"{FAULTS}::test_a_split_brain_proposer_cannot_make_the_validators_it_locked_decide_otherwise",),
    ),
    Mutant(
        "quorum-counts-duplicates",
        "quorum: a repeated vote counts again (power of distinct validators)",
        VOTES,
        "if first.same_as(vote):\n            return Added(self, False, None)",
        "if False:\n            return Added(self, False, None)",
        (f"{MACHINE_TESTS}::test_a_duplicate_vote_counts_once",),
    ),
    Mutant(
        "proposer-ignores-round",
        "proposer rotation: round r of height h has the proposer of round 0",
        VOTES,
        "cycle[(height + round) % len(cycle)]",
        "cycle[height % len(cycle)]",
        (f"{SIM}::test_four_validators_keep_sealing_with_one_crashed",),
    ),
    Mutant(
        "proposer-unchecked",
        "lines 22/28/36/49 'from proposer(h, r)': a proposal from anyone counts",
        MACHINE,
        "if proposal.proposer != vs.proposer(proposal.height, proposal.round):",
        "if False:",
        (f"{MACHINE_TESTS}::test_a_proposal_from_the_wrong_proposer_is_ignored",),
    ),
    Mutant(
        "signature-cache-keyed-by-signature",
        "validity: a signature verified once vouches for any bytes signed 'by' it (the cache key lacks their digest)",
        VALIDITY,
        "    if not signatures.verify(tx, digest):",
        '    if not signatures.verify(tx, b""):',
        (f"{VALIDITY_TESTS}::test_a_signature_verified_once_never_vouches_for_other_signed_bytes",),
    ),
    Mutant(
        "strict-s-up-to-the-order",
        "Ed25519 strict rule: S equal to the group order passes the encoding check (malleability)",
        CRYPTO,
        '    return int.from_bytes(signature[32:], "little") < _L',
        '    return int.from_bytes(signature[32:], "little") <= _L',
        ("tests/core/test_crypto.py::test_the_strict_pre_check_alone_refuses_every_lenient_case",),
    ),
    Mutant(
        "commit-of-any-block",
        "light client and sync: a commit seals a header whatever block it names (its signatures are valid)",
        LIGHT_CLIENT,
        "    problem = commit_mismatch(header, commit)\n    if problem:\n        return problem\n",
        "",
        (f"{LIGHT_TESTS}::test_a_commit_of_another_block_does_not_seal_a_header",),
    ),
    Mutant(
        "admission-verdict-outlives-party-height",
        "admission: a key judged admitted stays admitted after party executes its suspension",
        "services/consensus/admission.py",
        "        at = (self.party_height, self.time, id(self.state))",
        "        at = (0, self.time, id(self.state))",
        (
            "tests/consensus/test_admission_verdicts.py::test_answers_are_kept_only_while_partys_height_and_the_time_stay",
        ),
    ),
    Mutant(
        "remembered-signature-any-message",
        "light client: a precommit signature remembered as verified counts for another block's commit too",
        LIGHT_CLIENT,
        "    key = (validator, message, signature)",
        '    key = (validator, b"", signature)',
        (f"{LIGHT_TESTS}::test_a_remembered_signature_counts_only_for_the_bytes_it_was_verified_on",),
    ),
    Mutant(
        "state-proof-header-chain-unchecked",
        "light client: a state proof naming this chain is taken with a header of another chain (same keys)",
        LIGHT_CLIENT,
        "if proof.chain_id != chain_id or proof.header.chain_id != chain_id:",
        "if proof.chain_id != chain_id:",
        (f"{STATE_PROOF_TESTS}::test_a_proof_whose_parts_disagree_proves_nothing",),
    ),
    Mutant(
        "state-proof-checkpoint-service-unchecked",
        "light client: a state proof naming one service is taken with another service's checkpoint",
        LIGHT_CLIENT,
        "if proof.service != service or proof.checkpoint.service != service:",
        "if proof.service != service:",
        (f"{STATE_PROOF_TESTS}::test_a_proof_whose_parts_disagree_proves_nothing",),
    ),
)
