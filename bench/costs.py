"""What each process of a benchmarked mesh spent per transaction (issue: performance targets).

A node is one process: its validator, its service replicas, the Kafka client and the HTTP API.
The issue's targets are per part — a validator's CPU per sealed transaction against one
Ed25519 verification, a service replica's CPU per executed transaction — so the process's CPU
(``/proc/<pid>/stat``) is split with the node's own counter ``traco_service_cpu_seconds_total``
(thread time each replica spent executing blocks and encoding its outputs, read from the
node's ``GET /metrics``): the replicas' share is theirs, the remainder is the validator's and
the Kafka client's. Sampled before and after a load, the differences are what the load cost.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_SERVICE_CPU = re.compile(r"^traco_service_cpu_seconds_total\{([^}]*)\} ([0-9.eE+-]+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_cpu_seconds(metrics_url: str) -> dict[str, float]:
    """``{service: CPU seconds}`` from one node's ``/metrics`` (empty if it cannot be read)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for labels, value in _SERVICE_CPU.findall(text):
        service = dict(_LABEL.findall(labels)).get("service")
        if service:
            found[service] = float(value)
    return found


@dataclass(frozen=True)
class Sample:
    process: float
    services: dict[str, float]


class NodeCosts:
    """Samples every node's process and service CPU; ``rows`` turns two samples into table rows."""

    def __init__(self, pids: dict[str, int], api_port: int) -> None:
        """``pids``: node name (``node-n0``…) to pid, in genesis order (node i serves its
        consensus API, with ``/metrics``, on ``api_port + 10 × i``)."""
        self.pids = pids
        self.urls = {name: f"http://127.0.0.1:{api_port + 10 * i}/metrics" for i, name in enumerate(pids)}

    def sample(self) -> dict[str, Sample]:
        return {
            name: Sample(process_cpu_seconds(pid), service_cpu_seconds(self.urls[name]))
            for name, pid in self.pids.items()
        }

    @staticmethod
    def per_part(before: dict[str, Sample], after: dict[str, Sample], txs: int) -> dict[str, dict[str, float]]:
        """``{node: {part: µs per transaction}}``: ``process``, ``validator`` (with the Kafka
        client: the process less its replicas and the chain's own execution), ``chain`` and each
        replica by service name."""
        out: dict[str, dict[str, float]] = {}
        for name in sorted(after):
            process = after[name].process - before[name].process
            was = before[name].services
            services = {s: v - was.get(s, 0.0) for s, v in after[name].services.items()}
            parts = {
                "process": process,
                "validator": process - sum(services.values()),
                **dict(sorted(services.items())),
            }
            out[name] = {part: seconds / max(1, txs) * 1e6 for part, seconds in parts.items()}
        return out

    @staticmethod
    def rows(
        before: dict[str, Sample], after: dict[str, Sample], txs: int, verify_per_s: float, what: str = "tx"
    ) -> list[tuple[str, str, str]]:
        """Per node: the process, its validator (with the Kafka client) and each replica, in µs
        per transaction and as a multiple of one Ed25519 verification."""
        verify_us = 1e6 / verify_per_s
        out: list[tuple[str, str, str]] = []
        for node, parts in NodeCosts.per_part(before, after, txs).items():
            for part, us in parts.items():
                out.append(
                    (
                        f"CPU per {what}, {node}, {part_label(part)}",
                        f"{us:,.0f} µs",
                        f"{us / verify_us:.1f} × one verify",
                    )
                )
        return out


async def at_rest(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU over ``seconds`` of doing nothing, as a share of one core: what a mesh
    costs when no transaction comes (mostly its Kafka clients' fetches, decision 0006)."""
    before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    began = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    return {name: (process_cpu_seconds(pid) - before[name]) / elapsed for name, pid in pids.items()}


def part_label(part: str) -> str:
    """How a table names a part of a node: the process, its validator with the Kafka client, the
    chain's own kinds (executed and committed inside the validator's loop, measured apart), or a
    service replica."""
    if part == "validator":
        return "validator + Kafka client"
    if part == "chain":
        return "chain's own kinds (in the validator's loop)"
    return part if part == "process" else f"{part} replica"


def mean_rows(parts: dict[str, dict[str, float]], verify_per_s: float, what: str) -> list[tuple[str, str]]:
    """The mean over the nodes of each part's µs per ``what`` (process, validator, then the
    replicas), and as a multiple of one Ed25519 verification."""
    verify_us = 1e6 / verify_per_s
    found = sorted({part for p in parts.values() for part in p}, key=lambda p: (p != "process", p != "validator", p))
    rows = []
    for part in found:
        us = mean_part(parts, part)
        rows.append(
            (
                f"CPU per {what}, mean of the nodes, {part_label(part)}",
                f"{us:,.0f} µs = {us / verify_us:.1f} × one verify",
            )
        )
    return rows


def mean_part(parts: dict[str, dict[str, float]], part: str) -> float:
    """The mean over nodes of one part's µs per transaction (0 when no node reports it)."""
    found = [p[part] for p in parts.values() if part in p]
    return sum(found) / len(found) if found else 0.0


__all__ = [
    "NodeCosts",
    "Sample",
    "at_rest",
    "mean_part",
    "mean_rows",
    "part_label",
    "process_cpu_seconds",
    "service_cpu_seconds",
]
