"""The ``traco`` command line: run the mesh, manage keys, send transactions, read and audit.

Every command finds the running API from ``--data-dir`` (or ``--api URL``) and signs with
``<data-dir>/keys/member.key`` unless ``--key`` says otherwise, so the README's tour needs no
flags. Errors are printed as one clear line and exit non-zero; a rejected transaction prints
its receipt code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from traco.cli import abs as abs_cli
from traco.cli import backup as backup_cli
from traco.cli import doc as doc_cli
from traco.cli import doc_holds as doc_holds_cli
from traco.cli import dvp as dvp_cli
from traco.cli import escrow as escrow_cli
from traco.cli import finance as finance_cli
from traco.cli import keys as keys_cli
from traco.cli import market as market_cli
from traco.cli import party as party_cli
from traco.cli import risk as risk_cli
from traco.cli import trade as trade_cli
from traco.cli.common import (
    ApiOpt,
    DataDirOpt,
    JsonOpt,
    KeyOpt,
    client_for,
    err,
    fail,
    fail_all,
    fetch,
    out,
    print_json,
    send,
    settings_for,
)
from traco.cli.payloads import payload_problems
from traco.core import gc_policy
from traco.core.lightclient import verify_tx_proof
from traco.core.settings import Settings
from traco.schemas.genesis import Genesis
from traco.schemas.proof import TxProof
from traco.services.consensus.genesis import DataDir, init_chain

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # usage errors on one plain line (rich boxes them and wraps at 80 columns)
    help="TRACO trade-finance ledger",
)


@app.callback()
def choose_node(
    node: Annotated[
        str | None, typer.Option("--node", envvar="TRACO_NODE", help="the node whose APIs to use [default: n0]")
    ] = None,
) -> None:
    """TRACO trade-finance ledger."""
    if node:
        os.environ["TRACO_NODE"] = node


tx_app = typer.Typer(no_args_is_help=True, help="Transactions")
chain_app = typer.Typer(no_args_is_help=True, help="The chain")
block_app = typer.Typer(no_args_is_help=True, help="Blocks")
audit_app = typer.Typer(no_args_is_help=True, help="Auditing")
serve_app = typer.Typer(no_args_is_help=True, help="Run one component (what a Kubernetes pod runs)")
schemas_app = typer.Typer(no_args_is_help=True, help="JSON Schemas and AsyncAPI")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(doc_cli.app, name="doc")
doc_cli.app.add_typer(doc_holds_cli.app, name="hold")
app.add_typer(party_cli.app, name="party")
app.add_typer(abs_cli.app, name="abs")
trade_cli.register(app)
market_cli.register(app)  # traco order place|cancel, traco market PAIR
app.add_typer(escrow_cli.app, name="escrow")
app.add_typer(finance_cli.app, name="finance")
app.add_typer(finance_cli.loan_app, name="loan")
app.add_typer(dvp_cli.app, name="dvp")
app.command("risk")(risk_cli.risk)
for sub, name in [
    (tx_app, "tx"),
    (chain_app, "chain"),
    (block_app, "block"),
    (audit_app, "audit"),
    (serve_app, "serve"),
    (schemas_app, "schemas"),
]:
    app.add_typer(sub, name=name)
backup_cli.register(app)  # traco backup, traco restore


# ---------------------------------------------------------------------------- running


@app.command()
def init(
    data_dir: DataDirOpt = None,
    chain_id: Annotated[str | None, typer.Option(help="chain id for a new chain")] = None,
    validators: Annotated[int, typer.Option(min=1, max=64)] = 4,
) -> None:
    """Write keys and a genesis file into the data dir (kept if they exist)."""
    settings = settings_for(data_dir)
    genesis = init_chain(settings.data_dir, chain_id or settings.chain_id, validators)
    out.print(
        f"chain {genesis.chain_id}: {len(genesis.validators)} validators, genesis {DataDir(settings.data_dir).genesis}"
    )


@app.command()
def up(
    data_dir: DataDirOpt = None,
    validators: Annotated[int, typer.Option(min=1, max=64, help="validators of a new chain")] = 4,
) -> None:
    """Start the broker (unless TRACO_KAFKA_BOOTSTRAP is set) and the nodes, each its validator, services and APIs."""
    from traco.cli.up import run_up

    run_up(settings_for(data_dir), validators)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _serving(settings: Settings) -> Settings:
    """Set up a long-running process: logging, and the cycle collector (``core/gc_policy.py``)."""
    _logging()
    gc_policy.tune(settings.gc_thresholds)
    return settings


@serve_app.command("validator")
def serve_validator(index: Annotated[int, typer.Option(min=0)], data_dir: DataDirOpt = None) -> None:
    """Run validator INDEX (key: <data-dir>/keys/validator-INDEX.key)."""
    from traco.services.consensus.runtime import serve_validator as run

    asyncio.run(run(_serving(settings_for(data_dir)), index))


@serve_app.command("node")
def serve_node(
    node: Annotated[str, typer.Option("--node", help="the node's registered id (n0, n1, …)")] = "n0",
    data_dir: DataDirOpt = None,
) -> None:
    """Run one node: its validator and its replica of every service, and their APIs."""
    from traco.services.node.serve import serve_node as run

    asyncio.run(run(_serving(settings_for(data_dir)), node))


@serve_app.command("consensus")
def serve_consensus(
    node: Annotated[str, typer.Option("--node", help="the node whose results the API serves")] = "n0",
    data_dir: DataDirOpt = None,
) -> None:
    """Run the consensus API and its follower."""
    from traco.services.consensus.runtime import serve_consensus_api

    asyncio.run(serve_consensus_api(_serving(settings_for(data_dir)), node))


@serve_app.command("party")
def serve_party(
    node: Annotated[str, typer.Option("--node", help="the node this replica belongs to")] = "n0",
    data_dir: DataDirOpt = None,
) -> None:
    """Run the party service (members, roles, governance) and its API."""
    from traco.services.serve import serve_service

    asyncio.run(serve_service(_serving(settings_for(data_dir)), "party", node))


@serve_app.command("doc")
def serve_doc(
    node: Annotated[str, typer.Option("--node", help="the node this replica belongs to")] = "n0",
    data_dir: DataDirOpt = None,
) -> None:
    """Run the doc service (document registry, pledges) and its API."""
    from traco.services.serve import serve_service

    asyncio.run(serve_service(_serving(settings_for(data_dir)), "doc", node))


@serve_app.command("trade")
def serve_trade(
    node: Annotated[str, typer.Option("--node", help="the node this replica belongs to")] = "n0",
    data_dir: DataDirOpt = None,
) -> None:
    """Run the trade service (tokens, holds, TRC, Coco, equity-anchored tokens) and its API."""
    from traco.services.serve import serve_service

    asyncio.run(serve_service(_serving(settings_for(data_dir)), "trade", node))


# ---------------------------------------------------------------------------- transactions


@tx_app.command("send")
def tx_send(
    kind: Annotated[str, typer.Option("--kind", help="e.g. chain.anchor")],
    payload: Annotated[str, typer.Option("--payload", help="JSON object")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="print the tx id and return")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the receipt")] = 30.0,
) -> None:
    """Sign and submit a transaction; print its id and (unless --no-wait) its receipt."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not JSON: {exc}")
    if not isinstance(body, dict):
        fail("--payload must be a JSON object")
    problems = payload_problems(kind, body)
    if problems:
        fail_all(problems, f"--payload for {kind} not sent")
    send(data_dir, api, key, kind, body, no_wait, timeout)


@tx_app.command("show")
def tx_show(tx_id: str, data_dir: DataDirOpt = None, api: ApiOpt = None, as_json: JsonOpt = False) -> None:
    """Print a transaction's receipt."""
    found = fetch(client_for(data_dir, api), f"/tx/{tx_id}", f"no receipt for {tx_id} (pending or unknown)")
    print_json(found, as_json)


@chain_app.command("status")
def chain_status(data_dir: DataDirOpt = None, api: ApiOpt = None, as_json: JsonOpt = False) -> None:
    """Chain id, height, latest block and validators."""
    print_json(fetch(client_for(data_dir, api), "/status", "no /status here: is --api a TRACO node's API?"), as_json)


@block_app.command("show")
def block_show(height: int, data_dir: DataDirOpt = None, api: ApiOpt = None, as_json: JsonOpt = False) -> None:
    """Print a sealed block."""
    print_json(fetch(client_for(data_dir, api), f"/blocks/{height}", f"no block at height {height}"), as_json)


@app.command()
def proof(
    tx_id: str,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the proof to a file")] = None,
) -> None:
    """Print (or save) a light-client proof: header, commit and Merkle path of a transaction."""
    found = fetch(client_for(data_dir, api), f"/proofs/{tx_id}", f"{tx_id} is not sealed (yet)")
    if out_file:
        out_file.write_text(json.dumps(found, indent=2) + "\n")
        out.print(f"proof written to {out_file}")
    else:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")


@app.command("verify-proof")
def verify_proof(
    proof_file: Path,
    genesis: Annotated[Path, typer.Option("--genesis", help="the trusted genesis file")],
    tx_id: Annotated[str | None, typer.Option("--tx-id", help="the transaction the proof must be for")] = None,
    code: Annotated[str | None, typer.Option("--code", help="the receipt code the proof must prove, e.g. OK")] = None,
) -> None:
    """Check a proof from the genesis validator set alone (no network, no chain): on this
    genesis's chain, and (if given) for this transaction and this receipt code."""
    try:
        trusted = Genesis.model_validate_json(genesis.read_bytes())
        tx_proof = TxProof.model_validate_json(proof_file.read_bytes())
    except FileNotFoundError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(f"cannot read the proof or genesis: {exc}")
    expected_receipt = None if code is None else {"code": code}
    problem = verify_tx_proof(
        tx_proof, trusted.validators, trusted.chain_id, tx_id=tx_id and tx_id.lower(), receipt=expected_receipt
    )
    if problem:
        fail(f"INVALID: {problem}")
    extra = ""
    if tx_proof.result is not None:
        extra = f"; receipt {tx_proof.result.receipt.code} proven by block {tx_proof.result.header.height}"
    out.print(
        f"[green]VALID[/]: tx {tx_proof.tx.tx_id} is in block {tx_proof.height} of chain {tx_proof.chain_id}{extra}"
    )


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDirOpt = None,
    component: Annotated[
        str | None,
        typer.Option(help="whose block store to audit (and whose record of results) [default: the node's chain]"),
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="processes verifying signatures; 0 = one per core")] = 0,
    replay: Annotated[
        bool, typer.Option(help="re-execute the chain and its services to check every last_results_root")
    ] = True,
    from_topic: Annotated[
        bool,
        typer.Option(
            "--from-topic", help="read the blocks from the chain's blocks topic (TRACO_KAFKA_BOOTSTRAP), not a store"
        ),
    ] = False,
) -> None:
    """Recheck the whole chain: hash links, commits, tx signatures, Merkle roots and, replaying
    every service from genesis, each header's results root."""
    from traco.services.consensus.audit import run_audit_cli

    settings = settings_for(data_dir)
    gc_policy.tune(settings.gc_thresholds)
    if component is None:
        node_chain = f"{os.environ.get('TRACO_NODE') or 'n0'}-chain"
        component = node_chain if (settings.data_dir / node_chain).exists() else "consensus"
    code = run_audit_cli(settings, component, workers or None, out, replay, from_topic)
    raise typer.Exit(code)


@schemas_app.command("export")
def schemas_export(
    out_dir: Annotated[Path, typer.Option("--out", help="target folder")] = Path("schemas/json"),
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 naming every stale, missing or extra file")
    ] = False,
) -> None:
    """Write the JSON Schemas of every wire model and the AsyncAPI document."""
    from traco.schemas.export import check_all, export_all

    if check:
        problems = check_all(out_dir)
        for problem in problems:
            err.print(problem)
        if problems:
            err.print("run `make schemas` to regenerate them")
            raise typer.Exit(1)
        out.print(f"{out_dir}: current")
        return
    for path in export_all(out_dir):
        out.print(str(path))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
