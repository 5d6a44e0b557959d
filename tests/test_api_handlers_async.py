"""Every HTTP handler of a node is ``async``: it runs on the node's event loop, between blocks.

Why it matters: a service's SQLite writer remembers values, scans and which keys it holds
(``core/adapters/sqlite_state.py``), and the services' APIs read through that same writer.
A plain ``def`` handler would run in FastAPI's thread pool, beside block execution, and a read
racing a commit could remember what the commit replaced — a replica that then executes on
stale state. This keeps every handler on the loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "traco"
API_MODULES = [*sorted(SRC.glob("services/*/api.py")), SRC / "services/node/state_proofs.py", SRC / "services/serve.py"]
ROUTE_VERBS = {"get", "post", "put", "patch", "delete"}


def _route_handlers(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Attribute) and call.attr in ROUTE_VERBS:
                    found.append(node)
    return found


@pytest.mark.parametrize("module", API_MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_every_route_handler_is_async(module: Path) -> None:
    handlers = _route_handlers(ast.parse(module.read_text()))
    assert handlers, f"{module} defines no route: the scan no longer finds them"
    plain = [f"{h.name} (line {h.lineno})" for h in handlers if not isinstance(h, ast.AsyncFunctionDef)]
    assert not plain, f"route handlers in {module.name} must be async (see this test's docstring): {plain}"
