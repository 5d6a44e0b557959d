"""``traco party …``: members, council proposals and votes.

Proposals name an action as JSON, e.g. ``{"type": "admit_member", "member_id": "acme"}`` or
``{"type": "grant_role", "member_id": "acme", "role": "bank"}`` (see the party service's docs);
the council votes with ``traco party vote ID --choice yes --key traco-data/keys/council-1.key``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.measure import Measurement
from rich.table import Table

from traco.cli.common import (
    ApiOpt,
    DataDirOpt,
    JsonOpt,
    KeyOpt,
    fail,
    fail_all,
    fetch,
    out,
    print_json,
    send,
    service_client,
)
from traco.cli.payloads import payload_problems

app = typer.Typer(no_args_is_help=True, help="Members, roles and council governance")
PartyApiOpt = Annotated[str | None, typer.Option("--party-api", help="party service URL [default: from the data dir]")]


def _get(data_dir: Path | None, party_api: str | None, path: str) -> Any:
    return fetch(service_client(data_dir, "party", party_api), path)


@app.command("list")
def list_members(data_dir: DataDirOpt = None, party_api: PartyApiOpt = None, as_json: JsonOpt = False) -> None:
    """Every member: id, organisation, jurisdiction, status, roles."""
    members = _get(data_dir, party_api, "/members")
    if members is None:
        fail("the party service answered 404 for /members: is it a party service?")
    if as_json:
        print_json(members, as_json=True)
        return
    table = Table()
    longest = max((len(str(m["organisation"])) for m in members), default=12)
    for name in ("member", "organisation", "jurisdiction", "status", "roles", "key"):
        if name == "organisation":  # prose may wrap, but not into slivers
            table.add_column(name, min_width=min(longest, 24))
        else:  # ids and keys are never folded or cut
            table.add_column(name, no_wrap=True)
    for m in members:
        table.add_row(
            m["member_id"],
            m["organisation"],
            m["jurisdiction"],
            m["status"],
            ", ".join(m["roles"]),
            m["primary_key"][:16] + "…",
        )
    # Wider than the terminal rather than cut: the terminal folds a long line, the ids stay whole.
    out.print(table, width=max(out.width, Measurement.get(out, out.options, table).minimum))


@app.command()
def show(member_id: str, data_dir: DataDirOpt = None, party_api: PartyApiOpt = None, as_json: JsonOpt = False) -> None:
    """One member with keys, history, agreements and delegations."""
    found = _get(data_dir, party_api, f"/members/{member_id}")
    if found is None:
        fail(f"no member {member_id!r}")
    print_json(found, as_json)


@app.command()
def proposals(
    status: Annotated[str | None, typer.Option(help="open, passed, rejected, expired, void")] = None,
    data_dir: DataDirOpt = None,
    party_api: PartyApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Council proposals and their tallies."""
    print_json(_get(data_dir, party_api, f"/proposals{'?status=' + status if status else ''}"), as_json)


@app.command()
def propose(
    action: Annotated[str, typer.Option(help='JSON, e.g. {"type": "admit_member", "member_id": "acme"}')],
    description: Annotated[str | None, typer.Option(help="why")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Open a council proposal (council members only); prints its receipt with the proposal id."""
    try:
        parsed = json.loads(action)
    except json.JSONDecodeError as exc:
        fail(f"--action is not JSON: {exc}")
    payload: dict[str, object] = {"action": parsed}
    if description:
        payload["description"] = description
    problems = payload_problems("party.propose", payload)
    if problems:
        fail_all(problems, "party.propose not sent")
    send(data_dir, api, key, "party.propose", payload)


@app.command()
def vote(
    proposal_id: int,
    choice: Annotated[str, typer.Option(help="yes, no or abstain")] = "yes",
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Vote on a proposal (council members only, once each)."""
    problems = payload_problems("party.vote", {"proposal_id": proposal_id, "choice": choice})
    if problems:
        fail_all([p.replace("choice:", "--choice:") for p in problems], "party.vote not sent")
    send(data_dir, api, key, "party.vote", {"proposal_id": proposal_id, "choice": choice})
