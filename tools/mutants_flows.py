"""Named mutants of the trade flows' safety rules (issue 10).

A loan paid out though doc refused its pledge, a document pledged twice, a default a
millisecond late, interest rounded down, an escrow paid on anyone's milestone, a DvP title hold
not decided by trade, a managed hold touched by the generic hold kinds, the exchange's maker
price and the abs waterfall's seniority."""

from __future__ import annotations

from mutants_assets import DOC_RULES
from mutants_consensus import Mutant

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
    Mutant(
        "abs-senior-fee-arrears-forgotten",
        "abs waterfall: a senior fee the period could not pay is not carried to the next",
        "services/trade/waterfall.py",
        "        senior_fee=replace(deal.senior_fee, unpaid=senior_due - senior_paid),",
        "        senior_fee=deal.senior_fee,",
        ("tests/trade/test_waterfall.py::test_every_period_conserves_and_respects_seniority",),
    ),
    Mutant(
        "abs-pool-drops-fee-rate",
        "abs: a pool's deal is written without its senior fee's rate, so the fee never accrues on the pool",
        "services/trade/abs/rules.py",
        "        senior_fee=wf.Fee(rate_bp=a.fees.senior.rate_bp, fixed=a.fees.senior.fixed),",
        "        senior_fee=wf.Fee(fixed=a.fees.senior.fixed),",
        ("tests/trade/test_abs_records.py::test_the_pool_record_holds_the_terms_as_given",),
    ),
    Mutant(
        "abs-sub-fee-to-senior-recipient",
        "abs: the subordinated fee is paid to the senior fee's recipient",
        "services/trade/abs/rules.py",
        '    pay(record["fees"]["sub"]["to"], dist.paid_to("sub_fee", wf.SUB_FEE))',
        '    pay(record["fees"]["senior"]["to"], dist.paid_to("sub_fee", wf.SUB_FEE))',
        (
            "tests/trade/test_abs_records.py::test_the_subordinated_fee_reaches_its_recipient_once_the_notes_are_retired",
        ),
    ),
    Mutant(
        "exchange-rehold-id-reused",
        "exchange: a maker filled in parts is held anew under the hold id it had before",
        "services/trade/exchange/state.py",
        '        maker["holds"] += 1',
        '        maker["holds"] = 1',
        ("tests/trade/test_exchange_edges.py::test_a_maker_filled_in_parts_is_held_anew_each_time",),
    ),
    Mutant(
        "exchange-maker-eligibility-for-the-wrong-token",
        "exchange: a resting sell is settled though its owner may no longer hold the TRC it would get",
        "services/trade/exchange/rules.py",
        '        gets = self.pair["base"] if order.side is ob.Side.BUY else self.pair["quote"]',
        '        gets = self.pair["base"]',
        (
            "tests/trade/test_exchange_edges.py::test_a_maker_is_passed_over_only_if_it_may_not_receive_what_it_would_get",
        ),
    ),
)
"""Safety rules of the trade flows (issue 10): loans and doc's managed pledges, escrow, DvP,
managed holds, the exchange's maker price, its partial fills' holds and its makers' eligibility, the abs waterfall's
seniority and arrears, and a pool's fees. Killers are the
flows' story tests on the whole dev chain, ``test_flows_edges.py`` for the edges those walk
past, and the exchange and waterfall property tests."""
