"""``traco up``'s banner: the example a person copies is one line, whole, valid JSON, and
accepted by the chain's own payload model (it used to wrap in the middle of its JSON)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from traco.cli import up
from traco.cli.payloads import payload_problems
from traco.core.settings import Settings


def banner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    settings = Settings().model_copy(update={"data_dir": tmp_path / "elsewhere" / "a-rather-long-data-directory"})
    with up.console.capture() as captured:  # the module's own console, 80 columns when not a terminal
        up.show_banner(settings, "127.0.0.1:9092", ["n0", "n1", "n2", "n3"], "http://127.0.0.1:8700")
    return captured.get().splitlines()


def test_the_example_is_one_line_a_shell_can_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = banner(tmp_path, monkeypatch)
    sends = [line for line in lines if "traco tx send" in line]
    assert len(sends) == 1, lines
    argv = shlex.split(sends[0])
    assert argv[:5] == ["traco", "tx", "send", "--kind", "chain.anchor"]
    payload = json.loads(argv[argv.index("--payload") + 1])
    assert payload_problems("chain.anchor", payload) == []
    assert argv[-2:] == ["--data-dir", str((tmp_path / "elsewhere" / "a-rather-long-data-directory").resolve())]
    assert any(line.strip() == f"traco chain status --data-dir {argv[-1]}" for line in lines)


def test_no_banner_line_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = banner(tmp_path, monkeypatch)
    data_dir = str((tmp_path / "elsewhere" / "a-rather-long-data-directory").resolve())
    assert any(line.startswith(f"  data dir   {data_dir}   logs: {data_dir}/logs") for line in lines), lines
    assert all(line.startswith(("  ", "TRACO", "Try", "Ctrl-C")) for line in lines), lines
