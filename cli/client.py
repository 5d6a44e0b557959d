"""Finding and calling a running consensus API from the command line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus.genesis import DataDir


class ApiError(Exception):
    """The API answered with an error, or could not be reached; the message says which."""


def api_url(data_dir: Path, explicit: str | None, default_port: int = 8700) -> str:
    """``--api`` wins; else the address a running ``traco up`` wrote into the data dir."""
    if explicit:
        return explicit.rstrip("/")
    api_file = node_api_file(data_dir, "api.json")
    if api_file.exists():
        try:
            return str(json.loads(api_file.read_text())["url"]).rstrip("/")
        except (ValueError, KeyError):
            pass
    return f"http://127.0.0.1:{default_port}"


def node_api_file(data_dir: Path, filename: str) -> Path:
    """Where the node the CLI talks to wrote an API's address: node 0's in the data dir itself,
    another node's (``--node`` or ``TRACO_NODE``) under ``nodes/<id>/``."""
    node = os.environ.get("TRACO_NODE")
    root = DataDir(data_dir).root
    return root / "nodes" / node / filename if node else root / filename


class Client:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the TRACO API at {self.url}: {exc}. Is `traco up` running?") from exc

    def get_json(self, path: str, allow_404: bool = False) -> Any:
        response = self._call("GET", path)
        if response.status_code == 404 and allow_404:
            return None
        _raise_for(response)
        return response.json()

    def submit(self, tx: TxEnvelope) -> dict[str, Any]:
        response = self._call(
            "POST",
            "/tx",
            content=tx.model_dump_json(),
            headers={"content-type": "application/json"},
        )
        _raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    def next_nonce(self, sender: str) -> int:
        return int(self.get_json(f"/accounts/{sender}/nonce")["next_nonce"])

    def send(self, private_key: bytes, kind: str, payload: dict[str, Any]) -> TxEnvelope:
        from traco.core import crypto

        status = self.get_json("/status")
        sender = crypto.public_key(private_key).hex()
        tx = sign_tx(private_key, status["chain_id"], kind, self.next_nonce(sender), payload)
        self.submit(tx)
        return tx

    def wait_receipt(self, tx_id: str, timeout: float = 30.0) -> Receipt | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.get_json(f"/tx/{tx_id}", allow_404=True)
            if found is not None:
                return Receipt.model_validate(found)
            time.sleep(0.1)
        return None


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    if isinstance(detail, dict):
        raise ApiError(f"{detail.get('code', response.status_code)}: {detail.get('message', '')}")
    raise ApiError(f"HTTP {response.status_code}: {detail}")
