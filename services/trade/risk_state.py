"""Running exposure figures per member, kept by the flows' mutators so that a risk query reads a
handful of keys, never every loan (``/risk/{member}`` answers in well under 50 ms with 10,000
loans on the books).

Keys::

    risk/<member>/total                 {"lent", "borrowed", "defaulted_lent", "defaulted_borrowed",
                                         "loans_lent", "loans_borrowed", "escrow_paying",
                                         "escrow_receiving", "pledged_in", "pledged_out"}
    risk/<member>/cp/<counterparty>     {"lent", "borrowed"}: outstanding principal by counterparty
    risk/<member>/doctype/<type>        {"amount", "count"}: outstanding principal lent against
                                        documents of that type
    risk/<member>/escrow/<token>        {"paying", "receiving", "count_paying", "count_receiving"}:
                                        the member's open escrows as buyer and as seller

Loans are in TRC only (``loans.rules``), so loan figures never add two currencies; escrow figures
are kept per token. Amounts are outstanding principal in minor units (interest is not exposure until it is due);
``pledged_in``/``pledged_out``: documents pledged to the member / by the member for its live
loans. Every figure is a sum the mutators add to and take from; none may go negative.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade.writer import Writer

FIELDS: Final = (
    "lent",
    "borrowed",
    "defaulted_lent",
    "defaulted_borrowed",
    "loans_lent",
    "loans_borrowed",
    "escrow_paying",
    "escrow_receiving",
    "pledged_in",
    "pledged_out",
)


def total_key(member: str) -> str:
    return f"risk/{member}/total"


def counterparty_prefix(member: str) -> str:
    return f"risk/{member}/cp/"


def doctype_prefix(member: str) -> str:
    return f"risk/{member}/doctype/"


def _add(w: Writer, key: str, zero: dict[str, int], **delta: int) -> None:
    record = w.get(key) or dict(zero)
    for name, value in delta.items():
        record[name] = record.get(name, 0) + value
        if record[name] < 0:
            raise ValueError(f"{key}.{name} would go negative: the event stream is inconsistent")
    if all(v == 0 for v in record.values()):
        w.delete(key)
    else:
        w.put(key, record)


def add_total(w: Writer, member: str, **delta: int) -> None:
    _add(w, total_key(member), dict.fromkeys(FIELDS, 0), **delta)


def add_counterparty(w: Writer, member: str, counterparty: str, **delta: int) -> None:
    _add(w, counterparty_prefix(member) + counterparty, {"lent": 0, "borrowed": 0}, **delta)


def escrow_prefix(member: str) -> str:
    return f"risk/{member}/escrow/"


def add_escrow(w: Writer, member: str, token: str, **delta: int) -> None:
    zero = {"paying": 0, "receiving": 0, "count_paying": 0, "count_receiving": 0}
    _add(w, escrow_prefix(member) + token, zero, **delta)


def add_doctype(w: Writer, member: str, doc_type: str, **delta: int) -> None:
    _add(w, doctype_prefix(member) + doc_type, {"amount": 0, "count": 0}, **delta)


def totals(view: StateView, member: str) -> dict[str, int]:
    record = q.read(view, total_key(member)) or {}
    return {name: int(record.get(name, 0)) for name in FIELDS}


def by_prefix(view: StateView, prefix: str) -> dict[str, dict[str, Any]]:
    return {key[len(prefix) :]: orjson.loads(raw) for key, raw in view.scan(prefix)}
