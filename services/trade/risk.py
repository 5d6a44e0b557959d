"""One member's exposure and concentration (``GET /risk/{member}``, ``traco risk``): pure reads.

Why it reads so little: the loan mutators keep running figures per member (``risk_state``), so
the view reads the member's total, one prefix of counterparties and one of document types — a
handful of keys whatever the number of loans (10,000 loans answer in well under 50 ms). Held
balances are one key per token; open escrow one key per token (the escrow mutators' figures).

**Concentration: the Herfindahl–Hirschman index**, in basis points of 10,000::

    HHI = floor(10,000 × Σ xᵢ² / (Σ xᵢ)²)

over the member's exposures ``xᵢ`` — by counterparty, ``xᵢ`` = outstanding principal lent to
plus borrowed from counterparty ``i``; by document type, ``xᵢ`` = outstanding principal the
member lent against documents of type ``i``. 10,000 means one counterparty (or type) carries
everything; ``10,000 / n`` means ``n`` equal ones. Computed in integers and **rounded down**
(the exact figure is never below it, and is below it + 1). ``None`` when there is no exposure
(no shares to square). Each entry's share is shown the same way: ``floor(10,000 × xᵢ / Σ x)``.

Loan amounts are minor units of TRC (loans are in TRC only); escrow amounts are per token.
"""

from __future__ import annotations

from typing import Any, Final

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade import risk_state as rs

BP: Final = 10_000


def hhi_bp(exposures: list[int]) -> int | None:
    """The Herfindahl–Hirschman index of ``exposures`` in basis points, rounded down; None if
    they sum to zero."""
    total = sum(exposures)
    if total <= 0:
        return None
    return BP * sum(x * x for x in exposures) // (total * total)


def share_bp(part: int, total: int) -> int:
    return 0 if total <= 0 else BP * part // total


def held_by_token(state: StateView, member: str) -> dict[str, int]:
    """The member's held amount of each token it has any held (all its open holds: escrow,
    loans being disbursed, DvP legs, orders, plain holds)."""
    found: dict[str, int] = {}
    for token in q.tokens(state):
        held = q.balance(state, token["token"], member)["held"]
        if held:
            found[token["token"]] = held
    return found


def open_escrows(state: StateView, member: str) -> tuple[dict[str, int], dict[str, int], int, int]:
    """``(paying, receiving, count paying, count receiving)``: the member's open escrows as buyer
    and as seller, per token — the running figures the escrow mutators keep (``risk_state``)."""
    paying: dict[str, int] = {}
    receiving: dict[str, int] = {}
    n_paying = n_receiving = 0
    for token, figures in rs.by_prefix(state, rs.escrow_prefix(member)).items():
        if figures.get("paying"):
            paying[token] = int(figures["paying"])
        if figures.get("receiving"):
            receiving[token] = int(figures["receiving"])
        n_paying += int(figures.get("count_paying", 0))
        n_receiving += int(figures.get("count_receiving", 0))
    return paying, receiving, n_paying, n_receiving


def _ranked(entries: dict[str, int], total: int) -> list[dict[str, Any]]:
    ordered = sorted(entries.items(), key=lambda item: (-item[1], item[0]))
    return [{"name": name, "amount": amount, "share_bp": share_bp(amount, total)} for name, amount in ordered]


def risk_view(state: StateView, member: str) -> dict[str, Any]:
    """The member's exposure: loans lent and borrowed (outstanding principal, counts,
    defaulted), held amounts, open escrow, pledged documents, and concentration by
    counterparty and by document type (HHI, see the module docstring)."""
    totals = rs.totals(state, member)
    lent_by = {
        name: {"lent": int(record.get("lent", 0)), "borrowed": int(record.get("borrowed", 0))}
        for name, record in rs.by_prefix(state, rs.counterparty_prefix(member)).items()
    }
    counterparties = {name: pair["lent"] + pair["borrowed"] for name, pair in lent_by.items()}
    doctypes = rs.by_prefix(state, rs.doctype_prefix(member))
    by_type = {name: int(record.get("amount", 0)) for name, record in doctypes.items()}
    paying, receiving, n_paying, n_receiving = open_escrows(state, member)
    cp_total = sum(counterparties.values())
    type_total = sum(by_type.values())
    by_counterparty = [
        {**entry, **lent_by[entry["name"]]} for entry in _ranked(counterparties, cp_total) if entry["amount"]
    ]
    by_doctype = [
        {**entry, "count": int(doctypes[entry["name"]].get("count", 0))} for entry in _ranked(by_type, type_total)
    ]
    return {
        "member": member,
        "loans": {
            "lent": totals["lent"],
            "borrowed": totals["borrowed"],
            "count_lent": totals["loans_lent"],
            "count_borrowed": totals["loans_borrowed"],
            "defaulted_lent": totals["defaulted_lent"],
            "defaulted_borrowed": totals["defaulted_borrowed"],
        },
        "held": held_by_token(state, member),
        "escrow": {"paying": paying, "receiving": receiving, "count_paying": n_paying, "count_receiving": n_receiving},
        "pledged": {"documents_in": totals["pledged_in"], "documents_out": totals["pledged_out"]},
        "concentration": {
            "counterparty_hhi_bp": hhi_bp(list(counterparties.values())),
            "doctype_hhi_bp": hhi_bp(list(by_type.values())),
            "by_counterparty": by_counterparty,
            "by_doctype": by_doctype,
        },
    }
