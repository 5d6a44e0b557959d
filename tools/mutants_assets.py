"""Named mutants of the asset layer's safety rules (holds, supply, title; issue 9).

A hold that can be executed at its expiry or by anyone or taken back by its owner, a mint past
the reserve, a Coco emission that never halves, a transfer that creates money, a held title
that moves."""

from __future__ import annotations

from mutants_consensus import Mutant

HOLDS = "core/holds.py"
TRC = "services/trade/rules_trc.py"
COCO = "services/trade/coco.py"
TRADE_STATE = "services/trade/mutations.py"
DOC_RULES = "services/doc/rules.py"
DOC_HOLDS = "services/doc/holds.py"
DOC_MANAGED = "services/doc/managed.py"
TOKEN_RULES = "services/trade/rules_tokens.py"
AMOUNT_HOLDS = "tests/trade/test_holds_of_amounts.py"
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
        "trc-paid-after-forgotten",
        "TRC: a new attestation forgets the fiat paid out after the previous one's as_of",
        TRADE_STATE,
        "    previous = w.get(q.RESERVE)\n",
        "    previous = None\n",
        ("tests/trade/test_trc.py::test_fiat_paid_after_an_as_of_keeps_counting_through_the_next_attestation",),
    ),
    Mutant(
        "coco-pool-overdrawn",
        "Coco: an epoch may pay one unit more than the pool holds",
        TRADE_STATE,
        "    if pool < 0:",
        "    if pool < -1:",
        ("tests/trade/test_writer.py::test_an_epoch_may_empty_the_coco_pool_but_never_overdraw_it",),
    ),
    Mutant(
        "coco-zero-payouts-listed",
        "Coco: holders whose share rounds to nothing are listed as paid",
        COCO,
        "    payouts: list[list[Any]] = [[a, part] for a, part in shares if part > 0]",
        "    payouts: list[list[Any]] = [[a, part] for a, part in shares if part >= 0]",
        ("tests/trade/test_coco.py::test_an_epoch_lists_only_the_holders_it_pays",),
    ),
    Mutant(
        "title-to-a-suspended-beneficiary",
        "doc: a notary executes a title hold though its beneficiary is no longer an admitted member",
        DOC_HOLDS,
        '    if to is None or to["member_id"] != done.beneficiary:',
        '    if to is not None and to["member_id"] != done.beneficiary:',
        ("tests/doc/test_holds_edges.py::test_a_held_title_never_goes_to_a_beneficiary_who_is_no_longer_admitted",),
    ),
    Mutant(
        "hold-for-an-ineligible-beneficiary",
        "trade: an amount is held for a beneficiary who may not hold the token (TRC for a member without KYC)",
        TOKEN_RULES,
        "    refused = can_receive(ctx, cls, h.token, h.beneficiary)\n",
        "    refused = None\n",
        (f"{AMOUNT_HOLDS}::test_a_hold_names_only_a_beneficiary_who_may_hold_the_token_and_an_admitted_notary",),
    ),
    Mutant(
        "hold-pays-out-of-a-frozen-account",
        "trade: a hold is executed though its owner's token is frozen",
        TOKEN_RULES,
        "    freeze = q.frozen(ctx.state, hold.asset, hold.owner)",
        "    freeze = None",
        (f"{AMOUNT_HOLDS}::test_a_hold_does_not_pay_out_of_a_frozen_account_or_to_one_no_longer_eligible",),
    ),
    Mutant(
        "managed-pledge-ended-by-another-service",
        "doc: any service naming the record may discharge or enforce a pledge another service placed",
        DOC_MANAGED,
        '    if terms is None or terms.get("manager") != manager or terms.get("reference") != p.reference:',
        '    if terms is None or terms.get("reference") != p.reference:',
        ("tests/doc/test_managed.py::test_only_the_placing_service_naming_its_record_discharges",),
    ),
    Mutant(
        "consent-malformed-hex-verifies",
        "doc: a holder's consent whose key or signature is not hex counts as verified",
        "services/doc/consent.py",
        "    except ValueError:\n        return False",
        "    except ValueError:\n        return True",
        ("tests/doc/test_holds_edges.py::test_a_consent_with_malformed_hex_does_not_verify",),
    ),
    Mutant(
        "lapsed-pledge-held-an-extra-instant",
        "doc: a pledge still binds the holder at the very instant it expires",
        "services/doc/pledges.py",
        '    in_force = ctx.tx.time < terms["expires_at"]',
        '    in_force = ctx.tx.time <= terms["expires_at"]',
        ("tests/doc/test_holds_edges.py::test_the_holder_frees_a_lapsed_pledge_from_the_instant_it_expires",),
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
