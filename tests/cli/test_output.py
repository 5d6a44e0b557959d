"""What ``traco`` prints for a person: concise documents, ISO 8601 UTC times, ids never broken
across lines, every input problem at once. The commands run with typer's CliRunner (not a
terminal, so rich would wrap at 80 columns) against real doc and party APIs served by uvicorn."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.cli.conftest import Served
from traco.cli import doc as doc_cli
from traco.cli.main import app
from traco.services.consensus.api import build_proof
from traco.services.doc import client as doc_client

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
RAW_MS = re.compile(r"(?<![0-9a-f])1[0-9]{12}(?![0-9a-f])")
HEX64 = re.compile(r"[0-9a-f]{64}")


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def whole_line_with(text: str, output: str) -> str:
    """The one line of ``output`` that contains all of ``text`` (fails if it was broken up)."""
    lines = [line for line in output.splitlines() if text in line]
    assert lines, f"{text!r} is not on one line of:\n{output}"
    return lines[0]


# --------------------------------------------------------------------------- doc show / verify


def test_doc_show_is_a_few_lines_a_person_reads(served: Served) -> None:
    bl1 = served.ids["bl1"]
    shown = run("doc", "show", bl1, "--doc-api", served.doc_api)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert len(lines) <= 20, shown.stdout
    assert lines[0] == f"document    {bl1}"
    assert "type        bill_of_lading, negotiable, version 1" in lines
    assert "business    MAEU/BL-BL-1" in lines or any(line.startswith("business    MAEU/") for line in lines)
    assert "issuer      carrier" in lines
    assert "holder      importer" in lines  # after the transfer
    assert "pledge      none" in lines
    assert "status      active" in lines
    events = [line for line in lines if line.startswith("  #")]
    assert [line.split()[4] for line in events] == [  # the last five of six
        "PledgeOffered",
        "DocumentPledged",
        "PledgeReleased",
        "MilestoneRecorded",
        "TitleTransferred",
    ]
    assert all(ISO.search(line) for line in events)
    assert "by exporter  to importer" in events[-1]
    assert not RAW_MS.search(shown.stdout), shown.stdout


def test_doc_show_names_a_pledge_in_force_with_its_expiry(served: Served) -> None:
    shown = run("doc", "show", served.ids["bl2"], "--doc-api", served.doc_api)
    assert shown.exit_code == 0, shown.output
    pledge = whole_line_with("pledge      to bank-b: 5000 USD (minor units) until ", shown.stdout)
    assert ISO.search(pledge)


def test_doc_show_json_is_everything_the_api_said(served: Served) -> None:
    shown = run("doc", "show", served.ids["bl1"], "--doc-api", served.doc_api, "--json")
    assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.stdout)
    assert set(answer) == {"document", "current", "pledge_in_force", "history", "endorsements", "as_of_height"}
    assert len(answer["history"]) == 6
    assert isinstance(answer["history"][0]["time"], int)  # machine form keeps milliseconds


def test_doc_show_of_an_unknown_document_names_it_on_one_line(served: Served) -> None:
    unknown = "0123456789abcdef" * 4
    shown = run("doc", "show", unknown, "--doc-api", served.doc_api)
    assert shown.exit_code == 1
    assert whole_line_with(f"error: no document {unknown}", shown.stderr)


def test_doc_verify_is_concise_and_json_is_everything(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = served.chain

    class ChainApi(contextlib.nullcontext["ChainApi"]):  # the consensus API's /proofs, from the real ledger
        def get_json(self, path: str, allow_404: bool = False) -> Any:
            proof = build_proof(SimpleNamespace(ledger=chain.ledger), path.rsplit("/", 1)[1])  # type: ignore[arg-type]
            return None if proof is None else proof.model_dump(mode="json")

    found = chain.doc_report("bl-1")
    assert found is not None
    monkeypatch.setattr(doc_cli, "client_for", lambda *_: ChainApi())
    monkeypatch.setattr(doc_client, "file_sha256", lambda _file: found["file_hash"])
    bl = tmp_path / "bl.pdf"
    bl.write_bytes(b"file bl-1")
    args = ("doc", "verify", str(bl), "--data-dir", str(chain.data_dir), "--doc-api", served.doc_api)

    verified = run(*args)
    assert verified.exit_code == 0, verified.output
    lines = verified.stdout.splitlines()
    assert len(lines) <= 20, verified.stdout
    assert f"document    {served.ids['bl1']}" in lines
    assert "holder      importer" in lines
    assert sum(line.endswith("→ proven") for line in lines) == 5  # the last five shown
    assert lines[-1].startswith(f"REGISTERED {served.ids['bl1']} (active); every history entry proven (6, on chain")
    assert not RAW_MS.search(verified.stdout)

    as_json = run(*args, "--json")
    assert as_json.exit_code == 0, as_json.output
    answer = json.loads(as_json.stdout)  # nothing else on stdout
    assert [entry["proof"] for entry in answer["history"]] == ["proven"] * 6
    assert "REGISTERED" in as_json.stderr


# --------------------------------------------------------------------------- times and tables


def test_json_answers_show_times_in_iso_unless_json_is_asked(served: Served) -> None:
    shown = run("party", "show", "exporter", "--party-api", served.party_api)
    assert shown.exit_code == 0, shown.output
    member = json.loads(shown.stdout)
    assert all(ISO.fullmatch(entry["time"]) for entry in member["history"])
    raw = json.loads(run("party", "show", "exporter", "--party-api", served.party_api, "--json").stdout)
    assert all(isinstance(entry["time"], int) for entry in raw["history"])


def test_the_member_table_never_cuts_or_folds_ids(served: Served) -> None:
    listed = run("party", "list", "--party-api", served.party_api)
    assert listed.exit_code == 0, listed.output
    exporter_key = served.chain.pub("exporter")
    row = whole_line_with(f"{exporter_key[:16]}…", listed.stdout)
    assert "exporter" in row
    for member in ("council-1", "custodian", "kyc_provider"):
        whole_line_with(member, listed.stdout)


# --------------------------------------------------------------------------- input problems


def test_every_problem_of_a_payload_is_named_at_once(tmp_path: Path) -> None:
    sent = run(
        "tx", "send", "--kind", "doc.pledge", "--payload", '{"doc_id": "zz", "amont": 5, "colour": "red"}',
        "--data-dir", str(tmp_path), "--api", "http://127.0.0.1:9",
    )  # fmt: skip
    assert sent.exit_code == 2, sent.output
    said = sent.stderr
    assert "error: --payload for doc.pledge not sent: 7 problems" in said
    for problem in (
        "doc_id: String should match pattern",
        "financier: required",
        "amount: required",
        "currency: required",
        "expires_at: required",
        "amont: unknown field; did you mean amount?",
        "colour: unknown field (fields: amount, currency, doc_id, expires_at, financier, reference)",
    ):
        assert problem in said, said
    assert "cannot reach" not in said  # nothing was signed or sent


def test_a_proposal_names_unknown_action_fields(tmp_path: Path) -> None:
    action = json.dumps({"type": "admit_member", "memberid": "acme", "role": "bank"})
    proposed = run("party", "propose", "--action", action, "--data-dir", str(tmp_path), "--api", "http://127.0.0.1:9")
    assert proposed.exit_code == 2, proposed.output
    assert "action.member_id: required" in proposed.stderr
    assert "action.memberid: unknown field; did you mean member_id?" in proposed.stderr
    assert "action.role: unknown field; did you mean roles?" in proposed.stderr


def test_doc_options_are_checked_together(tmp_path: Path) -> None:
    pledged = run(
        "doc", "pledge", "not-an-id", "--to", "nobody", "--amount", "5", "--currency", "usd",
        "--data-dir", str(tmp_path), "--api", "http://127.0.0.1:9",
    )  # fmt: skip
    assert pledged.exit_code == 2, pledged.output
    said = pledged.stderr
    assert "doc.pledge not sent: 3 problems" in said
    assert "--to: 'nobody' is not an address, a hex public key, or a key name under" in said
    assert "DOC_ID: String should match pattern" in said  # named as typed, not as the payload field
    assert "--currency: String should match pattern" in said
    assert "financier" not in said  # the --to problem is said once, in the user's terms


def test_a_long_error_is_one_line(tmp_path: Path) -> None:
    key = "ab" * 32
    registered = run(
        "doc", "register", str(tmp_path), "--type", "bill_of_lading", "--business-key", "MAEU/1",
        "--holder", f"traco:main:{key}x",
    )  # fmt: skip
    assert registered.exit_code == 1
    assert f"error: {tmp_path} is not a file" in registered.stderr
    transfer = run("doc", "transfer", key, "--to", f"{'0' * 70}", "--data-dir", str(tmp_path / "very-long-directory"))
    assert transfer.exit_code == 2
    assert whole_line_with(f"--to: '{'0' * 70}' is not an address", transfer.stderr)


def test_a_usage_error_is_one_plain_line() -> None:
    """typer's rich error box wrapped its message at 80 columns; click's plain form does not."""
    refused = run("doc", "pledge", "ab" * 32, "--to", "bank-a", "--amount", "lots")
    assert refused.exit_code == 2
    whole_line_with("Error: Invalid value for '--amount': Input should be a valid integer", refused.stderr)
    assert "╭" not in refused.stderr


def test_an_unknown_kind_is_named_with_the_kind_meant(tmp_path: Path) -> None:
    sent = run("tx", "send", "--kind", "doc.pleg", "--payload", "{}", "--data-dir", str(tmp_path))
    assert sent.exit_code == 2, sent.output
    assert "--kind: 'doc.pleg' is not a kind this chain executes; did you mean doc.pledge?" in sent.stderr


def test_doc_verify_of_an_unknown_file(served: Served, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.pdf"
    unknown.write_bytes(b"never registered")
    args = ("doc", "verify", str(unknown), "--data-dir", str(served.chain.data_dir), "--doc-api", served.doc_api)
    said = run(*args)
    assert said.exit_code == 1
    assert said.stdout.startswith("NOT REGISTERED: no document has SHA-256 ")
    as_json = run(*args, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["registered"] is False
