"""Fixtures of the command-line tests: a small chain with party and doc work, whose real doc and
party HTTP APIs are served by uvicorn on free ports, for the ``traco`` command to read."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from tests.consensus.servicechain import ServiceChain, registry_chain
from traco.services.doc.api import router as doc_router
from traco.services.party.api import router as party_router


@dataclass
class Served:
    chain: ServiceChain
    ids: dict[str, str]
    doc_api: str
    party_api: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A real uvicorn server for one FastAPI app, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    chain, ids = registry_chain(tmp_path_factory.mktemp("cli"))
    doc_app, party_app = FastAPI(), FastAPI()
    doc_app.include_router(doc_router(chain.runtimes["doc"]))
    party_app.include_router(party_router(chain.runtimes["party"]))
    try:
        with _Server(doc_app) as doc_url, _Server(party_app) as party_url:
            yield Served(chain, ids, doc_url, party_url)
    finally:
        chain.close()
