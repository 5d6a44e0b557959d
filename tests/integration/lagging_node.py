"""The ``traco`` command with a node that executes slowly: for tests only.

``python -m tests.integration.lagging_node serve node --node n3`` runs node n3 exactly as
``traco`` would, except that every block it commits waits ``TRACO_TEST_EXECUTE_DELAY_S``
seconds (default 1) before its services execute it, so a node that restarts behind the chain
stays behind for a while: what ``GET /readyz`` must report.
"""

from __future__ import annotations

import asyncio
import os
import sys

from traco.schemas.block import SealedBlock
from traco.services.node.node import Node

_honest = Node.execute


async def _slow(self: Node, block: SealedBlock) -> None:
    await asyncio.sleep(float(os.environ.get("TRACO_TEST_EXECUTE_DELAY_S", "1")))
    await _honest(self, block)


Node.execute = _slow  # type: ignore[method-assign]

if __name__ == "__main__":
    from traco.cli.main import app

    sys.argv[0] = "traco"
    app()
