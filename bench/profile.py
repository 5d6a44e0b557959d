"""Where a node's CPU goes (``make profile``): py-spy on one node process under load.

Runs ``bench/trade.py`` (TRC transfers end to end on four nodes) or ``bench/chain.py``
(sealed ``chain.anchor``, validators only), attaches py-spy to node ``n1`` once the load is
under way, and writes a flame graph (SVG) and the collapsed stacks, then prints the top
functions by own time and by inclusive time — what decision 0008's tables are read from.
py-spy needs to attach to another process: root, or ``ptrace`` allowed (Linux
``kernel.yama.ptrace_scope`` 0). Not a test: it measures and prints.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_FRAME = re.compile(r" \((.*?):\d+\)")
_IDLE = ("select (selectors", "epoll")


def node_pid(node: str, timeout_s: float) -> int | None:
    """The pid of ``traco serve node --node <node>`` once it runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", f"serve node --node {node}$"], capture_output=True, text=True)
        pids = [int(p) for p in found.stdout.split()]
        if pids:
            return pids[0]
        time.sleep(0.5)
    return None


def summarise(raw: Path, top: int) -> list[str]:
    """Own-time and inclusive-time shares of the busy samples in py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_FRAME.sub(r" (\1)", f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or any(frames[-1].startswith(idle) for idle in _IDLE):
            continue
        n = int(count)
        busy += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{busy} busy samples", "", "own time:"]
    out += [f"  {100 * c / busy:5.1f}%  {f}" for f, c in own.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {100 * c / busy:5.1f}%  {f}" for f, c in inclusive.most_common(3 * top)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--load", choices=["trade", "chain"], default="trade")
    parser.add_argument("--node", default="n1")
    parser.add_argument("--delay", type=float, default=12.0, help="seconds after the node starts before sampling")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="profile", help="folder for the SVG and the collapsed stacks")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load = ["trade.py", "--transfers", "20000"] if args.load == "trade" else ["chain.py", "--txs", "40000"]
    bench = subprocess.Popen([sys.executable, str(HERE / load[0]), *load[1:]], stdout=subprocess.DEVNULL)
    try:
        pid = node_pid(args.node, 60)
        if pid is None:
            print(f"node {args.node} never started", file=sys.stderr)
            return 1
        time.sleep(args.delay)
        spy = [str(Path(sys.executable).with_name("py-spy"))]  # installed beside this Python (dev extra)
        common = ["record", "-p", str(pid), "-d", str(int(args.seconds)), "-r", "100", "--nonblocking"]
        svg, raw = out / f"{args.load}-{args.node}.svg", out / f"{args.load}-{args.node}.txt"
        samplers = [
            subprocess.Popen([*spy, *common, "-f", "flamegraph", "-o", str(svg)], stdout=subprocess.DEVNULL),
            subprocess.Popen([*spy, *common, "-f", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL),
        ]
        if any(s.wait() != 0 for s in samplers):
            print("py-spy failed (it needs root or ptrace permission)", file=sys.stderr)
            return 1
    finally:
        bench.wait()
    print(f"flame graph: {svg}\ncollapsed stacks: {raw}\n")
    print("\n".join(summarise(raw, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
