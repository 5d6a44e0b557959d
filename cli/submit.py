"""Checking a command's payload against its kind's model (every problem at once, with those the
command found itself) before it is signed and sent; and the trade API option."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from traco.cli.common import fail_all, send
from traco.cli.payloads import payload_problems

TradeApiOpt = Annotated[str | None, typer.Option("--trade-api", help="trade service URL [default: from the data dir]")]


def submit(
    kind: str,
    payload: dict[str, Any],
    key: Any,
    data_dir: Any,
    api: Any,
    found: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> None:
    """Check ``payload`` (unset options left out) against the kind's model, then sign and send.
    ``found``: problems the command already named (a name that is no key), reported with the
    model's; ``skip``: fields whose problem is among them."""
    present = {k: v for k, v in payload.items() if v is not None}
    problems = [*found, *payload_problems(kind, present, skip)]
    if problems:
        fail_all(problems, kind)
    send(data_dir, api, key, kind, present)
