"""Ed25519 signing, strict verification, addresses and key files (traco.core.crypto).

The strictness tests build signatures that a lenient, cofactorless RFC 8032 verifier (a
small pure-Python one below) *accepts*, and check that ``verify`` rejects them: so each test
shows a real forgery being stopped, not just garbage being refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core import crypto
from traco.core.crypto import (
    address,
    generate_private_key,
    is_hex_public_key,
    parse_address,
    public_key,
    read_key_file,
    sign,
    verify,
    write_key_file,
)

# RFC 8032 §7.1, TEST 1-3: (secret key, public key, message, signature).
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]
VECTORS = [tuple(bytes.fromhex(field) for field in vector) for vector in RFC8032_VECTORS]
VECTOR_IDS = ["test1", "test2", "test3"]
SEED, PUBLIC, _, _ = VECTORS[0]


# --- a lenient reference: RFC 8032 arithmetic without the strict checks ----------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)
IDENTITY: Point = (0, 1, 1, 0)


def point_add(p: Point, q: Point) -> Point:
    # Complete addition law for a = -1 twisted Edwards curves (also doubles).
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * D * p[3] * q[3] % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_mul(k: int, p: Point) -> Point:
    result = IDENTITY
    while k:
        if k & 1:
            result = point_add(result, p)
        p = point_add(p, p)
        k >>= 1
    return result


def point_equal(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def decode_lenient(encoding: bytes) -> Point | None:
    """RFC 8032 §5.1.3 decoding, but accepting y >= p and a negative zero x."""
    n = int.from_bytes(encoding, "little")
    y, sign_bit = (n & ((1 << 255) - 1)) % P, n >> 255
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x & 1 != sign_bit:
        x = (P - x) % P
    return (x, y, 1, x * y % P)


def decoded(encoding: bytes) -> Point:
    point = decode_lenient(encoding)
    assert point is not None
    return point


def encode(p: Point) -> bytes:
    z_inv = pow(p[2], -1, P)
    x, y = p[0] * z_inv % P, p[1] * z_inv % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


BASE = decode_lenient(bytes.fromhex("58" + "66" * 31))
assert BASE is not None


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def lenient_verify(pk: bytes, message: bytes, signature: bytes) -> bool:
    """Cofactorless check [S]B == R + [k]A with no canonicity or small-order checks."""
    assert BASE is not None
    a, r = decode_lenient(pk), decode_lenient(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    k = challenge(signature[:32], pk, message)
    return point_equal(point_mul(s, BASE), point_add(r, point_mul(k, a)))


def secret_scalar(seed: bytes) -> int:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] = (h[31] & 127) | 64
    return int.from_bytes(h, "little")


def torsion_encodings() -> set[bytes]:
    """Every 32-byte string that decodes (leniently) to a point of order dividing 8.

    Derived from the curve, independently of the table in crypto.py: [L]Q of a point Q
    lies in the torsion subgroup, and one of order 8 generates all eight points. Besides
    the canonical encodings, y + p (for y < 19) and a "negative zero" x decode too.
    """
    y = 2
    while True:
        q = decode_lenient(y.to_bytes(32, "little"))
        if q is not None:
            t = point_mul(L, q)
            if not point_equal(point_mul(4, t), IDENTITY):
                break
        y += 1
    encodings = set()
    for i in range(8):
        n = int.from_bytes(encode(point_mul(i, t)), "little")
        y, x_odd = n & ((1 << 255) - 1), n >> 255
        ys = [y, y + P] if y + P < 2**255 else [y]
        signs = {x_odd, 1} if y in (1, P - 1) else {x_odd}  # x == 0 for y = ±1
        encodings |= {(y_ | s << 255).to_bytes(32, "little") for y_ in ys for s in signs}
    for encoding in encodings:
        point = decode_lenient(encoding)
        assert point is not None and point_equal(point_mul(8, point), IDENTITY)
    return encodings


TORSION = sorted(torsion_encodings())


# --- RFC 8032 vectors and round trips --------------------------------------------------


@pytest.mark.parametrize(("seed", "pk", "message", "signature"), VECTORS, ids=VECTOR_IDS)
def test_rfc8032_vectors_sign_exactly_and_verify(seed: bytes, pk: bytes, message: bytes, signature: bytes) -> None:
    assert public_key(seed) == pk
    assert sign(seed, message) == signature
    assert verify(pk, message, signature)
    assert lenient_verify(pk, message, signature)  # the reference agrees on valid input


@pytest.mark.parametrize(("seed", "pk", "message", "signature"), VECTORS, ids=VECTOR_IDS)
def test_tampered_message_or_signature_fails(seed: bytes, pk: bytes, message: bytes, signature: bytes) -> None:
    assert not verify(pk, message + b"\x00", signature)
    for i in (0, 31, 32, 63):
        tampered = bytearray(signature)
        tampered[i] ^= 0x01
        assert not verify(pk, message, bytes(tampered))
    for _, other_pk, _, _ in VECTORS:
        assert verify(other_pk, message, signature) is (other_pk == pk)


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=300), flip=st.integers(min_value=0))
def test_sign_verify_round_trip_and_any_bit_flip_fails(message: bytes, flip: int) -> None:
    seed = generate_private_key()
    signature = sign(seed, message)
    assert len(signature) == 64
    assert verify(public_key(seed), message, signature)
    bit = flip % (8 * (len(signature) + len(message)))
    if bit < 8 * 64:
        tampered = bytearray(signature)
        tampered[bit // 8] ^= 1 << (bit % 8)
        assert not verify(public_key(seed), message, bytes(tampered))
    else:
        bit -= 8 * 64
        tampered = bytearray(message)
        tampered[bit // 8] ^= 1 << (bit % 8)
        assert not verify(public_key(seed), bytes(tampered), signature)


def test_keys_are_random_and_deterministic_per_seed() -> None:
    a, b = generate_private_key(), generate_private_key()
    assert len(a) == 32 and a != b
    # a key read into a mutable buffer derives the same public key (typed bytes, taken as a buffer)
    assert public_key(a) == public_key(bytearray(a)) and len(public_key(a)) == 32  # type: ignore[arg-type]
    assert sign(a, b"m") == sign(a, b"m")


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, b"\x00" * 64])
def test_private_key_of_wrong_length_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        sign(bad, b"m")
    with pytest.raises(ValueError, match="32 bytes"):
        public_key(bad)


@pytest.mark.parametrize("bad", [32, "00" * 32, None])
def test_private_key_of_wrong_type_is_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        sign(bad, b"m")  # type: ignore[arg-type]


def test_message_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        sign(SEED, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign(SEED, 5)  # type: ignore[arg-type]


# --- strictness ------------------------------------------------------------------------


def test_non_canonical_s_is_rejected() -> None:
    _, pk, message, signature = VECTORS[1]
    s = int.from_bytes(signature[32:], "little")
    j = 1
    while s + j * L < 2**256:
        malleated = signature[:32] + (s + j * L).to_bytes(32, "little")
        assert lenient_verify(pk, message, malleated), "a lenient verifier accepts S + jL"
        assert not verify(pk, message, malleated)
        assert not crypto._sodium_open(pk, message, malleated)  # libsodium alone agrees
        j += 1
    assert j > 1


def test_the_small_order_table_is_exactly_the_torsion_points() -> None:
    assert len(TORSION) == 14
    assert set(TORSION) == crypto._SMALL_ORDER_ENCODINGS


@pytest.mark.parametrize("small", TORSION, ids=lambda e: e.hex()[:6] + e.hex()[-2:])
def test_small_order_public_keys_are_rejected(small: bytes) -> None:
    # With [k]A = identity (k a multiple of 8), R = [r]B and S = r satisfy [S]B = R + [k]A:
    # a signature "by" the small-order key on a message of the forger's choosing.
    assert BASE is not None
    r = 0x1234567890ABCDEF
    r_enc = encode(point_mul(r, BASE))
    messages = (b"pay %d" % i for i in itertools.count())
    message = next(m for m in messages if challenge(r_enc, small, m) % 8 == 0)
    forged = r_enc + r.to_bytes(32, "little")
    assert lenient_verify(small, message, forged)
    assert not verify(small, message, forged)
    assert not crypto._sodium_open(small, message, forged)  # libsodium alone agrees


@pytest.mark.parametrize("small", TORSION, ids=lambda e: e.hex()[:6] + e.hex()[-2:])
def test_small_order_r_is_rejected(small: bytes) -> None:
    # With R = identity, S = k * a solves [S]B = R + [k]A for the honest key A = [a]B.
    seed, pk, message, _ = VECTORS[0]
    s = challenge(small, pk, message) * secret_scalar(seed) % L
    forged = small + s.to_bytes(32, "little")
    assert not verify(pk, message, forged)
    assert not crypto._sodium_open(pk, message, forged)


def test_identity_r_forgeries_satisfy_the_lenient_equation() -> None:
    seed, pk, message, _ = VECTORS[0]
    identities = [e for e in TORSION if point_equal(decoded(e), IDENTITY)]
    assert len(identities) == 4
    for r in identities:
        s = challenge(r, pk, message) * secret_scalar(seed) % L
        assert lenient_verify(pk, message, r + s.to_bytes(32, "little"))
        assert not verify(pk, message, r + s.to_bytes(32, "little"))


def test_non_canonical_point_encodings_are_rejected() -> None:
    # y + p for a y < 19 that is on the curve: decodes leniently, but is not canonical.
    y = next(y for y in range(2, 19) if decode_lenient(y.to_bytes(32, "little")) is not None)
    non_canonical = (y + P).to_bytes(32, "little")
    assert decode_lenient(non_canonical) is not None
    _, _, message, signature = VECTORS[0]
    assert not verify(non_canonical, message, signature)
    assert not verify(PUBLIC, message, non_canonical + signature[32:])


def test_the_strict_pre_check_alone_refuses_every_lenient_case() -> None:
    """The strict rule holds on its own, not only because this libsodium also refuses these
    (a faster or batch verifier may not): each case is refused by ``_strictly_encoded`` before
    any verifier sees it, and a genuine signature passes it."""
    _, pk, _, signature = VECTORS[1]
    assert crypto._strictly_encoded(pk, signature)
    r, s = signature[:32], int.from_bytes(signature[32:], "little")
    for bad_s in (L, s + L, 2**256 - 1):
        assert not crypto._strictly_encoded(pk, r + bad_s.to_bytes(32, "little"))
    assert crypto._strictly_encoded(pk, r + (L - 1).to_bytes(32, "little"))  # the largest canonical S
    y = next(y for y in range(2, 19) if decode_lenient(y.to_bytes(32, "little")) is not None)
    non_canonical = (y + P).to_bytes(32, "little")
    assert not crypto._strictly_encoded(non_canonical, signature)
    assert not crypto._strictly_encoded(pk, non_canonical + signature[32:])
    for small in TORSION:
        assert not crypto._strictly_encoded(small, signature)
        assert not crypto._strictly_encoded(pk, small + signature[32:])
    for y_at_least_p in (P, P + 1, P + 18, 2**255 - 1):
        for sign_bit in (0, 1 << 255):
            encoding = (y_at_least_p | sign_bit).to_bytes(32, "little")
            assert not crypto._strictly_encoded(encoding, signature)
            assert not crypto._strictly_encoded(pk, encoding + signature[32:])


# --- malformed input never raises ------------------------------------------------------

JUNK = st.one_of(
    st.binary(max_size=70),
    st.text(max_size=70),
    st.integers(),
    st.none(),
    st.builds(bytearray, st.binary(min_size=32, max_size=64)),
    st.lists(st.integers(0, 255), max_size=64),
)


@settings(max_examples=150, deadline=None)
@given(pk=JUNK, message=JUNK, signature=JUNK)
def test_verify_never_raises_on_junk(pk: object, message: object, signature: object) -> None:
    assert verify(pk, message, signature) is False  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(pk=st.binary(min_size=32, max_size=32), signature=st.binary(min_size=64, max_size=64))
def test_verify_of_random_key_and_signature_is_false(pk: bytes, signature: bytes) -> None:
    assert verify(pk, b"message", signature) is False


@pytest.mark.parametrize(
    ("pk", "message", "signature"),
    [
        (PUBLIC[:31], b"", VECTORS[0][3]),
        (PUBLIC + b"\x00", b"", VECTORS[0][3]),
        (PUBLIC, b"", VECTORS[0][3][:63]),
        (PUBLIC, b"", VECTORS[0][3] + b"\x00"),
        (bytearray(PUBLIC), b"", VECTORS[0][3]),
        (PUBLIC, bytearray(b""), VECTORS[0][3]),
        (PUBLIC, b"", memoryview(VECTORS[0][3])),
        (PUBLIC.hex(), b"", VECTORS[0][3]),
        (PUBLIC, "", VECTORS[0][3]),
        (None, None, None),
    ],
)
def test_verify_wants_exact_bytes_of_exact_lengths(pk: object, message: object, signature: object) -> None:
    assert verify(pk, message, signature) is False  # type: ignore[arg-type]


# --- addresses -------------------------------------------------------------------------


def test_address_round_trip() -> None:
    text = address("main", PUBLIC)
    assert text == "traco:main:" + PUBLIC.hex()
    assert parse_address(text) == ("main", PUBLIC)
    assert parse_address(address("trade-net_2.eu", PUBLIC)) == ("trade-net_2.eu", PUBLIC)


@settings(max_examples=50, deadline=None)
@given(
    chain=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
    key=st.binary(min_size=32, max_size=32),
)
def test_address_round_trip_property(chain: str, key: bytes) -> None:
    assert parse_address(address(chain, key)) == (chain, key)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "form"),
        ("main:" + "ab" * 32, "form"),
        ("traco:" + "ab" * 32, "form"),
        ("tracO:main:" + "ab" * 32, "form"),
        ("traco:main:" + "ab" * 32 + ":x", "form"),
        ("traco:main:" + "AB" * 32, "lowercase hex"),
        ("traco:main:" + "ab" * 31, "lowercase hex"),
        ("traco:main:" + "ab" * 33, "lowercase hex"),
        ("traco:main:" + "zz" * 32, "lowercase hex"),
        ("traco:main:0x" + "ab" * 31, "lowercase hex"),
        ("traco:main:" + "ab" * 32 + "\n", "lowercase hex"),
        ("traco::" + "ab" * 32, "chain id"),
        ("traco:ma in:" + "ab" * 32, "chain id"),
        ("traco:-main:" + "ab" * 32, "chain id"),
        ("traco:" + "m" * 65 + ":" + "ab" * 32, "chain id"),
    ],
)
def test_parse_address_explains_bad_input(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_address(text)


@pytest.mark.parametrize("bad", [None, 5, b"traco:main:" + b"ab" * 32])
def test_parse_address_of_non_text_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="string"):
        parse_address(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chain", "key"),
    [("main", PUBLIC[:31]), ("main", PUBLIC.hex()), ("", PUBLIC), ("a:b", PUBLIC)],
)
def test_address_refuses_bad_parts(chain: str, key: bytes) -> None:
    with pytest.raises(ValueError):
        address(chain, key)


def test_is_hex_public_key() -> None:
    assert is_hex_public_key(PUBLIC.hex())
    assert not is_hex_public_key(PUBLIC.hex().upper())
    assert not is_hex_public_key(PUBLIC.hex()[:-1])
    assert not is_hex_public_key(PUBLIC.hex() + "0")
    assert not is_hex_public_key(PUBLIC.hex() + "\n")
    assert not is_hex_public_key(PUBLIC)  # type: ignore[arg-type]
    assert not is_hex_public_key(None)  # type: ignore[arg-type]


# --- key files -------------------------------------------------------------------------


def test_key_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "validator.key"
    seed = generate_private_key()
    write_key_file(path, seed)
    assert read_key_file(path) == seed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document == {
        "kind": "ed25519",
        "private_key": seed.hex(),
        "public_key": public_key(seed).hex(),
    }
    assert [p.name for p in tmp_path.iterdir()] == ["validator.key"]  # no temporary left


def test_key_file_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first, second = generate_private_key(), generate_private_key()
    write_key_file(str(path), first)
    with pytest.raises(FileExistsError):
        write_key_file(path, second)
    assert read_key_file(path) == first
    path.chmod(0o644)
    write_key_file(path, second, overwrite=True)
    assert read_key_file(str(path)) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_key_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_key_file(tmp_path / "absent")


def _document(**changes: object) -> dict[str, object]:
    seed = bytes(range(32))
    document: dict[str, object] = {
        "kind": "ed25519",
        "private_key": seed.hex(),
        "public_key": public_key(seed).hex(),
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"", "JSON"),
        (b"{not json", "JSON"),
        (b"[1, 2]", "object"),
        (json.dumps(_document(kind=None)).encode(), "fields"),
        (json.dumps(_document(extra="x")).encode(), "fields"),
        (json.dumps(_document(kind="secp256k1")).encode(), "ed25519"),
        (json.dumps(_document(private_key="ab" * 31)).encode(), "private_key"),
        (json.dumps(_document(private_key=7)).encode(), "private_key"),
        (json.dumps(_document(public_key="zz" * 32)).encode(), "public_key"),
        (json.dumps(_document(public_key="ab" * 32)).encode(), "does not match"),
    ],
)
def test_malformed_key_files_are_value_errors(tmp_path: Path, content: bytes, complaint: str) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=complaint):
        read_key_file(path)


def test_upper_case_hex_in_a_hand_edited_key_file_is_accepted(tmp_path: Path) -> None:
    seed = bytes(range(32))
    document = _document(private_key=seed.hex().upper())
    path = tmp_path / "k"
    path.write_text(json.dumps(document))
    assert read_key_file(path) == seed


def test_write_key_file_refuses_a_bad_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_key_file(tmp_path / "k", b"short")
    assert not os.listdir(tmp_path)
