"""Named mutants of the consensus rules, and a time-boxed run of mutmut over the same code.

Why: a test suite can pass forever without being able to fail. Each mutant below is one
precise, plausible bug in a safety or liveness rule of Algorithm 1 ("The latest gossip on
BFT consensus") as ``services/consensus/machine.py`` and ``votes.py`` write it: a lock
check dropped, a polka or commit counted at f+1 instead of 2f+1, a quorum that is a mere
majority, a proposer rotation that ignores the round. The asset layer's safety rules get the
same treatment (``ASSET_MUTANTS``): a hold that can be executed at its expiry or by anyone or
taken back by its owner, a mint past the reserve, a Coco emission that never halves, a transfer
that creates money, a held title that moves. So do the trade flows' (``FLOW_MUTANTS``): a loan
paid out though doc refused its pledge, a document pledged twice, a default a millisecond late,
interest rounded down, an escrow paid on anyone's milestone, a DvP title hold not decided by
trade, a managed hold touched by the generic hold kinds. So does the state tree's storage
(``STATE_MUTANTS``): a node left behind or never stored, a page rewritten without the nodes it
held, an undo that forgets, a moved store trusted unchecked, a scan or an upstream's answer
remembered past the state it read. So do party's governance and membership rules
(``PARTY_MUTANTS``): an upgrade that does not move a rule version up, a council stripped of its
governance kinds or of its last member, a KYC or delegation at its bounds, a node key left free
after a rotation. The suite must kill every one.

The catalogue is in ``tools/mutants_consensus.py``, ``mutants_assets.py``, ``mutants_flows.py``,
``mutants_state.py`` and ``mutants_party.py``; this module runs it.

How: ``python tools/named_mutants.py`` copies the repository to a temporary directory,
applies one mutant at a time there (an exact ``old`` -> ``new`` text edit that must match
once; the working tree is never touched), runs the tests named for it with
``PYTHONPATH=<copy>/src`` so ``traco`` is imported from the copy, with ``-x`` and the
``mutants`` Hypothesis profile (fixed examples, no shrinking), and prints a table. It
exits 1 naming every mutant that survived, 2 if the setup is broken (an edit no longer
matches, the copy imports the wrong code, or the tests fail without any mutant).
``--only NAME`` picks mutants; ``--all-tests`` runs the whole of ``tests/consensus``
without ``-x`` and lists every test that kills each mutant (to choose the fast killers).

``python tools/named_mutants.py mutmut --minutes 30 --report mutation-report.txt`` runs
mutmut (``pip install -e '.[mutation]'``; its settings are ``[tool.mutmut]`` in
pyproject.toml) on a copy whose ``src/traco`` links are replaced by real directories (mutmut
walks ``src`` and does not follow the links), stops it after the time limit, and writes
the counts and every surviving mutant's diff to the report. ``--flows`` (or ``--mutate GLOB...``
and ``--tests NODE...``) points the copy's settings at the trade flows instead; the repository's
own settings are left as they are.

Caveat: a mutant is judged by the tests listed for it, chosen because they kill it fast;
when a test is renamed, update the list (the setup check fails on a missing test).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mutants_assets import ASSET_MUTANTS
from mutants_consensus import MACHINE, MUTANTS, VOTES, Mutant
from mutants_flows import FLOW_MUTANTS
from mutants_party import PARTY_MUTANTS
from mutants_state import STATE_MUTANTS

ROOT = Path(__file__).resolve().parent.parent
IGNORED: tuple[str, ...] = (".venv", ".git", ".hypothesis", ".pytest_cache", "__pycache__", ".mypy_cache")
IGNORED += (".ruff_cache", "traco-data", "mutants", "*.sqlite", "*.sqlite-wal", "*.sqlite-shm")
PYTEST = ("-q", "-p", "no:cacheprovider", "--hypothesis-profile=mutants", "-rf", "--no-header")


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # killed, survived, timeout
    killers: list[str]
    seconds: float


# ---------------------------------------------------------------------------------------------
# A copy of the repository to mutate


def copy_repo(into: Path, *, real_src: bool = False) -> Path:
    """Copy the repository (sources and tests, no venv or git) to ``into/repo``. With
    ``real_src`` the ``src/traco`` links become directories (for tools that do not follow
    links)."""
    dst = into / "repo"
    shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
    if real_src:
        for link in [p for p in (dst / "src" / "traco").iterdir() if p.is_symlink()]:
            target = (ROOT / "src" / "traco" / link.name).resolve()
            link.unlink()
            shutil.copytree(target, link, ignore=shutil.ignore_patterns(*IGNORED))
    return dst


def copy_env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # an edit of the same size within a second must not hit a stale .pyc
    env["TRACO_NATIVE"] = "0"  # the mutants change the Python modules, not their compiled twins
    return env


def check_imports_copy(repo: Path) -> None:
    code = (
        "import traco.services.consensus.machine as m, traco.services.consensus.votes as v;"
        " print(m.__file__, v.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=copy_env(repo), capture_output=True, text=True)
    files = out.stdout.split()
    if (
        out.returncode != 0
        or len(files) != 2
        or not all(Path(f).resolve().is_relative_to(repo.resolve()) for f in files)
    ):
        sys.exit(f"setup: the copy at {repo} does not import its own consensus code: {out.stdout}{out.stderr}")


# ---------------------------------------------------------------------------------------------
# Named mutants


def run_tests(repo: Path, tests: Sequence[str], *, stop_first: bool, timeout_s: float) -> tuple[int | None, str]:
    """pytest's exit code (None on timeout) and its output."""
    cmd = [sys.executable, "-m", "pytest", *PYTEST, *(["-x"] if stop_first else []), *tests]
    proc = subprocess.Popen(
        cmd,
        cwd=repo,
        env=copy_env(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


def failed_tests(output: str) -> list[str]:
    return [m.group(1).split("[")[0] for m in re.finditer(r"^FAILED (\S+)", output, re.MULTILINE)]


def judge(repo: Path, mutant: Mutant, *, all_tests: bool, timeout_s: float) -> Outcome:
    target = repo / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        found = original.count(mutant.old)
        sys.exit(f"setup: mutant {mutant.name}: the text to replace occurs {found} times in {mutant.path}")
    target.write_text(original.replace(mutant.old, mutant.new))
    started = time.monotonic()
    try:
        tests = ["tests/consensus"] if all_tests else list(mutant.tests)
        code, output = run_tests(repo, tests, stop_first=not all_tests, timeout_s=timeout_s)
    finally:
        target.write_text(original)
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(mutant, "timeout", [], seconds)
    killers = failed_tests(output)
    if code == 1 and killers:
        return Outcome(mutant, "killed", killers, seconds)
    if code == 0:
        return Outcome(mutant, "survived", [], seconds)
    sys.exit(f"setup: mutant {mutant.name}: pytest exited {code} without a failing test:\n{output[-3000:]}")


def print_table(outcomes: Sequence[Outcome]) -> None:
    rows = [("mutant", "rule", "result", "killed by", "s")]
    for o in outcomes:
        killer = ", ".join(k.split("::")[-1] for k in o.killers) or "-"
        rows.append((o.mutant.name, o.mutant.rule, o.verdict, killer, f"{o.seconds:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4].rjust(6))


def named(args: argparse.Namespace) -> int:
    everything = (*MUTANTS, *ASSET_MUTANTS, *FLOW_MUTANTS, *STATE_MUTANTS, *PARTY_MUTANTS)
    chosen = [m for m in everything if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in everything}
    if unknown:
        sys.exit(f"unknown mutants: {sorted(unknown)}; known: {[m.name for m in everything]}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="traco-mutants-") as tmp:
        repo = copy_repo(Path(tmp))
        check_imports_copy(repo)
        baseline = ["tests/consensus"] if args.all_tests else sorted({t for m in chosen for t in m.tests})
        code, output = run_tests(repo, baseline, stop_first=False, timeout_s=args.timeout * 4)
        if code != 0:
            print(output[-5000:])
            print("setup: the tests fail (or time out, or are missing) without any mutant", file=sys.stderr)
            return 2
        outcomes = []
        for mutant in chosen:
            outcomes.append(judge(repo, mutant, all_tests=args.all_tests, timeout_s=args.timeout))
            print(f"{mutant.name}: {outcomes[-1].verdict} ({outcomes[-1].seconds:.1f} s)", flush=True)
    print()
    print_table(outcomes)
    survivors = [o.mutant.name for o in outcomes if o.verdict == "survived"]
    print(f"\n{len(outcomes) - len(survivors)}/{len(outcomes)} killed in {time.monotonic() - started:.0f} s")
    if survivors:
        print(f"SURVIVED: {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# mutmut, time-boxed


FLOW_MUTMUT_PATHS: tuple[str, ...] = (
    *(f"services/trade/{flow}/{part}.py" for flow in ("loans", "escrow", "dvp") for part in ("rules", "state", "flow")),
    "services/trade/loans/interest.py",
    "services/doc/managed.py",
)
"""What ``mutmut --flows`` mutates: the trade flows' rules, records and clauses, and doc's
managed pledges (issue 10). Not their ``payloads.py``/``events.py``: pydantic models whose
mutants are field descriptions, thousands of them, that would eat the time box."""
FLOW_MUTMUT_TESTS: tuple[str, ...] = (
    "tests/trade/test_loans.py",
    "tests/trade/test_escrow.py",
    "tests/trade/test_dvp.py",
    "tests/trade/test_interest.py::test_realistic_tenors_by_hand",
    "tests/trade/test_interest.py::test_partial_repayments_cost_what_one_repayment_would",
    "tests/trade/test_flows_edges.py",
    "tests/trade/test_flows_edges_dvp.py",
    "tests/trade/test_flows_machine.py",
)
"""The flows' tests for mutmut. test_interest's Hypothesis test is left out: under mutmut's
instrumentation its input generation trips Hypothesis's too_slow health check on a loaded
machine, and mutmut then refuses to start (its by-hand tests stay)."""


def restrict_mutmut(repo: Path, mutate: Sequence[str], tests: Sequence[str]) -> list[str]:
    """Point the COPY's ``[tool.mutmut]`` at other files and tests (the repository's own settings,
    the consensus scope, stay as they are for everyone else). Paths are repository-relative
    (``services/trade/loans/*.py``); mutmut sees them under ``src/traco``."""
    config = repo / "pyproject.toml"
    text = config.read_text()
    replaced = {
        "only_mutate": [f"src/traco/{m}" for m in mutate],
        "pytest_add_cli_args_test_selection": list(tests),
    }
    for key, values in replaced.items():
        if not values:
            continue
        pattern = re.compile(rf"^{key} = \[.*?\]$", re.MULTILINE | re.DOTALL)
        rendered = f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in values)}]"
        text, count = pattern.subn(rendered.replace("\\", "\\\\"), text, count=1)
        if count != 1:
            sys.exit(f"setup: [tool.mutmut] in {config} has no {key} line to replace")
    config.write_text(text)
    return list(mutate) or [MACHINE, VOTES]


def mutmut_run(args: argparse.Namespace) -> int:
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if mutmut is None:
        sys.exit("mutmut is not installed: pip install -e '.[mutation]'")
    report = Path(args.report).resolve()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="traco-mutmut-"))
    repo = work / "repo"
    if not repo.exists():
        copy_repo(work, real_src=True)
    mutate = list(args.mutate or (FLOW_MUTMUT_PATHS if args.flows else ()))
    tests = list(args.tests or (FLOW_MUTMUT_TESTS if args.flows else ()))
    scope = restrict_mutmut(repo, mutate, tests) if mutate or tests else [MACHINE, VOTES]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TRACO_NATIVE="0")
    started = time.monotonic()
    print(f"mutmut in {repo} for at most {args.minutes} min", flush=True)
    with open(work / "mutmut-run.log", "w") as log:
        proc = subprocess.Popen(
            [mutmut, "run", "--max-children", str(args.children)],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=args.minutes * 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = None
    elapsed = time.monotonic() - started
    results = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=repo, env=env, capture_output=True, text=True
    ).stdout
    statuses: dict[str, list[str]] = {}
    for line in results.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            statuses.setdefault(status, []).append(name)
    survivors = statuses.get("survived", [])
    lines = [
        f"mutmut over {', '.join(scope)}: {'stopped at the time limit' if code is None else f'exit {code}'}"
        f" after {elapsed / 60:.1f} min (limit {args.minutes} min), {args.children} children",
        f"command: mutmut run --max-children {args.children} (in {repo}; settings: [tool.mutmut] in pyproject.toml)",
        f"mutants: {sum(len(v) for v in statuses.values())}",
        *(f"  {status}: {len(names)}" for status, names in sorted(statuses.items())),
        "",
        "survivors:",
    ]
    for name in survivors:
        diff = subprocess.run([mutmut, "show", name], cwd=repo, env=env, capture_output=True, text=True).stdout
        lines += [f"--- {name}", diff.rstrip(), ""]
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: lines.index("survivors:")]))
    print(f"report: {report}; mutmut's own files: {repo / 'mutants'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--all-tests", action="store_true", help="run all of tests/consensus, list every killer")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant (default 300)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    tool = sub.add_parser("mutmut", help="a time-boxed mutmut run over machine.py and votes.py")
    tool.add_argument("--minutes", type=float, default=30, help="time limit (default 30)")
    tool.add_argument("--report", default="mutation-report.txt", help="where to write the report")
    tool.add_argument("--children", type=int, default=2, help="parallel mutmut workers (default 2)")
    tool.add_argument("--workdir", help="reuse (resume) this directory instead of a fresh temporary one")
    tool.add_argument("--flows", action="store_true", help="mutate the trade flows (FLOW_MUTMUT_PATHS) instead")
    tool.add_argument("--mutate", nargs="+", metavar="GLOB", help="repository paths to mutate (in the copy only)")
    tool.add_argument("--tests", nargs="+", metavar="NODE", help="the tests mutmut runs (in the copy only)")
    args = parser.parse_args(argv)
    if args.command == "mutmut":
        return mutmut_run(args)
    if args.list:
        for m in (*MUTANTS, *ASSET_MUTANTS, *FLOW_MUTANTS, *STATE_MUTANTS, *PARTY_MUTANTS):
            print(f"{m.name}: {m.rule}\n  {m.path}: {m.old!r}\n  -> {m.new!r}")
        return 0
    return named(args)


if __name__ == "__main__":
    sys.exit(main())
