"""``traco equity …``: equity-anchored tokens (the ECC seed: 3 tokens per 2 custodied shares) —
define, issue, exercise, settle, list custody statements, and show a token with every custody
statement's anchor proven from the genesis."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from traco.cli.client import ApiError
from traco.cli.common import (
    ApiOpt,
    DataDirOpt,
    JsonOpt,
    KeyOpt,
    client_for,
    fail_all,
    fetch,
    fetch_proof,
    out,
    print_json,
    service_client,
    settings_for,
)
from traco.cli.submit import TradeApiOpt, submit
from traco.core.lightclient import verify_tx_proof
from traco.services.consensus.genesis import DataDir, load_genesis

app = typer.Typer(no_args_is_help=True, help="Equity-anchored tokens: ECC is 3 tokens per 2 shares")


@app.command("define")
def equity_define(
    token: Annotated[str, typer.Argument(help="token id, e.g. ECC")],
    name: Annotated[str, typer.Option(help="the token's name")],
    security: Annotated[str, typer.Option(help="the anchored security, e.g. HKEX:0700")],
    ratio: Annotated[str, typer.Option(help="tokens:shares, e.g. 3:2")],
    circulation: Annotated[str, typer.Option(help="where it circulates")],
    centre: Annotated[str, typer.Option(help="the exercise centre")],
    settlement_agent: Annotated[str, typer.Option("--settlement-agent", help="member id")],
    custodian: Annotated[str, typer.Option(help="the custodian of the shares (member id)")],
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Define an equity-anchored token (its custodian)."""
    tokens, _, shares = ratio.partition(":")
    problems = [] if tokens.isdigit() and shares.isdigit() else [f"--ratio: {ratio!r} is not tokens:shares"]
    if problems:
        fail_all(problems, "trade.equity.define")
    payload = {
        "token": token,
        "name": name,
        "security": security,
        "ratio_tokens": int(tokens),
        "ratio_shares": int(shares),
        "circulation": circulation,
        "exercise": {"centre": centre, "settlement_agent": settlement_agent, "custodian": custodian},
        "max_tokens": max_tokens,
    }
    submit("trade.equity.define", payload, key, data_dir, api)


@app.command("issue")
def equity_issue(
    token: str,
    to: Annotated[str, typer.Option("--to", help="qualified investor (member id)")],
    amount: Annotated[int, typer.Option(help="tokens to issue")],
    shares: Annotated[int, typer.Option(help="shares newly deposited with the custodian")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Issue tokens against deposited shares (the custodian; RATIO_EXCEEDED past the ratio)."""
    submit("trade.equity.issue", {"token": token, "to": to, "amount": amount, "shares": shares}, key, data_dir, api)


@app.command("exercise")
def equity_exercise(
    token: str, amount: int, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None
) -> None:
    """Exercise tokens back into shares: holds them and files a settlement instruction."""
    submit("trade.equity.exercise", {"token": token, "amount": amount}, key, data_dir, api)


@app.command("settle")
def equity_settle(
    exercise_id: str,
    refuse: Annotated[str | None, typer.Option("--refuse", help="refuse the settlement, with this reason")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Settle an exercise (the settlement agent): burns the tokens, or returns them if refused."""
    payload = {"exercise_id": exercise_id, "accepted": refuse is None, "reason": refuse}
    submit("trade.equity.settled", payload, key, data_dir, api)


@app.command("statement")
def equity_statement(
    token: str,
    anchor: Annotated[str, typer.Option("--anchor", help="the chain.anchor tx id that anchored the statement")],
    digest: Annotated[str, typer.Option(help="the statement's SHA-256 (what the anchor carries)")],
    shares: Annotated[int, typer.Option(help="the shares the statement reports in custody")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """List a periodic custody statement on the token (its custodian)."""
    payload = {"token": token, "anchor_tx_id": anchor, "digest": digest, "shares": shares}
    submit("trade.equity.statement", payload, key, data_dir, api)


@app.command("show")
def equity_show(
    token: str,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
    trade_api: TradeApiOpt = None,
) -> None:
    """An equity-anchored token: terms, custodied shares, supply, within ratio, and each custody
    statement with its anchor proven from the genesis (a light-client proof of the chain.anchor
    transaction, which must carry the statement's digest). Exit 1 if any statement is unproven."""
    with service_client(data_dir, "trade", trade_api) as client:
        answer = fetch(client, f"/equity/{token}", f"equity-anchored token {token}")
    statements = answer.get("statements", [])
    genesis = load_genesis(DataDir(settings_for(data_dir).data_dir).genesis)
    with client_for(data_dir, api) as chain:
        verdicts = [statement_verdict(chain, genesis, entry) for entry in statements]
    if as_json:
        for entry, verdict in zip(statements, verdicts, strict=True):
            entry["proof"] = verdict
        print_json(answer, True)
    else:
        ratio = f"{answer['ratio_tokens']}:{answer['ratio_shares']}"
        within = "within ratio" if answer["within_ratio"] else "RATIO EXCEEDED"
        out.print(f"{answer['token']}  anchored to {answer['security']}  ratio {ratio} (tokens:shares)")
        out.print(f"  supply {answer['supply']}  custodied shares {answer['custodied_shares']}  {within}")
        for entry, verdict in zip(statements, verdicts, strict=True):
            matches = "matches custody" if entry["shares"] == answer["custodied_shares"] else "differs from custody"
            out.print(f"  statement {entry['anchor_tx_id']}  {entry['shares']} shares ({matches})  → {verdict}")
    if any(v != "proven" for v in verdicts):
        raise typer.Exit(1)


def statement_verdict(chain: Any, genesis: Any, entry: dict[str, Any]) -> str:
    """``proven``, or why a custody statement's anchor is not: the light-client proof of its
    ``chain.anchor`` transaction, accepted, carrying exactly the statement's digest."""
    try:
        proof = fetch_proof(chain, entry["anchor_tx_id"])
    except ApiError as exc:
        return f"no proof: {exc}"
    if proof is None:
        return "not on the chain"
    if isinstance(proof, str):
        return f"NOT PROVEN: {proof}"
    problem = verify_tx_proof(
        proof, genesis.validators, genesis.chain_id, tx_id=entry["anchor_tx_id"], receipt={"code": "OK"}
    )
    if problem:
        return f"NOT PROVEN: {problem}"
    if proof.tx.kind != "chain.anchor" or proof.tx.payload.get("digest") != entry["digest"]:
        return "NOT PROVEN: that transaction does not anchor this statement's digest"
    return "proven"
