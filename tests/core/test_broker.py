"""The embedded broker starts, answers Kafka, stops, and explains why when it cannot start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from traco.core.broker import TansuBroker, free_port, wait_for_kafka
from traco.core.errors import BrokerStartError, BusError

pytestmark = pytest.mark.integration


def fake_binary(tmp_path: Path, script: str) -> str:
    """An executable shell script standing in for the Tansu binary."""
    path = tmp_path / "fake-tansu"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_broker_starts_answers_kafka_and_stops(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "tansu.log"
    with TansuBroker(log_path=log_path) as broker:
        assert broker.running
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        wait_for_kafka(broker.bootstrap, timeout=5)
        pid = broker.pid
        assert pid is not None
    assert not broker.running
    assert not process_exists(pid)
    with pytest.raises(BusError, match="not reachable"):
        wait_for_kafka(f"127.0.0.1:{free_port()}", timeout=0.3)
    assert "tansu" in log_path.read_text().lower()


def test_broker_uses_the_port_it_is_given() -> None:
    port = free_port()
    with TansuBroker(port=port) as broker:
        assert broker.bootstrap == f"127.0.0.1:{port}"
        wait_for_kafka(broker.bootstrap, timeout=5)


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(BrokerStartError, match=r"binary not found.*no-such-tansu"):
        TansuBroker().start()


def test_a_broker_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, 'echo "error: address already in use" >&2; exit 3')
    with pytest.raises(BrokerStartError) as caught:
        TansuBroker(port=free_port(), binary=binary).start()
    assert "exited with code 3" in str(caught.value)
    assert "address already in use" in str(caught.value)


def test_a_broker_that_never_answers_times_out_and_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = fake_binary(tmp_path, f'echo $$ > "{pid_file}"; echo starting; exec sleep 60')
    broker = TansuBroker(binary=binary, start_timeout=0.5, stop_timeout=1)
    with pytest.raises(BrokerStartError, match="not ready after") as caught:
        broker.start()
    assert "starting" in str(caught.value)
    assert not process_exists(int(pid_file.read_text()))
    assert not broker.running


def test_bad_bootstrap_strings_are_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        wait_for_kafka("localhost", timeout=0.1)
