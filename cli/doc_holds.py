"""``traco doc hold …``: hold a document's title for a beneficiary until an expiry, then execute,
release or renew it (doc's title holds; the same hold rules as trade's amounts)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from traco.cli.common import ApiOpt, DataDirOpt, KeyOpt, resolve_key
from traco.cli.submit import submit

app = typer.Typer(no_args_is_help=True, help="Title holds: a document's title reserved for a beneficiary")


@app.command("create")
def create(
    hold_id: Annotated[str, typer.Argument(help="your id for the hold; never reused")],
    doc_id: Annotated[str, typer.Argument(help="the document whose title is held")],
    beneficiary: Annotated[str, typer.Option("--for", help="beneficiary: address, hex key or key name")],
    notary: Annotated[str | None, typer.Option(help="deciding instead: key name, hex key or service:<name>")] = None,
    expires_height: Annotated[int | None, typer.Option("--expires-height")] = None,
    minutes: Annotated[int | None, typer.Option("--minutes", help="expires this many minutes from now")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Hold the title of a negotiable document (its holder) for a beneficiary."""
    problems: list[str] = []
    who = resolve_key(data_dir, beneficiary, problems, "--for")
    decider = (
        notary
        if notary is None or notary.startswith("service:")
        else resolve_key(data_dir, notary, problems, "--notary")
    )
    payload = {
        "hold_id": hold_id,
        "doc_id": doc_id,
        "beneficiary": who or None,
        "notary": decider or None,
        "expires_height": expires_height,
        "expires_at": None if minutes is None else int(time.time() * 1000) + minutes * 60_000,
    }
    submit("doc.hold", payload, key, data_dir, api, problems, skip=("beneficiary", "notary") if problems else ())


@app.command("execute")
def execute(hold_id: str, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Move the held title to the beneficiary (the notary, else the beneficiary)."""
    submit("doc.hold.execute", {"hold_id": hold_id}, key, data_dir, api)


@app.command("release")
def release(hold_id: str, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Give the title hold back to the holder (the beneficiary refusing, or the notary)."""
    submit("doc.hold.release", {"hold_id": hold_id}, key, data_dir, api)


@app.command("renew")
def renew(
    hold_id: str,
    expires_height: Annotated[int | None, typer.Option("--expires-height")] = None,
    minutes: Annotated[int | None, typer.Option("--minutes", help="expires this many minutes from now")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Move a title hold's expiry later (the holder, before it expires)."""
    at = None if minutes is None else int(time.time() * 1000) + minutes * 60_000
    payload = {"hold_id": hold_id, "expires_height": expires_height, "expires_at": at}
    submit("doc.hold.renew", payload, key, data_dir, api)
