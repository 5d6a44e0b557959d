"""What the trade commands share: the trade API option, and checking a payload against its
kind's model (every problem at once) before it is signed and sent."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.common import fail_all, send
from traco.cli.payloads import payload_problems

TradeApiOpt = Annotated[str | None, typer.Option("--trade-api", help="trade service URL [default: from the data dir]")]


def submit(kind: str, payload: dict[str, Any], key: Any, data_dir: Any, api: Any) -> None:
    """Check ``payload`` (unset options left out) against the kind's model, then sign and send."""
    present = {k: v for k, v in payload.items() if v is not None}
    problems = payload_problems(kind, present)
    if problems:
        fail_all(problems, kind)
    send(data_dir, api, key, kind, present)
