"""Scaling benchmark (``make bench``): what each added node costs, as one table.

Runs ``bench/chain.py`` with 1, 4 and 7 validators (sealed ``chain.anchor`` tx/s and each
validator's CPU per sealed transaction) and ``bench/trade.py`` with 1 and 4 nodes (TRC
transfers end to end with receipts, and each node's validator and trade replica CPU per
transfer), each in its own process with a smaller load than the full benchmarks, and prints
the figures beside the Ed25519 verification rate each run measured. On one machine every
node shares the same cores, so throughput falls as nodes are added even when no node does
more work per transaction: the µs columns are the figures that carry over to one machine per
node. Not a test: it measures and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, args: list[str]) -> dict[str, float]:
    """Run one benchmark script with ``--json`` and return its figures (empty if it failed)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run(
            [sys.executable, str(HERE / script), *args, "--json", out.name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(
                f"  {script} {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        try:
            return dict(json.loads(Path(out.name).read_text() or "{}"))
        except (OSError, ValueError):
            return {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=6000, help="chain.anchor transactions per sealed run")
    parser.add_argument("--transfers", type=int, default=4000, help="transfers per end-to-end run")
    parser.add_argument("--validators", type=int, nargs="+", default=[1, 4, 7])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str, str]] = []
    for n in args.validators:
        print(f"sealing with {n} validator(s)…", flush=True)
        f = run("chain.py", ["--validators", str(n), "--txs", str(args.txs), "--seconds", "3"])
        verify_us = 1e6 / f.get("ed25519_per_s", float("nan"))
        rows.append(
            (
                f"sealed chain.anchor, {n} validator(s)",
                f"{f.get('sealed_per_s', 0):,.0f} tx/s",
                f"{f.get('validator_us', 0):,.0f} µs = {f.get('validator_us', 0) / verify_us:.1f} × verify"
                f" (+ {f.get('chain_us', 0):,.0f} µs executing chain.anchor)",
                "—",
                f"{f.get('ed25519_per_s', 0):,.0f}/s",
            )
        )
    for n in args.nodes:
        print(f"transfers end to end with {n} node(s)…", flush=True)
        f = run("trade.py", ["--nodes", str(n), "--transfers", str(args.transfers)])
        verify_us = 1e6 / f.get("ed25519_per_s", float("nan"))
        rows.append(
            (
                f"trade.transfer end to end, {n} node(s)",
                f"{f.get('transfers_per_s', 0):,.0f} tx/s",
                f"{f.get('validator_us', 0):,.0f} µs = {f.get('validator_us', 0) / verify_us:.1f} × verify",
                f"{f.get('trade_us', 0):,.0f} µs",
                f"{f.get('ed25519_per_s', 0):,.0f}/s",
            )
        )
    head = ("measure (mean over nodes)", "throughput", "CPU per tx, each validator", "each trade replica", "Ed25519")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print()
    for row in [head, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
