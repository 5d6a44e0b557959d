"""TracoTrade's rules (architecture: The code (trade)): a token ledger with holds, TRC against attested reserves,
Coco's fixed supply and emission, equity-anchored tokens, and commands to doc.

This module is the ``Domain`` the service runtime drives (``traco.core.domain``): ``TRADE.execute``
decides one ``trade.*`` transaction (or a command another service sent it), ``TRADE.mutate``
applies one event, ``TRADE.genesis`` seeds height 0 from the genesis file's ``trade`` section,
``TRADE.end_block`` runs the clauses, ``TRADE.on_command_outcome`` records what became of a
command it sent. All pure: block height and time only, integer amounts, no I/O.

The work is split by concern: ``payloads`` (schemas), ``ledger`` (context, party reads, balance
and eligibility checks), ``rules_tokens`` / ``rules_trc`` / ``rules_equity`` / ``rules_commands``
(decisions per area), ``clauses`` and ``coco`` (end of block), ``mutations`` (state), ``queries``
(key layout and reads), ``genesis`` (the section), ``codes`` (kinds, clauses, receipt codes).

Kinds (payload schemas in ``payloads.py``)::

    trade.transfer          token, to, amount, memo?
    trade.hold.create       hold_id, token, beneficiary, amount, notary?, expires_height?, expires_time?
    trade.hold.execute      hold_id, amount?            (the notary, else the beneficiary)
    trade.hold.release      hold_id                     (the beneficiary or the notary)
    trade.hold.renew        hold_id, expires_height?, expires_time?   (the owner; later only)
    trade.trc.attest        reserve, as_of, seq         (a custodian; threshold of equal ones)
    trade.trc.mint          to, amount                  (a custodian, within attested reserve)
    trade.trc.redeem        amount, custodian           (burn; Coco fee to the custodian)
    trade.trc.redeemed      redemption_id               (the custodian paid the fiat)
    trade.trc.freeze        account, reason             (the compliance role)
    trade.trc.unfreeze      account, reason
    trade.equity.define     token, name, security, ratio_tokens, ratio_shares, circulation,
                            exercise{centre, settlement_agent, custodian}, max_tokens?
    trade.equity.issue      token, to, amount, shares   (the custodian)
    trade.equity.exercise   token, amount               (holds the tokens; files an instruction)
    trade.equity.settled    exercise_id, accepted, reason?  (the settlement agent)
    trade.equity.statement  token, anchor_tx_id, digest, shares  (the custodian: a custody statement)
    trade.title.execute     hold_id                     (a command to doc: doc.hold.execute)

Who may submit: party decides (``may_submit``), else ``NOT_PERMITTED``; every account is a party
member id (the sender's is found from its key), so a key rotation keeps balances.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from traco.core.domain import BlockContext, ClauseEffect, CommandOutcome, Event, Outcome, StateView, TxContext
from traco.services.trade import (
    clauses,
    codes,
    flows,
    genesis,
    governed,
    mutations,
    payloads,
    rules_commands,
    rules_equity,
)
from traco.services.trade import rules_tokens as tokens
from traco.services.trade import rules_trc as trc
from traco.services.trade.codes import Code, reject
from traco.services.trade.ledger import Context, PartyQueries, sender_account

PARTY_QUERIES_MODULE = "traco.services.party.queries"

Rule = Callable[[Context, Any], Outcome]

RULES: dict[str, Rule] = {
    codes.TRANSFER: tokens.transfer,
    codes.HOLD_CREATE: tokens.hold_create,
    codes.HOLD_EXECUTE: tokens.hold_execute,
    codes.HOLD_RELEASE: tokens.hold_release,
    codes.HOLD_RENEW: tokens.hold_renew,
    codes.TRC_ATTEST: trc.attest,
    codes.TRC_MINT: trc.mint,
    codes.TRC_REDEEM: trc.redeem,
    codes.TRC_REDEEMED: trc.redeemed,
    codes.TRC_FREEZE: trc.freeze,
    codes.TRC_UNFREEZE: trc.unfreeze,
    codes.EQUITY_DEFINE: rules_equity.define,
    codes.EQUITY_ISSUE: rules_equity.issue,
    codes.EQUITY_EXERCISE: rules_equity.exercise,
    codes.EQUITY_SETTLED: rules_equity.settled,
    codes.EQUITY_STATEMENT: rules_equity.statement,
    codes.TITLE_EXECUTE: rules_commands.title_execute,
}


class TradeDomain:
    """The trade service's ``Domain``.

    ``party`` supplies the party reads; by default the module ``traco.services.party.queries``,
    imported on first use (importing this module never depends on the party package).
    """

    service = codes.SERVICE
    kinds = codes.KINDS | flows.FLOW_KINDS
    command_kinds: frozenset[str] = frozenset()
    """No service commands trade yet (the bridge will: holds on tokens)."""
    upstream_keeps: Mapping[str, tuple[str, ...] | None] = {"party": None, "doc": ("doc/", "hold/", "reached/")}
    """The upstream state trade keeps, by key prefix (architecture: Execution upstream filters): all of party
    (small, and its own ``mutate`` reads across its keys while trade projects it), and of doc only
    the documents' records (holder, pledge, hold), the title holds and the milestones by height
    (``reached/``, which escrow releases on) — not their histories,
    hashes or shared keys, the bulk of doc's state. Doc is upstream so that trade sees the
    outcomes of the commands it sends doc."""

    def __init__(self, party: PartyQueries | None = None) -> None:
        self._party = party

    @property
    def party(self) -> PartyQueries:
        if self._party is None:
            self._party = cast(PartyQueries, importlib.import_module(PARTY_QUERIES_MODULE))
        return self._party

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        """Decide one ``trade.*`` transaction; bad input is a ``Rejected``, never an exception."""
        rule = RULES.get(tx.kind)
        if rule is None and tx.rules >= codes.FLOWS_SINCE:
            rule = flows.RULES.get(tx.kind)
        if rule is None:
            return reject(Code.UNKNOWN_KIND, f"{tx.kind!r} is not a trade transaction kind")
        members = upstream[codes.PARTY]
        party = self.party
        if tx.origin is None and not party.may_submit(members, tx.sender, tx.kind, tx.time):
            return reject(Code.NOT_PERMITTED, f"party does not permit {tx.sender} to submit {tx.kind}")
        sender = sender_account(party, members, tx)
        if sender is None:
            return reject(Code.NOT_A_MEMBER, f"{tx.sender} is not an admitted member's key")
        parsed = payloads.parse(tx.kind, tx.payload)
        if isinstance(parsed, str):
            return reject(Code.INVALID_PAYLOAD, parsed)
        return rule(Context(state=state, members=members, party=party, tx=tx, sender=sender, upstream=upstream), parsed)

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        """The writes of one trade event (see ``mutations``)."""
        return mutations.mutate(state, event)

    def genesis(self, section: Mapping[str, Any] | None, chain_genesis: Any) -> Sequence[Event]:
        """Height 0 from the genesis file's ``trade`` section (see ``genesis``)."""
        return genesis.genesis_events(section, chain_genesis)

    def end_block(
        self, state: StateView, upstream: Mapping[str, StateView], block: BlockContext
    ) -> Sequence[ClauseEffect]:
        """Hold expiry and Coco epochs (see ``clauses``)."""
        return clauses.end_block(state, upstream, block, cast(governed.CouncilParams, self.party))

    def on_command_outcome(
        self, state: StateView, upstream: Mapping[str, StateView], outcome: CommandOutcome, block: BlockContext
    ) -> Sequence[Event]:
        """Record what doc did with a command trade sent (see ``rules_commands``), and let the
        flow that sent it complete or unwind (``flows.on_outcome``)."""
        return [*rules_commands.on_outcome(state, outcome, block), *flows.on_outcome(state, outcome, block)]


TRADE = TradeDomain()
"""The trade rules as the runtime uses them."""

__all__ = ["TRADE", "PartyQueries", "TradeDomain"]
