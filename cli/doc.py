"""``traco doc …``: register, pledge, release, transfer, surrender, show and verify documents.

Every command signs with ``--key`` (default: the data dir's member key; the development cast's
keys are ``<data-dir>/keys/<name>.key``, e.g. ``--key traco-data/keys/carrier.key``). A refused
transaction prints its receipt code (e.g. ``ALREADY_PLEDGED``) and exits 1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from traco.cli import doc_view
from traco.cli.client import ApiError
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
    fetch_proof,
    out,
    print_json,
    resolve_key,
    send,
    service_client,
    settings_for,
)
from traco.cli.payloads import payload_problems
from traco.schemas.proof import TxProof
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.doc import client as doc_client
from traco.services.doc import dcsa

app = typer.Typer(no_args_is_help=True, help="Trade documents: registry, title and pledges")
DocApiOpt = Annotated[str | None, typer.Option("--doc-api", help="doc service URL [default: from the data dir]")]


def _payload(build: object) -> dict[str, object]:
    """Run a payload builder; its ValueError is a usage error, said plainly."""
    try:
        return build()  # type: ignore[operator,no-any-return]
    except ValueError as exc:
        fail(str(exc))


OPTION_OF = {
    "doc_id": "DOC_ID",
    "type": "--type",
    "business_key": "--business-key",
    "business_key.namespace": "--business-key",
    "business_key.reference": "--business-key",
    "business_key.scope": "--scope",
    "holder": "--holder",
    "amount": "--amount",
    "currency": "--currency",
    "expires_at": "--days",
}
"""The command-line name of each payload field a doc command fills from its arguments."""


def _check(kind: str, raw: dict[str, object], problems: list[str], skip: tuple[str, ...] = ()) -> None:
    """Stop with every problem of the command's input at once: those already found (a name that
    is no key, a malformed option) and each one the payload model finds in ``raw``, named by the
    option the person typed."""
    for problem in payload_problems(kind, raw, skip):
        field, sep, rest = problem.partition(":")
        top, dot, deeper = field.partition(".")
        if field in OPTION_OF:
            problems.append(f"{OPTION_OF[field]}{sep}{rest}")
        else:
            problems.append(f"{OPTION_OF[top]}{dot}{deeper}{sep}{rest}" if top in OPTION_OF else problem)
    if problems:
        fail_all(problems, f"{kind} not sent")


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        out.print(escape(line), highlight=False)


@app.command()
def register(
    file: Path,
    doc_type: Annotated[str, typer.Option("--type", help="bill_of_lading, warehouse_receipt, invoice, …")],
    business_key: Annotated[str, typer.Option("--business-key", help="NAMESPACE/REFERENCE, e.g. MAEU/BL123")],
    scope: Annotated[str, typer.Option(help="document, or goods: unique across document types")] = "document",
    holder: Annotated[str | None, typer.Option(help="first holder: address, hex key or key name")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Register a file's SHA-256 as a document (the file never leaves this machine)."""
    if not file.is_file():
        fail(f"{file} is not a file")
    problems: list[str] = []
    first_holder = resolve_key(data_dir, holder, problems, "--holder") if holder else None
    namespace, slash, reference = business_key.partition("/")
    if not (slash and namespace and reference):
        problems.append(f"--business-key: {business_key!r} must be NAMESPACE/REFERENCE, e.g. MAEU/BL123")
    raw: dict[str, object] = {
        "file_hash": "0" * 64,
        "type": doc_type,
        "business_key": {"namespace": namespace, "reference": reference, "scope": scope},
    }
    if first_holder:
        raw["holder"] = first_holder
    skip = ("business_key",) if not slash else ()
    _check("doc.register", raw, problems, skip=(*skip, "holder"))
    payload = _payload(
        lambda: doc_client.register_payload(
            doc_client.file_sha256(file),
            doc_type,
            {**doc_client.parse_business_key(business_key), "scope": scope},
            holder=first_holder,
        )
    )
    receipt = send(data_dir, api, key, "doc.register", payload)
    if receipt is not None:
        out.print(f"document {receipt.result.get('doc_id', receipt.tx_id)}")


@app.command()
def pledge(
    doc_id: str,
    to: Annotated[str, typer.Option("--to", help="financier: address, hex key or key name")],
    amount: Annotated[int, typer.Option(min=1, help="in minor units (cents)")],
    currency: str = "USD",
    days: Annotated[int, typer.Option(min=1, help="the pledge expires after this many days")] = 90,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Offer to pledge a document to a financier; it binds once the financier accepts it
    (``traco doc accept``); refused with ALREADY_PLEDGED while another pledge is in force."""
    expires = int(time.time() * 1000) + days * 86_400_000
    problems: list[str] = []
    financier = resolve_key(data_dir, to, problems, "--to")
    raw = {"doc_id": doc_id, "financier": financier, "amount": amount, "currency": currency, "expires_at": expires}
    _check("doc.pledge", raw, problems, skip=("financier",))
    send(
        data_dir,
        api,
        key,
        "doc.pledge",
        _payload(lambda: doc_client.pledge_payload(doc_id, financier, amount, currency, expires)),
    )


@app.command()
def accept(doc_id: str, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Accept the pledge offered to you on a document (the financier): it is then in force, and
    any other pledge is refused with ALREADY_PLEDGED until it is released or expires."""
    _check("doc.pledge.accept", {"doc_id": doc_id}, [])
    send(data_dir, api, key, "doc.pledge.accept", {"doc_id": doc_id})


@app.command()
def extend(
    doc_id: str,
    days: Annotated[int, typer.Option(min=1, help="the pledge then expires this many days from now")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Move your pledge's expiry later (the financier)."""
    raw = {"doc_id": doc_id, "expires_at": int(time.time() * 1000) + days * 86_400_000}
    _check("doc.pledge.extend", raw, [])
    send(data_dir, api, key, "doc.pledge.extend", raw)


@app.command()
def release(doc_id: str, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Release the pledge on a document (the financier, or the holder after expiry)."""
    _check("doc.release", {"doc_id": doc_id}, [])
    send(data_dir, api, key, "doc.release", _payload(lambda: doc_client.release_payload(doc_id)))


@app.command()
def transfer(
    doc_id: str,
    to: Annotated[str, typer.Option("--to", help="new holder: address, hex key or key name")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Transfer title of a negotiable document (the holder only)."""
    problems: list[str] = []
    recipient = resolve_key(data_dir, to, problems, "--to")
    _check("doc.transfer", {"doc_id": doc_id, "to": recipient}, problems, skip=("to",))
    send(data_dir, api, key, "doc.transfer", _payload(lambda: doc_client.transfer_payload(doc_id, recipient)))


@app.command()
def surrender(doc_id: str, key: KeyOpt = None, data_dir: DataDirOpt = None, api: ApiOpt = None) -> None:
    """Surrender a document (final)."""
    _check("doc.surrender", {"doc_id": doc_id, "reason": "delivery"}, [])
    send(data_dir, api, key, "doc.surrender", _payload(lambda: doc_client.surrender_payload(doc_id)))


@app.command("import-dcsa")
def import_dcsa(
    file: Path,
    holder: Annotated[str | None, typer.Option(help="first holder: address, hex key or key name")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Register a DCSA eBL 3.0 transport document (its JSON) as a bill of lading."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc}")
    problems: list[str] = []
    first_holder = resolve_key(data_dir, holder, problems, "--holder") if holder else None
    if problems:
        fail_all(problems, "doc.register not sent")
    payload = _payload(lambda: dcsa.import_dcsa(raw, holder=first_holder))
    receipt = send(data_dir, api, key, "doc.register", payload)
    if receipt is not None:
        out.print(f"document {receipt.result.get('doc_id', receipt.tx_id)}")


@app.command()
def show(doc_id: str, data_dir: DataDirOpt = None, doc_api: DocApiOpt = None, as_json: JsonOpt = False) -> None:
    """A document: type, issuer, holder, pledge, status and its last events (--json: everything,
    with its newest version, whole history and endorsements)."""
    found = fetch(service_client(data_dir, "doc", doc_api), f"/documents/{doc_id}", f"no document {doc_id}")
    if as_json:
        print_json(found, as_json=True)
    else:
        _print_lines(doc_view.show_lines(found))


@app.command()
def verify(
    file: Path,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
    doc_api: DocApiOpt = None,
    wait: Annotated[
        float, typer.Option(min=0, help="seconds to wait for entries whose outcome is not sealed yet")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Is this file registered, who issued and holds it, is it pledged — with every history
    entry proven: its transaction on this chain (the genesis file's), sealed and accepted by
    doc, saying what the entry says (only the hash is sent)."""
    if not file.is_file():
        fail(f"{file} is not a file")
    file_hash = doc_client.file_sha256(file)
    try:
        genesis = load_genesis(DataDir(settings_for(data_dir).data_dir).genesis)
    except FileNotFoundError as exc:
        fail(str(exc))
    chain = client_for(data_dir, api)
    docs = service_client(data_dir, "doc", doc_api)

    def proof_of(tx_id: str) -> TxProof | str | None:
        return fetch_proof(chain, tx_id)

    deadline = time.monotonic() + wait
    try:
        with chain, docs:
            found = docs.get_json(f"/documents/by-hash/{file_hash}", allow_404=True)
            if found is None:
                if as_json:  # the shape of the doc API's POST /documents/verify for an unknown file
                    print_json({"file_hash": file_hash, "registered": False}, as_json=True)
                else:
                    out.print(f"NOT REGISTERED: no document has SHA-256 {file_hash}", highlight=False)
                raise typer.Exit(1)
            if not isinstance(found, dict) or found.get("file_hash") != file_hash:
                fail(f"the doc service answered for another file than SHA-256 {file_hash}")
            while True:  # an entry of the newest block waits for the next block to prove its outcome
                verdicts, problem = doc_client.verify_history(found, proof_of, genesis.validators, genesis.chain_id)
                statuses = {v.status for v in verdicts}
                if "pending" not in statuses or "failed" in statuses or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
    except ApiError as exc:
        fail(str(exc))
    if as_json:
        for entry, verdict in zip(found.get("history", []), verdicts, strict=False):
            if isinstance(entry, dict):
                entry["proof"] = verdict.describe()
        print_json(found, as_json=True)
    else:
        _print_lines(doc_view.verify_lines(found, verdicts))
    unproven = [v for v in verdicts if v.status != "proven"]
    if problem or unproven:
        fail(problem or f"{len(unproven)} of {len(verdicts)} history entries are not proven")
    pledged = " PLEDGED" if found.get("pledged") else ""
    summary = f"{found.get('doc_id')} ({found.get('status')}{pledged}); every history entry proven "
    summary += f"({len(verdicts)}, on chain {genesis.chain_id})"
    (err if as_json else out).print(f"[green]REGISTERED[/] {escape(summary)}", highlight=False)
