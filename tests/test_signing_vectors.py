"""The signing test vectors (docs/signing-vectors.json) are what the project computes, and what
an integrator computes without it: plain PyNaCl, hashlib and a canonicaliser written from the
specification in docs/signing.md. The worked example in the docs is vector "anchor", checked
here too, so neither document can drift from the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from traco.core import crypto
from traco.core.canonical import canonicalize
from traco.schemas.asyncapi_models import transaction_models
from traco.schemas.tx import TxEnvelope, sign_tx, signing_bytes

DOCS = Path(__file__).resolve().parents[1] / "docs"
VECTORS: list[dict[str, Any]] = json.loads((DOCS / "signing-vectors.json").read_text(encoding="utf-8"))["vectors"]
IDS = [v["name"] for v in VECTORS]


# --------------------------------------------------------------------------- a minimal canonicaliser


def jcs(value: Any) -> str:
    """RFC 8785 for what the vectors hold (objects, arrays, strings, integers, booleans, null):
    keys sorted by UTF-16 code units, only the mandatory escapes, integers in plain decimal."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        assert abs(value) <= 2**53 - 1, "outside what the vectors may hold"
        return str(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"the vectors hold no {type(value).__name__}")


def jcs_string(text: str) -> str:
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in text:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def independent(vector: dict[str, Any]) -> dict[str, str]:
    """Everything a vector expects, computed without any of the project's code."""
    given = vector["input"]
    signing_key = nacl.signing.SigningKey(bytes.fromhex(given["seed_hex"]))
    sender = signing_key.verify_key.encode().hex()
    body = {
        "chain_id": given["chain_id"],
        "kind": given["kind"],
        "sender": sender,
        "nonce": given["nonce"],
        "payload": given["payload"],
    }
    text = jcs(body)
    raw = text.encode("utf-8")
    return {
        "public_key": sender,
        "address": f"traco:{given['chain_id']}:{sender}",
        "signing_bytes_text": text,
        "signing_bytes_hex": raw.hex(),
        "tx_id": hashlib.sha256(raw).hexdigest(),
        "signature": signing_key.sign(raw).signature.hex(),
    }


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_the_project_computes_every_expected_value(vector: dict[str, Any]) -> None:
    given, expected = vector["input"], vector["expected"]
    seed = bytes.fromhex(given["seed_hex"])
    tx = sign_tx(seed, given["chain_id"], given["kind"], given["nonce"], given["payload"])
    body = signing_bytes(given["chain_id"], given["kind"], tx.sender, given["nonce"], given["payload"])
    assert tx.sender == expected["public_key"] == crypto.public_key(seed).hex()
    assert crypto.address(given["chain_id"], crypto.public_key(seed)) == expected["address"]
    assert body.hex() == expected["signing_bytes_hex"]
    assert body.decode("utf-8") == expected["signing_bytes_text"]
    assert tx.tx_id == expected["tx_id"]
    assert tx.signature == expected["signature"]
    assert tx.model_dump(mode="json") == expected["envelope"]
    received = TxEnvelope.model_validate_json(json.dumps(expected["envelope"]))
    assert received.verified and received.canonical_bytes() == canonicalize(expected["envelope"])


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_an_integrator_computes_them_with_pynacl_and_hashlib_alone(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    assert independent(vector) == {k: expected[k] for k in independent(vector)}
    envelope = expected["envelope"]
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(envelope["sender"]))
    verify_key.verify(bytes.fromhex(expected["signing_bytes_hex"]), bytes.fromhex(envelope["signature"]))


def test_the_vectors_exercise_what_canonicalisers_get_wrong() -> None:
    texts = [v["expected"]["signing_bytes_text"] for v in VECTORS]
    joined = "".join(texts)
    assert "\U0001f600" in joined and "\ue000" in joined  # UTF-16 order differs from code-point order
    assert joined.index("\U0001f600") < joined.index("\ue000")
    assert "\\u0007" in joined and "\x7f" in joined  # controls escaped, DEL not
    assert "9007199254740991" in joined and "4503599627370496" in joined
    assert len({v["input"]["seed_hex"] for v in VECTORS}) == len(VECTORS)


def test_a_changed_byte_breaks_the_id_and_the_signature() -> None:
    envelope = dict(VECTORS[0]["expected"]["envelope"])
    envelope["payload"] = {**envelope["payload"], "label": "hellO"}
    tampered = TxEnvelope.model_validate(envelope)
    assert not tampered.id_matches() and not tampered.verified


def test_the_worked_example_in_the_docs_is_vector_anchor() -> None:
    expected = VECTORS[0]["expected"]
    for name in ("signing.md", "integrators-guide.md"):
        text = (DOCS / name).read_text(encoding="utf-8")
        for field in ("public_key", "tx_id", "signature", "signing_bytes_text"):
            assert expected[field] in text, f"docs/{name} does not show vector anchor's {field}"


def test_the_asyncapi_example_transaction_is_vector_anchor() -> None:
    document = json.loads((DOCS.parent / "schemas" / "json" / "asyncapi.json").read_text(encoding="utf-8"))
    (example,) = document["components"]["messages"]["Transaction"]["examples"]
    assert example["payload"] == VECTORS[0]["expected"]["envelope"]
    assert transaction_models()["chain.anchor"].model_validate(example["payload"])  # fits its own schema
