"""What the flow commands (``traco escrow``, ``finance``, ``loan``, ``dvp``, ``risk``) share:
reading an instant as a person types it, fetching a flow's record from the trade API, and
writing times for a person.

Instants (expiries, deadlines, offer windows) are block times: ISO 8601 (``2026-12-01``,
``2026-12-01T17:00Z``; UTC unless a zone is given) or milliseconds since the epoch. Durations
(a loan's tenor) are milliseconds: ``traco`` has no duration syntax, and one spelling of a span
across commands is better than two.
"""

from __future__ import annotations

import datetime
from typing import Any

from traco.cli.common import fetch, print_json, service_client
from traco.core.timefmt import duration, iso_utc


def instant(option: str, text: str | None, problems: list[str]) -> int | None:
    """Milliseconds since the epoch from ISO 8601 or ms; a problem (named by ``option``) is added
    to ``problems`` and None returned, so a command reports every bad input at once."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{option}: {text!r} is neither ISO 8601 (2026-12-01T17:00Z) nor milliseconds")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def get(data_dir: Any, trade_api: str | None, path: str, missing: str) -> dict[str, Any]:
    """The trade API's answer at ``path``; a 404 ends the command (exit 1) saying ``missing``."""
    with service_client(data_dir, "trade", trade_api) as client:
        answer: dict[str, Any] = fetch(client, path, missing)
    return answer


def when(ms: Any) -> str:
    """A block time for a person ("-" when there is none)."""
    return "-" if ms is None else iso_utc(ms)


def span(ms: Any) -> str:
    return "-" if ms is None else duration(ms)


def dump(answer: dict[str, Any]) -> None:
    """``--json``: everything the API said, times in ms."""
    print_json(answer, True)


def hold_line(hold: dict[str, Any] | None) -> str:
    """One line on a flow's managed hold: open, or how it ended."""
    if hold is None:
        return "hold        none"
    money = f"{hold['amount']} {hold['asset']}  {hold['owner']} → {hold['beneficiary']}"
    if hold["status"] == "ordered":
        expiry = when(hold["expires_time"]) if hold["expires_time"] is not None else f"height {hold['expires_height']}"
        return f"hold        {hold['hold_id']}  {money}  open until {expiry}"
    return (
        f"hold        {hold['hold_id']}  {money}  {hold['status']}: {hold['executed']} paid,"
        f" {hold['returned']} returned (height {hold['closed_height']})"
    )
