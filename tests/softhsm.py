"""A SoftHSM2 token in a temporary directory, for the PKCS#11 signer's tests.

SoftHSM2 (Debian package ``softhsm2``; ``.ci/run`` installs it) is a software HSM behind the
same PKCS#11 interface as a bank's hardware one. Its configuration file is named by
``SOFTHSM2_CONF``, so a test points it at a temporary token directory and never touches the
machine's tokens. ``python-pkcs11`` loads a module once per process, so tests in one process
share one configuration (the session fixture ``softhsm`` in ``tests/conftest.py``); processes
started by a test get the same environment from ``SoftHsm.env``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "traco-test"
USER_PIN = "246810"
SO_PIN = "13579111"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    conf: Path
    token_label: str
    pin: str
    eddsa: bool  # whether this SoftHSM build offers CKM_EDDSA (it needs an OpenSSL with Ed25519)

    def env(self) -> dict[str, str]:
        """What a process needs to sign with this token's keys (``TRACO_SIGNER=pkcs11``)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "TRACO_SIGNER": "pkcs11",
            "TRACO_PKCS11_MODULE": str(self.module),
            "TRACO_PKCS11_TOKEN_LABEL": self.token_label,
            "TRACO_PKCS11_PIN": self.pin,
        }


def unavailable() -> str | None:
    """Why SoftHSM2 tests cannot run here (None if they can)."""
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is not installed (apt-get install softhsm2; .ci/run does)"
    if module_path() is None:
        return f"libsofthsm2.so not found in {', '.join(MODULE_PATHS)}"
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 is not installed (pip install 'traco[hsm]')"
    return None


def module_path() -> Path | None:
    return next((Path(p) for p in MODULE_PATHS if Path(p).exists()), None)


def make_token(directory: Path, label: str = TOKEN_LABEL, pin: str = USER_PIN) -> tuple[Path, Path]:
    """A fresh token in ``directory``; returns ``(module, config file)``."""
    module = module_path()
    assert module is not None
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )
    return module, conf


def offers_eddsa(module: Path, label: str) -> bool:
    """Whether the token's slot lists CKM_EDDSA (call with SOFTHSM2_CONF already set)."""
    import pkcs11

    token = pkcs11.lib(str(module)).get_token(token_label=label)
    return pkcs11.Mechanism.EDDSA in token.slot.get_mechanisms()
