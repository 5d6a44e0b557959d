"""Named mutants of the consensus rules, and a time-boxed run of mutmut over the same code.

Why: a test suite can pass forever without being able to fail. Each mutant below is one
precise, plausible bug in a safety or liveness rule of Algorithm 1 ("The latest gossip on
BFT consensus") as ``services/consensus/machine.py`` and ``votes.py`` write it: a lock
check dropped, a polka or commit counted at f+1 instead of 2f+1, a quorum that is a mere
majority, a proposer rotation that ignores the round. The asset layer's safety rules get the
same treatment (``ASSET_MUTANTS``): a hold that can be executed at its expiry or by anyone or
taken back by its owner, a mint past the reserve, a Coco emission that never halves, a transfer
that creates money, a held title that moves. So do the trade flows' (``FLOW_MUTANTS``): a loan
paid out though doc refused its pledge, a document pledged twice, a default a millisecond late,
interest rounded down, an escrow paid on anyone's milestone, a DvP title hold not decided by
trade, a managed hold touched by the generic hold kinds. So does the state tree's storage
(``STATE_MUTANTS``): a node left behind or never stored, a page rewritten without the nodes it
held, an undo that forgets, a moved store trusted unchecked, a scan or an upstream's answer
remembered past the state it read. The suite must kill every one.

How: ``python tools/named_mutants.py`` copies the repository to a temporary directory,
applies one mutant at a time there (an exact ``old`` -> ``new`` text edit that must match
once; the working tree is never touched), runs the tests named for it with
``PYTHONPATH=<copy>/src`` so ``traco`` is imported from the copy, with ``-x`` and the
``mutants`` Hypothesis profile (fixed examples, no shrinking), and prints a table. It
exits 1 naming every mutant that survived, 2 if the setup is broken (an edit no longer
matches, the copy imports the wrong code, or the tests fail without any mutant).
``--only NAME`` picks mutants; ``--all-tests`` runs the whole of ``tests/consensus``
without ``-x`` and lists every test that kills each mutant (to choose the fast killers).

``python tools/named_mutants.py mutmut --minutes 30 --report mutation-report.txt`` runs
mutmut (``pip install -e '.[mutation]'``; its settings are ``[tool.mutmut]`` in
pyproject.toml) on a copy whose ``src/traco`` links are replaced by real directories (mutmut
walks ``src`` and does not follow the links), stops it after the time limit, and writes
the counts and every surviving mutant's diff to the report. ``--flows`` (or ``--mutate GLOB...``
and ``--tests NODE...``) points the copy's settings at the trade flows instead; the repository's
own settings are left as they are.

Caveat: a mutant is judged by the tests listed for it, chosen because they kill it fast;
when a test is renamed, update the list (the setup check fails on a missing test).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "services/consensus/machine.py"
VOTES = "services/consensus/votes.py"
MACHINE_TESTS = "tests/consensus/test_machine.py"
SIM = "tests/consensus/test_simulation.py"
FAULTS = "tests/consensus/test_simulation_faults.py"
IGNORED: tuple[str, ...] = (".venv", ".git", ".hypothesis", ".pytest_cache", "__pycache__", ".mypy_cache")
IGNORED += (".ruff_cache", "traco-data", "mutants", "*.sqlite", "*.sqlite-wal", "*.sqlite-shm")
PYTEST = ("-q", "-p", "no:cacheprovider", "--hypothesis-profile=mutants", "-rf", "--no-header")


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
)


HOLDS = "core/holds.py"
TRC = "services/trade/rules_trc.py"
COCO = "services/trade/coco.py"
TRADE_STATE = "services/trade/mutations.py"
DOC_RULES = "services/doc/rules.py"
DOC_HOLDS = "services/doc/holds.py"
HOLD_TESTS = "tests/trade/test_holds.py"

ASSET_MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "hold-due-a-block-late",
        "holds: a hold whose expiry height is reached may still be executed in that block",
        HOLDS,
        "by_height = hold.expires_height is not None and height >= hold.expires_height",
        "by_height = hold.expires_height is not None and height > hold.expires_height",
        (f"{HOLD_TESTS}::test_expiry_is_exact_at_the_boundary_by_height_and_by_time",),
    ),
    Mutant(
        "hold-anyone-executes",
        "holds: anyone, not only the decider, executes a hold",
        HOLDS,
        "    if by != hold.decider:",
        "    if False:",
        (f"{HOLD_TESTS}::test_execute_in_full_or_in_part_by_the_decider_only",),
    ),
    Mutant(
        "hold-owner-takes-back",
        "holds: the owner releases its own hold before expiry (the promise is broken)",
        HOLDS,
        "    if by == hold.beneficiary:\n        status = HoldStatus.RELEASED_BY_BENEFICIARY",
        "    if by in (hold.beneficiary, hold.owner):\n        status = HoldStatus.RELEASED_BY_BENEFICIARY",
        ("tests/trade/test_tokens.py::test_notary_decides_beneficiary_may_refuse_owner_may_only_renew",),
    ),
    Mutant(
        "hold-overdraws",
        "holds: a hold may take one unit more than is available",
        HOLDS,
        "    if amount > available:",
        "    if amount > available + 1:",
        (f"{HOLD_TESTS}::test_create_checks_id_amount_parties_expiry_funds",),
    ),
    Mutant(
        "trc-mint-past-reserve",
        "TRC: a mint may take supply one unit above the attested reserve",
        TRC,
        "    if m.amount > room:",
        "    if m.amount > room + 1:",
        ("tests/trade/test_trc.py::test_mint_is_bounded_by_the_reserve_and_fails_closed",),
    ),
    Mutant(
        "trc-pending-redemptions-ignored",
        "TRC: pending redemptions no longer reduce the room to mint",
        TRC,
        'return int(last["reserve"]) - q.pending_redemptions(ctx.state) - paid_since - supply',
        'return int(last["reserve"]) - paid_since - supply',
        ("tests/trade/test_trc.py",),
    ),
    Mutant(
        "coco-never-halves",
        "Coco: the epoch amount never halves",
        COCO,
        "    return base_amount(params) >> halvings",
        "    return base_amount(params)",
        ("tests/trade/test_coco.py::test_schedule_halves_after_two_years_of_block_time",),
    ),
    Mutant(
        "transfer-creates-money",
        "tokens: a transfer credits the recipient one unit more than it debits",
        TRADE_STATE,
        '    credit(w, d["token"], d["to"], total=d["amount"])',
        '    credit(w, d["token"], d["to"], total=d["amount"] + 1)',
        ("tests/trade/test_tokens.py::test_transfer_moves_available_balance_and_refuses_what_it_must",),
    ),
    Mutant(
        "title-hold-ignored",
        "doc: a held title moves, is pledged or amended as if it were free",
        DOC_RULES,
        "    if not isinstance(hold_id, str):\n        return None",
        "    if True:\n        return None",
        ("tests/doc/test_holds.py::test_a_held_title_cannot_move_be_pledged_amended_or_held_again",),
    ),
    Mutant(
        "title-hold-never-expires",
        "doc: the hold_expiry clause never returns a due title",
        DOC_HOLDS,
        "            if int(at) > bound:",
        "            if True:",
        ("tests/doc/test_holds.py::test_at_the_expiry_height_the_clause_returns_the_title_in_that_very_block",),
    ),
)
"""Safety rules of the asset layer: holds, supply, title (issue 9). Same harness as the
consensus mutants; each must be killed by the tests named for it."""


LOANS = "services/trade/loans/rules.py"
LOANS_FLOW = "services/trade/loans/flow.py"
LOANS_STATE = "services/trade/loans/state.py"
INTEREST = "services/trade/loans/interest.py"
MANAGED = "services/doc/managed.py"
ESCROW = "services/trade/escrow/rules.py"
ESCROW_FLOW = "services/trade/escrow/flow.py"
DVP = "services/trade/dvp/rules.py"
DVP_FLOW = "services/trade/dvp/flow.py"
LOAN_TESTS = "tests/trade/test_loans.py"
ESCROW_TESTS = "tests/trade/test_escrow.py"
DVP_TESTS = "tests/trade/test_dvp.py"
EDGES = "tests/trade/test_flows_edges.py"
FLOWS_MACHINE = "tests/trade/test_flows_machine.py"

FLOW_MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "pooled-receivable-unliened",
        "doc: a receivable under a securitisation pool's lien is pledged as if it were free",
        DOC_RULES,
        '    lien = record.get("lien")\n    if isinstance(lien, dict):',
        '    lien = record.get("lien")\n    if False:',
        (f"{LOAN_TESTS}::test_a_pooled_invoice_is_under_a_lien_in_doc_and_cannot_be_pledged_there",),
    ),
    Mutant(
        "title-taken-without-payment",
        "trade.title.execute moves a title hold trade decides (a DvP's) for any member",
        "services/trade/rules_commands.py",
        '        if hold is not None and hold.get("notary") == f"service:{SERVICE}":',
        "        if False:",
        (f"{DVP_TESTS}::test_no_one_takes_a_title_trade_decides_without_the_flow",),
    ),
    Mutant(
        "standing-instruction-as-service",
        "loans: the deadline's acceptance commands the pledge with the service's authority, not the borrower's",
        LOANS_FLOW,
        'outcome.events, outcome.commands, req["borrower_key"])',
        "outcome.events, outcome.commands)",
        (f"{LOAN_TESTS}::test_the_best_offer_is_taken_at_the_deadline_with_the_borrowers_authority",),
    ),
    Mutant(
        "loan-disbursed-though-refused",
        "loans: the hold is paid to the borrower even when doc refused the pledge",
        LOANS_FLOW,
        "        if outcome.accepted:\n            paid = close_managed(hold, None,",
        "        if True:\n            paid = close_managed(hold, None,",
        (f"{LOAN_TESTS}::test_two_loans_accepted_at_one_height_on_one_document_cannot_both_stand",),
    ),
    Mutant(
        "doc-pledges-twice",
        "doc: ALREADY_PLEDGED unchecked before a pledge or lien, a document financed twice",
        "services/doc/pledges.py",
        "    if active is not None:\n        return _already_pledged(record, active)\n    return record",
        "    if False:\n        return _already_pledged(record, active)\n    return record",
        (f"{LOAN_TESTS}::test_two_loans_accepted_at_one_height_on_one_document_cannot_both_stand",),
    ),
    Mutant(
        "pledge-on-held-title",
        "doc: a title held for someone else is pledged to the lender",
        "services/doc/pledges.py",
        "    refused = held(record, done)",
        "    refused = None",
        (f"{EDGES}::test_a_held_title_cannot_be_pledged_so_the_loan_is_refused_and_the_lender_repaid",),
    ),
    Mutant(
        "loan-default-a-ms-late",
        "loans: the default clause fires only after default_at, not at it",
        LOANS_STATE,
        "        if int(at) > time:\n            break",
        "        if int(at) >= time:\n            break",
        (f"{LOAN_TESTS}::test_default_exactly_at_maturity_plus_grace_moves_the_title_to_the_lender",),
    ),
    Mutant(
        "loan-repay-at-default",
        "loans: a repayment in the very block of default_at is accepted",
        LOANS,
        '    if ctx.tx.time >= record["default_at"]:',
        '    if ctx.tx.time > record["default_at"]:',
        (f"{LOAN_TESTS}::test_default_exactly_at_maturity_plus_grace_moves_the_title_to_the_lender",),
    ),
    Mutant(
        "interest-rounded-down",
        "interest: the cumulative accrual is rounded down (the lender is paid less than the rate)",
        INTEREST,
        "    return -(-numerator // (BP * YEAR_MS))",
        "    return numerator // (BP * YEAR_MS)",
        ("tests/trade/test_interest.py::test_realistic_tenors_by_hand",),
    ),
    Mutant(
        "payment-to-principal-first",
        "interest: a payment goes to principal first, unpaid interest hides behind it",
        INTEREST,
        "    to_interest = min(amount, owed)\n    to_principal = amount - to_interest",
        "    to_principal = min(amount, position.outstanding)\n    to_interest = amount - to_principal",
        (f"{LOAN_TESTS}::test_partial_then_full_repayment_releases_the_pledge",),
    ),
    Mutant(
        "repayment-to-borrower",
        "loans: the repayment is credited back to the borrower, not the lender",
        LOANS,
        '        to=record["lender"],\n        amount=r.amount,',
        '        to=record["borrower"],\n        amount=r.amount,',
        (f"{LOAN_TESTS}::test_partial_then_full_repayment_releases_the_pledge",),
    ),
    Mutant(
        "loan-closed-short",
        "loans: paying the principal closes the loan though interest is still owed",
        LOANS,
        "    closed = r.amount == due",
        '    closed = r.amount >= record["outstanding"]',
        (f"{EDGES}::test_paying_the_principal_while_interest_is_owed_does_not_close_the_loan",),
    ),
    Mutant(
        "discharge-not-sent",
        "loans: the loan is repaid but doc is never told to release the pledge",
        LOANS,
        "        commands = (Command(target=DOC, kind=PLEDGE_DISCHARGE, payload=payload),)",
        "        commands = ()",
        (f"{LOAN_TESTS}::test_partial_then_full_repayment_releases_the_pledge",),
    ),
    Mutant(
        "enforce-to-holder",
        "doc managed pledge: enforcement leaves the title with the defaulting holder",
        MANAGED,
        '"from": record["holder"], "to": terms["financier"]}',
        '"from": record["holder"], "to": record["holder"]}',
        (f"{LOAN_TESTS}::test_default_exactly_at_maturity_plus_grace_moves_the_title_to_the_lender",),
    ),
    Mutant(
        "loan-title-held-against-enforcement",
        "doc: a title under a loan's managed pledge is held for someone, so the default cannot take it",
        "services/doc/holds.py",
        '    if pledge is not None and pledge.get("manager") is not None:',
        "    if False:",
        (f"{LOAN_TESTS}::test_a_loans_pledged_title_cannot_be_held_so_enforcement_is_never_blocked",),
    ),
    Mutant(
        "loan-refused-hold-kept",
        "loans: a refused loan keeps the lender's TRC held (until the hold expires)",
        LOANS_FLOW,
        '        return (back, Event("LoanRefused", f"loan:{loan_id}", refused))',
        '        return (Event("LoanRefused", f"loan:{loan_id}", refused),)',
        (f"{EDGES}::test_a_refused_loan_frees_the_lenders_trc_at_once_and_closes_its_request",),
    ),
    Mutant(
        "loan-refused-request-open",
        "loans: a refused loan leaves its request open (to be accepted again on a taken loan id)",
        LOANS_STATE,
        '    req["status"] = "refused"',
        '    req["status"] = "open"',
        (f"{EDGES}::test_a_refused_loan_frees_the_lenders_trc_at_once_and_closes_its_request",),
    ),
    Mutant(
        "escrow-milestone-from-anyone",
        "escrow: a milestone pays whoever reported it, not only the escrow's reporter",
        ESCROW_FLOW,
        ' or release["reporter"] != report["by"]:',
        ":",
        (f"{EDGES}::test_only_the_named_reporters_milestone_pays_even_against_the_issuers",),
    ),
    Mutant(
        "escrow-old-milestone-counts",
        "escrow: a milestone recorded before the escrow opened releases it",
        ESCROW_FLOW,
        '            if seen < record["opened"]["height"]:',
        "            if False:",
        (f"{ESCROW_TESTS}::test_a_delivery_before_the_escrow_opened_does_not_pay_it",),
    ),
    Mutant(
        "escrow-resolve-undisputed",
        "escrow: the arbiter resolves an escrow nobody disputed",
        ESCROW,
        '    if record["status"] != "disputed":\n        return reject(EscrowCode.NOT_DISPUTED',
        "    if False:\n        return reject(EscrowCode.NOT_DISPUTED",
        (f"{EDGES}::test_the_arbiter_cannot_resolve_an_escrow_that_is_not_disputed",),
    ),
    Mutant(
        "escrow-anyone-resolves",
        "escrow: once an arbiter is named, any member may resolve a dispute",
        ESCROW,
        "    if arbiter is None or ctx.sender != arbiter:",
        "    if arbiter is None and ctx.sender != arbiter:",
        (f"{EDGES}::test_only_the_arbiter_resolves_and_may_award_everything_to_the_seller",),
    ),
    Mutant(
        "escrow-dispute-not-extended",
        "escrow: a dispute does not extend the hold, expiry refunds the buyer before the arbiter",
        ESCROW,
        "    until = max(hold.expires_time or 0, ctx.tx.time + window)",
        "    until = hold.expires_time or 0",
        (f"{ESCROW_TESTS}::test_a_dispute_freezes_it_until_the_arbiter_splits_it",),
    ),
    Mutant(
        "escrow-expiry-pays-seller",
        "escrow: an expired escrow is recorded as paid to the seller",
        ESCROW_FLOW,
        '    return (rules.closed_event(escrow_id, "expired", 0, record["amount"],',
        '    return (rules.closed_event(escrow_id, "expired", record["amount"], record["amount"],',
        (f"{EDGES}::test_an_expired_escrow_records_everything_returned_to_the_buyer",),
    ),
    Mutant(
        "dvp-paid-though-refused",
        "dvp: the buyer's TRC goes to the seller although doc refused the title",
        DVP_FLOW,
        "    moved = close_managed(hold, None if outcome.accepted else 0,",
        "    moved = close_managed(hold, None,",
        (f"{DVP_TESTS}::test_when_doc_refuses_the_title_the_payment_returns_to_the_buyer",),
    ),
    Mutant(
        "dvp-title-expiring-at-settle-by+1",
        "dvp: allocate accepts a title hold that expires at settle_by + 1, when doc would execute it",
        DVP,
        'problems = _title_problems(record, hold, record["settle_by"] + TITLE_HOLD_MARGIN)',
        'problems = _title_problems(record, hold, record["settle_by"] + 1)',
        (f"{EDGES}::test_allocate_refuses_a_title_hold_not_made_for_this_settlement",),
    ),
    Mutant(
        "dvp-settle-trusts-allocation",
        "dvp: settle does not read the title hold again (trusts what allocate saw)",
        DVP,
        "    problems = _title_problems(record, title, h + 2)",
        "    problems: list[str] = []",
        (
            "tests/trade/test_flows_edges_dvp.py::test_settle_reads_the_title_hold_again_and_refuses_once_the_buyer_released_it",
        ),
    ),
    Mutant(
        "dvp-title-notary-unchecked",
        "dvp: allocate accepts a title hold whose notary is not service:trade",
        DVP,
        '        "notary": AUTHORITY,\n',
        "",
        (f"{EDGES}::test_allocate_refuses_a_title_hold_not_made_for_this_settlement",),
    ),
    Mutant(
        "dvp-title-beneficiary-unchecked",
        "dvp: allocate accepts a title hold whose beneficiary is not the buyer",
        DVP,
        '        "beneficiary": record["buyer"],\n',
        "",
        (f"{EDGES}::test_allocate_refuses_a_title_hold_not_made_for_this_settlement",),
    ),
    Mutant(
        "managed-hold-generic-kinds",
        "managed holds: trade.hold.* may release or execute a flow's hold",
        "services/trade/rules_tokens.py",
        "    if found.is_open and is_managed(hold_id):",
        "    if False:",
        (f"{ESCROW_TESTS}::test_confirmation_pays_the_seller_and_nothing_else_can_touch_the_hold",),
    ),
    Mutant(
        "exchange-fill-at-taker-price",
        "exchange: a fill executes at the taker's price instead of the maker's",
        "services/trade/orderbook.py",
        "price=maker.price,\n                qty=qty,\n                quote=quote_amount(qty, lot, maker.price)",
        "price=taker.price,\n                qty=qty,\n                quote=quote_amount(qty, lot, taker.price)",
        ("tests/trade/test_exchange_machine.py",),
    ),
    Mutant(
        "abs-junior-interest-first",
        "abs waterfall: interest is paid junior tranche first, before the senior's is met",
        "services/trade/waterfall.py",
        "        for j, name in enumerate(names):\n"
        '            interest_paid[j] = purse.pay("interest", name, interest_due[j], draw=True)',
        "        for j, name in reversed(list(enumerate(names))):\n"
        '            interest_paid[j] = purse.pay("interest", name, interest_due[j], draw=True)',
        ("tests/trade/test_waterfall.py::test_every_period_conserves_and_respects_seniority",),
    ),
)

SMT_TREE = "core/smt_tree.py"
TREE_STORE = "core/tree_store.py"
TREE_TESTS = "tests/core/test_tree_store.py"
EVERY_HEIGHT = f"{TREE_TESTS}::test_every_height_keeps_its_tree_by_position_and_the_one_before_still_proves"

STATE_MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "tree-climbing-leaf-left-behind",
        "state tree: a leaf that climbs after its sibling's delete is also left where it was",
        SMT_TREE,
        "        self.vacate(position, raw)\n        return raw",
        "        return raw",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-moved-leaf-left-behind",
        "state tree: a leaf pushed down by a new neighbour is also left at its old position",
        SMT_TREE,
        "        if built[0] != node:  # the leaf went (stale) or moves down (placed anew below)\n"
        "            self.vacate(position, raw)",
        "        if False:\n            self.vacate(position, raw)",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-child-leaf-unplaced",
        "state tree: a new left child leaf is never stored (the root is right, the store is not)",
        SMT_TREE,
        "            placed[(position[0] + 1, 2 * position[1])] = left[2]",
        "            pass",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-page-thought-new",
        "state tree: every changed page is written as if it were new, dropping the nodes it held",
        TREE_STORE,
        "            slots = touched[page] = before.page(page) if was.get(page) is not None else {}",
        "            slots = touched[page] = {}",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-undo-forgets",
        "state tree: the undo records no page as it was, so the tree before cannot be proven",
        TREE_STORE,
        "        previous[name] = before.record(page) if was.get(page) is not None else None",
        "        previous[name] = None",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-migration-unchecked",
        "state tree: a store moved from nodes by hash is trusted without checking its state's root",
        TREE_STORE,
        "    if rebuilt.root != root:",
        "    if False:",
        (f"{TREE_TESTS}::test_a_store_whose_state_does_not_hash_to_its_root_is_not_moved",),
    ),
    Mutant(
        "scan-run-outlives-commit",
        "SQLite: a scan remembered before a commit still answers after it (stale state read)",
        "core/adapters/sqlite_state.py",
        "        self._runs.clear()  # the scans remembered were of the store before this commit",
        "        pass",
        ("tests/core/test_sqlite_scan_runs.py::test_a_commit_is_seen_by_the_next_scan",),
    ),
    Mutant(
        "upstream-memo-outlives-block",
        "execution: an upstream's answers are remembered across blocks (a suspended member still submits)",
        "core/domain.py",
        "    memo = view.memo\n",
        '    memo = remembered.__dict__.setdefault("memo", {})\n',
        ("tests/core/test_upstream_memo.py::test_a_member_suspended_between_blocks_is_refused_in_the_next_block",),
    ),
)
"""Safety rules of the trade flows (issue 10): loans and doc's managed pledges, escrow, DvP,
managed holds, the exchange's maker price and the abs waterfall's seniority. Killers are the
flows' story tests on the whole dev chain, ``test_flows_edges.py`` for the edges those walk
past, and the exchange and waterfall property tests."""


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # killed, survived, timeout
    killers: list[str]
    seconds: float


# ---------------------------------------------------------------------------------------------
# A copy of the repository to mutate


def copy_repo(into: Path, *, real_src: bool = False) -> Path:
    """Copy the repository (sources and tests, no venv or git) to ``into/repo``. With
    ``real_src`` the ``src/traco`` links become directories (for tools that do not follow
    links)."""
    dst = into / "repo"
    shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    if real_src:
        for link in [p for p in (dst / "src" / "traco").iterdir() if p.is_symlink()]:
            target = (ROOT / "src" / "traco" / link.name).resolve()
            link.unlink()
            shutil.copytree(target, link, ignore=shutil.ignore_patterns(*IGNORED))
    return dst


def copy_env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # an edit of the same size within a second must not hit a stale .pyc
    return env


def check_imports_copy(repo: Path) -> None:
    code = (
        "import traco.services.consensus.machine as m, traco.services.consensus.votes as v;"
        " print(m.__file__, v.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=copy_env(repo), capture_output=True, text=True)
    files = out.stdout.split()
    if (
        out.returncode != 0
        or len(files) != 2
        or not all(Path(f).resolve().is_relative_to(repo.resolve()) for f in files)
    ):
        sys.exit(f"setup: the copy at {repo} does not import its own consensus code: {out.stdout}{out.stderr}")


# ---------------------------------------------------------------------------------------------
# Named mutants


def run_tests(repo: Path, tests: Sequence[str], *, stop_first: bool, timeout_s: float) -> tuple[int | None, str]:
    """pytest's exit code (None on timeout) and its output."""
    cmd = [sys.executable, "-m", "pytest", *PYTEST, *(["-x"] if stop_first else []), *tests]
    proc = subprocess.Popen(
        cmd,
        cwd=repo,
        env=copy_env(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


def failed_tests(output: str) -> list[str]:
    return [m.group(1).split("[")[0] for m in re.finditer(r"^FAILED (\S+)", output, re.MULTILINE)]


def judge(repo: Path, mutant: Mutant, *, all_tests: bool, timeout_s: float) -> Outcome:
    target = repo / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        found = original.count(mutant.old)
        sys.exit(f"setup: mutant {mutant.name}: the text to replace occurs {found} times in {mutant.path}")
    target.write_text(original.replace(mutant.old, mutant.new))
    started = time.monotonic()
    try:
        tests = ["tests/consensus"] if all_tests else list(mutant.tests)
        code, output = run_tests(repo, tests, stop_first=not all_tests, timeout_s=timeout_s)
    finally:
        target.write_text(original)
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(mutant, "timeout", [], seconds)
    killers = failed_tests(output)
    if code == 1 and killers:
        return Outcome(mutant, "killed", killers, seconds)
    if code == 0:
        return Outcome(mutant, "survived", [], seconds)
    sys.exit(f"setup: mutant {mutant.name}: pytest exited {code} without a failing test:\n{output[-3000:]}")


def print_table(outcomes: Sequence[Outcome]) -> None:
    rows = [("mutant", "rule", "result", "killed by", "s")]
    for o in outcomes:
        killer = ", ".join(k.split("::")[-1] for k in o.killers) or "-"
        rows.append((o.mutant.name, o.mutant.rule, o.verdict, killer, f"{o.seconds:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4].rjust(6))


def named(args: argparse.Namespace) -> int:
    everything = (*MUTANTS, *ASSET_MUTANTS, *FLOW_MUTANTS, *STATE_MUTANTS)
    chosen = [m for m in everything if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in everything}
    if unknown:
        sys.exit(f"unknown mutants: {sorted(unknown)}; known: {[m.name for m in everything]}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="traco-mutants-") as tmp:
        repo = copy_repo(Path(tmp))
        check_imports_copy(repo)
        baseline = ["tests/consensus"] if args.all_tests else sorted({t for m in chosen for t in m.tests})
        code, output = run_tests(repo, baseline, stop_first=False, timeout_s=args.timeout * 4)
        if code != 0:
            print(output[-5000:])
            print("setup: the tests fail (or time out, or are missing) without any mutant", file=sys.stderr)
            return 2
        outcomes = []
        for mutant in chosen:
            outcomes.append(judge(repo, mutant, all_tests=args.all_tests, timeout_s=args.timeout))
            print(f"{mutant.name}: {outcomes[-1].verdict} ({outcomes[-1].seconds:.1f} s)", flush=True)
    print()
    print_table(outcomes)
    survivors = [o.mutant.name for o in outcomes if o.verdict == "survived"]
    print(f"\n{len(outcomes) - len(survivors)}/{len(outcomes)} killed in {time.monotonic() - started:.0f} s")
    if survivors:
        print(f"SURVIVED: {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# mutmut, time-boxed


FLOW_MUTMUT_PATHS: tuple[str, ...] = (
    *(f"services/trade/{flow}/{part}.py" for flow in ("loans", "escrow", "dvp") for part in ("rules", "state", "flow")),
    "services/trade/loans/interest.py",
    "services/doc/managed.py",
)
"""What ``mutmut --flows`` mutates: the trade flows' rules, records and clauses, and doc's
managed pledges (issue 10). Not their ``payloads.py``/``events.py``: pydantic models whose
mutants are field descriptions, thousands of them, that would eat the time box."""
FLOW_MUTMUT_TESTS: tuple[str, ...] = (
    "tests/trade/test_loans.py",
    "tests/trade/test_escrow.py",
    "tests/trade/test_dvp.py",
    "tests/trade/test_interest.py::test_realistic_tenors_by_hand",
    "tests/trade/test_interest.py::test_partial_repayments_cost_what_one_repayment_would",
    "tests/trade/test_flows_edges.py",
    "tests/trade/test_flows_edges_dvp.py",
    "tests/trade/test_flows_machine.py",
)
"""The flows' tests for mutmut. test_interest's Hypothesis test is left out: under mutmut's
instrumentation its input generation trips Hypothesis's too_slow health check on a loaded
machine, and mutmut then refuses to start (its by-hand tests stay)."""


def restrict_mutmut(repo: Path, mutate: Sequence[str], tests: Sequence[str]) -> list[str]:
    """Point the COPY's ``[tool.mutmut]`` at other files and tests (the repository's own settings,
    the consensus scope, stay as they are for everyone else). Paths are repository-relative
    (``services/trade/loans/*.py``); mutmut sees them under ``src/traco``."""
    config = repo / "pyproject.toml"
    text = config.read_text()
    replaced = {
        "only_mutate": [f"src/traco/{m}" for m in mutate],
        "pytest_add_cli_args_test_selection": list(tests),
    }
    for key, values in replaced.items():
        if not values:
            continue
        pattern = re.compile(rf"^{key} = \[.*?\]$", re.MULTILINE | re.DOTALL)
        rendered = f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in values)}]"
        text, count = pattern.subn(rendered.replace("\\", "\\\\"), text, count=1)
        if count != 1:
            sys.exit(f"setup: [tool.mutmut] in {config} has no {key} line to replace")
    config.write_text(text)
    return list(mutate) or [MACHINE, VOTES]


def mutmut_run(args: argparse.Namespace) -> int:
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if mutmut is None:
        sys.exit("mutmut is not installed: pip install -e '.[mutation]'")
    report = Path(args.report).resolve()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="traco-mutmut-"))
    repo = work / "repo"
    if not repo.exists():
        copy_repo(work, real_src=True)
    mutate = list(args.mutate or (FLOW_MUTMUT_PATHS if args.flows else ()))
    tests = list(args.tests or (FLOW_MUTMUT_TESTS if args.flows else ()))
    scope = restrict_mutmut(repo, mutate, tests) if mutate or tests else [MACHINE, VOTES]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    print(f"mutmut in {repo} for at most {args.minutes} min", flush=True)
    with open(work / "mutmut-run.log", "w") as log:
        proc = subprocess.Popen(
            [mutmut, "run", "--max-children", str(args.children)],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=args.minutes * 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = None
    elapsed = time.monotonic() - started
    results = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=repo, env=env, capture_output=True, text=True
    ).stdout
    statuses: dict[str, list[str]] = {}
    for line in results.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            statuses.setdefault(status, []).append(name)
    survivors = statuses.get("survived", [])
    lines = [
        f"mutmut over {', '.join(scope)}: {'stopped at the time limit' if code is None else f'exit {code}'}"
        f" after {elapsed / 60:.1f} min (limit {args.minutes} min), {args.children} children",
        f"command: mutmut run --max-children {args.children} (in {repo}; settings: [tool.mutmut] in pyproject.toml)",
        f"mutants: {sum(len(v) for v in statuses.values())}",
        *(f"  {status}: {len(names)}" for status, names in sorted(statuses.items())),
        "",
        "survivors:",
    ]
    for name in survivors:
        diff = subprocess.run([mutmut, "show", name], cwd=repo, env=env, capture_output=True, text=True).stdout
        lines += [f"--- {name}", diff.rstrip(), ""]
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: lines.index("survivors:")]))
    print(f"report: {report}; mutmut's own files: {repo / 'mutants'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--all-tests", action="store_true", help="run all of tests/consensus, list every killer")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant (default 300)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    tool = sub.add_parser("mutmut", help="a time-boxed mutmut run over machine.py and votes.py")
    tool.add_argument("--minutes", type=float, default=30, help="time limit (default 30)")
    tool.add_argument("--report", default="mutation-report.txt", help="where to write the report")
    tool.add_argument("--children", type=int, default=2, help="parallel mutmut workers (default 2)")
    tool.add_argument("--workdir", help="reuse (resume) this directory instead of a fresh temporary one")
    tool.add_argument("--flows", action="store_true", help="mutate the trade flows (FLOW_MUTMUT_PATHS) instead")
    tool.add_argument("--mutate", nargs="+", metavar="GLOB", help="repository paths to mutate (in the copy only)")
    tool.add_argument("--tests", nargs="+", metavar="NODE", help="the tests mutmut runs (in the copy only)")
    args = parser.parse_args(argv)
    if args.command == "mutmut":
        return mutmut_run(args)
    if args.list:
        for m in (*MUTANTS, *ASSET_MUTANTS, *FLOW_MUTANTS, *STATE_MUTANTS):
            print(f"{m.name}: {m.rule}\n  {m.path}: {m.old!r}\n  -> {m.new!r}")
        return 0
    return named(args)


if __name__ == "__main__":
    sys.exit(main())
