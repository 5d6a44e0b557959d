"""What every ``traco`` command shares: settings, the API client, keys, output, errors.

Output is for people unless ``--json`` asks for the machine form. Both consoles soft-wrap:
rich never inserts a line break into a line, so a 64-hex id or a signature stays whole to copy
(the terminal folds a long line for display; a pipe gets it intact). Times a person reads are
ISO 8601 UTC (``core/timefmt``); ``--json`` keeps the API's integer milliseconds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from traco.cli.client import ApiError, Client, api_url, node_api_file
from traco.core import crypto, keyfile
from traco.core.errors import KeyCustodyError
from traco.core.settings import Settings
from traco.core.timefmt import iso_utc
from traco.schemas.proof import TxProof
from traco.schemas.receipt import Receipt
from traco.services.consensus.genesis import DataDir

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TIME_KEYS = frozenset(
    {
        "time",
        "block_time",
        "deadline",
        "valid_until",
        "expires_at",
        "occurred_at",
        "recorded_at",
        "created_at",
        "closed_at",
    }
)
"""Keys whose integer values are times in ms since the epoch, in every answer of the APIs (heights
sit in keys such as ``changed_at`` or ``diverged_at``, which is why this is a list, not a suffix)."""

JsonOpt = Annotated[bool, typer.Option("--json", help="print everything, as JSON with times in ms (for programs)")]

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data directory [default: ./traco-data or TRACO_DATA_DIR]"),
]
ApiOpt = Annotated[str | None, typer.Option("--api", help="API URL [default: from the data dir]")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="member key file [default: <data-dir>/keys/member.key]")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr (never wrapped, no markup taken from the message) and exit."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def fail_all(problems: Iterable[str], what: str, code: int = 2) -> NoReturn:
    """Report every problem found in the input at once, one per line, then exit (2: usage)."""
    listed = list(problems)
    if len(listed) == 1:
        fail(f"{what}: {listed[0]}", code)
    err.print(f"[red]error:[/] {escape(what)}: {len(listed)} problems", highlight=False)
    for problem in listed:
        err.print(f"  {escape(problem)}", highlight=False)
    raise typer.Exit(code)


def settings_for(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def client_for(data_dir: Path | None, api: str | None) -> Client:
    settings = settings_for(data_dir)
    return Client(api_url(settings.data_dir, api, settings.api_port))


def load_key(data_dir: Path | None, key: Path | None) -> bytes:
    """A member's private key from its file, plaintext or encrypted (the passphrase from
    TRACO_KEY_PASSPHRASE[_FILE] or asked at the terminal; docs/key-custody.md)."""
    settings = settings_for(data_dir)
    path = key or DataDir(settings.data_dir).member_key
    if not path.exists():
        fail(f"no key file at {path} (run `traco up` or `traco init` first, or pass --key)")
    try:
        return keyfile.read_private_key(path, keyfile.PassphraseSource.from_settings(settings))
    except KeyCustodyError as exc:
        fail(str(exc))


def fetch(client: Client, path: str, missing: str | None = None) -> Any:
    """GET ``path`` as JSON (None on 404), then close ``client``. An API error ends the command
    with its message, and so does a 404 when ``missing`` says what was not found."""
    try:
        with client:
            found = client.get_json(path, allow_404=True)
    except ApiError as exc:
        fail(str(exc))
    if found is None and missing is not None:
        fail(missing)
    return found


def readable_times(value: Any) -> Any:
    """``value`` with the integer times under ``TIME_KEYS`` written as ISO 8601 UTC strings."""
    if isinstance(value, dict):
        return {
            k: iso_utc(v) if k in TIME_KEYS and isinstance(v, int) and not isinstance(v, bool) else readable_times(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [readable_times(item) for item in value]
    return value


def print_json(value: Any, as_json: bool = False) -> None:
    """A JSON answer: for a person (times as ISO 8601 UTC, highlighted on a terminal) or, with
    ``as_json``, exactly as the API gave it, as plain text for a program."""
    if as_json:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
        sys.stdout.flush()
    else:
        out.print_json(json.dumps(readable_times(value)))


def send(
    data_dir: Path | None,
    api: str | None,
    key: Path | None,
    kind: str,
    payload: dict[str, Any],
    no_wait: bool = False,
    timeout: float = 30.0,
) -> Receipt | None:
    """Sign and submit; print the tx id and the receipt; exit non-zero with the code if refused."""
    private_key = load_key(data_dir, key)
    try:
        with client_for(data_dir, api) as client:
            tx = client.send(private_key, kind, payload)
            out.print(tx.tx_id)
            if no_wait:
                return None
            receipt = client.wait_receipt(tx.tx_id, timeout)
    except ApiError as exc:
        fail(str(exc))
    if receipt is None:
        fail(f"no receipt for {tx.tx_id} within {timeout:.0f}s (it may still be sealed later)", 2)
    print_json(receipt.model_dump(mode="json"))  # times in a result (e.g. a deadline) as ISO 8601
    if not receipt.accepted:
        fail(f"rejected: {receipt.code}: {receipt.message}")
    return receipt


def service_client(data_dir: Path | None, service: str, explicit: str | None = None) -> Client:
    """The HTTP API of an executing service, found from the file it writes into the data dir."""
    settings = settings_for(data_dir)
    if explicit:
        return Client(explicit.rstrip("/"))
    info = node_api_file(settings.data_dir, f"{service}-api.json")
    try:
        return Client(str(json.loads(info.read_text())["url"]))
    except (FileNotFoundError, ValueError, KeyError):
        from traco.services import registry

        return Client(f"http://{settings.api_host}:{settings.api_port + 1 + registry.ORDER.index(service)}")


def resolve_key(data_dir: Path | None, who: str, problems: list[str] | None = None, option: str = "") -> str:
    """A member public key from an address (``traco:<chain>:<hex>``), a hex key, or the name of a
    key file in the data dir (``bank-a`` for ``keys/bank-a.key``). What is wrong ends the command,
    or, given ``problems``, is added there (prefixed with ``option``) and ``""`` returned, so a
    command can report every bad input at once."""
    problem = ""
    if who.startswith("traco:"):
        try:
            return crypto.parse_address(who)[1].hex()
        except ValueError as exc:
            problem = str(exc)
    elif crypto.is_hex_public_key(who.lower()):
        return who.lower()
    else:
        path = DataDir(settings_for(data_dir).data_dir).keys / f"{who}.key"
        if not path.exists():
            problem = f"{who!r} is not an address, a hex public key, or a key name under {path.parent}"
        else:
            try:
                return keyfile.inspect(path).public_key.hex()  # no passphrase needed
            except KeyCustodyError as exc:
                problem = str(exc)
    if problems is None:
        fail(f"{option}: {problem}" if option else problem)
    problems.append(f"{option}: {problem}" if option else problem)
    return ""


def fetch_proof(chain: Client, tx_id: str) -> TxProof | str | None:
    """The consensus API's light-client proof of ``tx_id``: ``None`` where it has none, what is
    wrong where it served something that is no proof (the caller still checks a proof)."""
    raw = chain.get_json(f"/proofs/{tx_id}", allow_404=True)
    if raw is None:
        return None
    try:
        return TxProof.model_validate(raw)
    except ValidationError as exc:
        return f"the API served a malformed proof ({exc.errors()[0]['msg']})"
