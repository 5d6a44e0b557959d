"""What every ``traco`` command shares: settings, the API client, keys, output, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from traco.cli.client import ApiError, Client, api_url, node_api_file
from traco.core import crypto
from traco.core.settings import Settings
from traco.schemas.receipt import Receipt
from traco.services.consensus.genesis import DataDir

out = Console()
err = Console(stderr=True)

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data directory [default: ./traco-data or TRACO_DATA_DIR]"),
]
ApiOpt = Annotated[str | None, typer.Option("--api", help="API URL [default: from the data dir]")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="member key file [default: <data-dir>/keys/member.key]")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/] {message}")
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
    path = key or DataDir(settings_for(data_dir).data_dir).member_key
    try:
        return crypto.read_key_file(path)
    except FileNotFoundError:
        fail(f"no key file at {path} (run `traco up` or `traco init` first, or pass --key)")
    except ValueError as exc:
        fail(f"{path}: {exc}")


def fetch(client: Client, path: str, missing: str | None = None) -> Any:
    """GET ``path`` as JSON (None on 404). An API error ends the command with its message, and
    so does a 404 when ``missing`` says what was not found."""
    try:
        found = client.get_json(path, allow_404=True)
    except ApiError as exc:
        fail(str(exc))
    if found is None and missing is not None:
        fail(missing)
    return found


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value))


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
    client = client_for(data_dir, api)
    try:
        tx = client.send(private_key, kind, payload)
        out.print(tx.tx_id)
        if no_wait:
            return None
        receipt = client.wait_receipt(tx.tx_id, timeout)
    except ApiError as exc:
        fail(str(exc))
    if receipt is None:
        fail(f"no receipt for {tx.tx_id} within {timeout:.0f}s (it may still be sealed later)", 2)
    print_json(receipt.model_dump(mode="json"))
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


def resolve_key(data_dir: Path | None, who: str) -> str:
    """A member public key from an address (``traco:<chain>:<hex>``), a hex key, or the name of a
    key file in the data dir (``bank-a`` for ``keys/bank-a.key``)."""
    if who.startswith("traco:"):
        try:
            return crypto.parse_address(who)[1].hex()
        except ValueError as exc:
            fail(str(exc))
    if crypto.is_hex_public_key(who):
        return who.lower()
    path = DataDir(settings_for(data_dir).data_dir).keys / f"{who}.key"
    if path.exists():
        return crypto.public_key(crypto.read_key_file(path)).hex()
    fail(f"{who!r} is not an address, a hex public key, or a key name under {path.parent}")
