"""Fixtures of the doc rule tests: ``cast`` (the members) and ``ledger`` (empty doc state over
the cast's party view). Helpers that tests import directly live in ``helpers.py``."""

from __future__ import annotations

import pytest

from tests.doc.helpers import Cast, Ledger


@pytest.fixture
def cast() -> Cast:
    return Cast()


@pytest.fixture
def ledger(cast: Cast) -> Ledger:
    return Ledger(party=cast.view())


@pytest.fixture
def ledger2(cast: Cast) -> Ledger:
    """Empty doc state whose blocks run under version 2 of doc's rules (decision 0021)."""
    return Ledger(party=cast.view(), rules=2)
