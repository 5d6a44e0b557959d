"""Fixtures shared by the whole test suite.

Keep this file small: fixtures used by one package belong in that package's ``conftest.py``.
Add a fixture here only when tests in several packages need it, and document it below.

``tansu_broker`` (session)
    Starts one real Tansu broker (in-memory storage, free port on 127.0.0.1) the first time a
    test asks for it, yields its bootstrap string ``"127.0.0.1:PORT"`` and stops it at the
    end of the session. Tests share it, so they must not assume an empty broker: name topics
    after ``unique_chain``. Tests that do not ask for it never start a broker.

``unique_chain`` (function)
    A fresh chain id such as ``"t3f9a0c1b2d4e"`` (valid for ``traco.core.topics.topic``), so
    topics of different tests never collide on the shared broker.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from traco.core.broker import TansuBroker


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[str]:
    """Bootstrap address of a Tansu broker shared by the test session."""
    with TansuBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def unique_chain() -> str:
    """A chain id no other test uses."""
    return f"t{secrets.token_hex(6)}"
