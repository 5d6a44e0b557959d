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

Hypothesis profile ``mutants`` (``pytest --hypothesis-profile=mutants``, used by
``tools/named_mutants.py`` and ``make mutants``): the same examples on every run (derandomized,
no example database) and no shrinking, so a mutant is judged by a fixed set of examples and a
failing run stops at its first counterexample instead of spending minutes minimising it.

``softhsm`` (session)
    A SoftHSM2 token (``tests/softhsm.py``) in a temporary directory, with ``SOFTHSM2_CONF``
    set for the whole session (python-pkcs11 loads the module once per process). Skips, with
    the reason, where SoftHSM2 or python-pkcs11 is missing; ``.eddsa`` says whether the build
    signs Ed25519. Tests give their keys unique labels: the token is shared.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from hypothesis import Phase, settings

from tests import softhsm as hsm
from traco.core.broker import TansuBroker

settings.register_profile(
    "mutants",
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    print_blob=False,
)


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[str]:
    """Bootstrap address of a Tansu broker shared by the test session."""
    with TansuBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def unique_chain() -> str:
    """A chain id no other test uses."""
    return f"t{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hsm.SoftHsm]:
    """A SoftHSM2 token shared by the session (see the module docstring)."""
    reason = hsm.unavailable()
    if reason:
        pytest.skip(reason)
    module, conf = hsm.make_token(tmp_path_factory.mktemp("softhsm"))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield hsm.SoftHsm(module, conf, hsm.TOKEN_LABEL, hsm.USER_PIN, hsm.offers_eddsa(module, hsm.TOKEN_LABEL))
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
