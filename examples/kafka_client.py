"""A TRACO client that uses nothing of TRACO: kafka-python 2.3, PyNaCl and the standard library.

It does what a bank's integration does (docs/integrators-guide.md walks through it):

1. read the member's key file (plaintext, or encrypted with a passphrase);
2. learn the next nonce from the sealed blocks on ``traco.<chain>.blocks``;
3. sign a transaction (docs/signing.md: RFC 8785 canonical JSON, SHA-256 id, Ed25519);
4. produce it to ``traco.<chain>.tx``, keyed by the sender, with a W3C ``traceparent`` header;
5. read its receipt from its own node's ``traco.<chain>.node.<id>.receipts`` (manual
   partition assignment: no consumer group to join), applying the receipt rules;
6. for ``doc.register``: follow ``node.<id>.events.doc`` to the checkpoint of the receipt's
   height and check it: the node key's signature, the events' hashes, and that the receipt is
   one of those the checkpoint's ``receipts_root`` covers.

Usage::

    python examples/kafka_client.py --bootstrap 127.0.0.1:9092 --chain main --node n0 \\
        --key traco-data/keys/exporter.key --party-api http://127.0.0.1:8701

``--anchor`` sends ``chain.anchor`` (any admitted member) instead of registering an invoice
(an issuer's kind: exporter, importer, regulator…). Prints ``receipt: {...}`` and exits 0 when
the transaction is accepted, 2 when it is refused, 1 on any other problem.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.signing
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

CHECKPOINT_PURPOSE = "traco/checkpoint/v1"


# --------------------------------------------------------------------------- canonical JSON (RFC 8785)


def canonical(value: Any) -> bytes:
    """RFC 8785 for the JSON TRACO signs: no floats (amounts are integers), safe integers only."""
    return _jcs(value).encode("utf-8")


def _jcs(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise ValueError(f"integer {value} is outside ±(2**53 - 1); send it as a string")
        return str(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))  # UTF-16 code units, as JCS says
        return "{" + ",".join(_jcs_string(k) + ":" + _jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"{type(value).__name__} has no canonical form here (floats are not used)")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jcs_string(text: str) -> str:
    out = (_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text)
    return '"' + "".join(out) + '"'


# --------------------------------------------------------------------------- keys and signing


def load_key(path: str) -> nacl.signing.SigningKey:
    """A plaintext key file, or an encrypted one opened with TRACO_KEY_PASSPHRASE(_FILE)."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if document.get("format") == "traco-encrypted-key":
        passphrase = os.environ.get("TRACO_KEY_PASSPHRASE")
        if passphrase is None and os.environ.get("TRACO_KEY_PASSPHRASE_FILE"):
            with open(os.environ["TRACO_KEY_PASSPHRASE_FILE"], encoding="utf-8") as handle:
                passphrase = handle.read().removesuffix("\n")
        if passphrase is None:
            raise SystemExit(f"{path} is encrypted: set TRACO_KEY_PASSPHRASE or TRACO_KEY_PASSPHRASE_FILE")
        kdf, cipher = document["kdf"], document["cipher"]
        box_key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            bytes.fromhex(kdf["salt"]),
            opslimit=kdf["opslimit"],
            memlimit=kdf["memlimit"],
        )
        try:
            seed = nacl.secret.SecretBox(box_key).decrypt(
                bytes.fromhex(cipher["ciphertext"]), bytes.fromhex(cipher["nonce"])
            )
        except nacl.exceptions.CryptoError:
            raise SystemExit(f"{path}: wrong passphrase, or the file was changed") from None
    else:
        seed = bytes.fromhex(document["private_key"])
    key = nacl.signing.SigningKey(seed)
    if key.verify_key.encode().hex() != document["public_key"]:
        raise SystemExit(f"{path}: public_key does not match the private key")
    return key


def sign(key: nacl.signing.SigningKey, chain_id: str, kind: str, nonce: int, payload: dict[str, Any]) -> dict[str, Any]:
    """The signed envelope: the signature and the id both cover the canonical JSON of
    ``{chain_id, kind, sender, nonce, payload}`` (docs/signing.md)."""
    sender = key.verify_key.encode().hex()
    body = canonical({"chain_id": chain_id, "kind": kind, "sender": sender, "nonce": nonce, "payload": payload})
    return {
        "chain_id": chain_id,
        "tx_id": hashlib.sha256(body).hexdigest(),
        "kind": kind,
        "sender": sender,
        "nonce": nonce,
        "payload": payload,
        "signature": key.sign(body).signature.hex(),
    }


# --------------------------------------------------------------------------- Kafka


def kafka_options() -> dict[str, Any]:
    """TLS / SASL from the same TRACO_KAFKA_* variables the nodes read (none: plaintext)."""
    env = os.environ.get
    options: dict[str, Any] = {"security_protocol": env("TRACO_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")}
    for option, name in (
        ("ssl_cafile", "SSL_CAFILE"),
        ("ssl_certfile", "SSL_CERTFILE"),
        ("ssl_keyfile", "SSL_KEYFILE"),
    ):
        if env(f"TRACO_KAFKA_{name}"):
            options[option] = env(f"TRACO_KAFKA_{name}")
    if env("TRACO_KAFKA_SASL_MECHANISM"):
        options["sasl_mechanism"] = env("TRACO_KAFKA_SASL_MECHANISM")
        options["sasl_plain_username"] = env("TRACO_KAFKA_SASL_USERNAME")
        options["sasl_plain_password"] = env("TRACO_KAFKA_SASL_PASSWORD")
    return options


def consumer(bootstrap: str) -> KafkaConsumer:
    # No group_id: partitions are assigned by hand, so nothing waits for a group to form.
    return KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **kafka_options())


def require_topics(client: KafkaConsumer, names: list[str]) -> None:
    """Fail naming every missing topic, before any request that names one (a broker that
    auto-creates topics would otherwise create a stray one for a mistyped node id)."""
    missing = sorted(set(names) - client.topics())
    if missing:
        raise SystemExit(f"missing topics (wrong chain id or node id?): {', '.join(missing)}")


def read_all(client: KafkaConsumer, topic: str, until: Callable[[list[Any]], bool] | None = None) -> list[Any]:
    """The messages of a one-partition topic from its start, decoded from JSON: up to its end as
    of now, or, with ``until``, as long as it takes for ``until(messages)`` to hold (30 s)."""
    partition = TopicPartition(topic, 0)
    client.assign([partition])
    client.seek_to_beginning(partition)
    end = client.end_offsets([partition])[partition]
    values: list[Any] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if until is None and client.position(partition) >= end:
            # one more poll: some brokers report the end offset before the last batch's end
            batch = client.poll(timeout_ms=300)
            return values + [json.loads(r.value) for records in batch.values() for r in records]
        batch = client.poll(timeout_ms=500)
        values += [json.loads(r.value) for records in batch.values() for r in records]
        if until is not None and until(values):
            return values
    raise SystemExit(f"{topic}: still waiting after 30 s")


def next_nonce(client: KafkaConsumer, chain_id: str, sender: str) -> int:
    """One more than the highest nonce of ``sender`` in a sealed block (accepted or not: an
    ordered transaction uses its nonce). The blocks are read, not verified (see the guide)."""
    blocks = read_all(client, f"traco.{chain_id}.blocks")
    return max((tx["nonce"] for block in blocks for tx in block["txs"] if tx["sender"] == sender), default=0) + 1


def wait_receipt(
    client: KafkaConsumer, topic: str, start: dict[TopicPartition, int], tx_id: str, timeout: float
) -> dict[str, Any]:
    """The receipt of ``tx_id``: a sealed one (``height`` set) is final and supersedes a refusal;
    a refusal (no height) is final only if no sealed receipt follows within the grace period."""
    client.assign(list(start))
    for partition, offset in start.items():
        client.seek(partition, offset)
    deadline, refusal = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        for records in client.poll(timeout_ms=500).values():
            for record in records:
                receipt = json.loads(record.value)
                if receipt.get("tx_id") != tx_id:
                    continue
                if receipt.get("height") is not None:
                    return receipt  # sealed: final; a duplicate of it would be identical
                if refusal is None:
                    refusal, deadline = receipt, min(deadline, time.monotonic() + 10)
    if refusal is not None:
        return refusal
    raise SystemExit(f"no receipt for {tx_id} within {timeout:.0f} s (a nonce gap makes a transaction wait)")


# --------------------------------------------------------------------------- signed checkpoints


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])).digest()


def receipt_leaf(receipt: dict[str, Any]) -> bytes:
    return canonical({k: v for k, v in receipt.items() if k != "message"})


def node_key(party_api: str, node: str, height: int) -> str:
    with urllib.request.urlopen(f"{party_api}/nodes/{node}?height={height}", timeout=10) as response:
        key: str = json.load(response)["key"]
    return key


def check_checkpoint(
    chain_id: str, node: str, key_hex: str, messages: list[Any], receipt: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The node-signed checkpoint of the receipt's height, and the events it covers; raises
    SystemExit naming what does not hold. Nothing else on the topic is trusted."""
    height = receipt["height"]
    signed = [m for m in messages if m.get("type") == "SignedCheckpoint" and m["checkpoint"]["height"] == height]
    if not signed:
        raise SystemExit(f"no signed checkpoint for height {height} on the events topic")
    problems: list[str] = []
    for checkpoint in signed:  # anyone can write one; the node's is the one that verifies
        body = {
            "purpose": CHECKPOINT_PURPOSE,
            "chain_id": chain_id,
            "node": node,
            "checkpoint": checkpoint["checkpoint"],
            "event_hashes": checkpoint["event_hashes"],
        }
        try:
            nacl.signing.VerifyKey(bytes.fromhex(key_hex)).verify(
                canonical(body), bytes.fromhex(checkpoint["signature"])
            )
        except Exception:
            problems.append("a checkpoint whose signature is not the node key's")
            continue
        root = merkle_root([receipt_leaf(r) for r in checkpoint["receipts"]]).hex()
        if root != checkpoint["checkpoint"]["receipts_root"]:
            problems.append("signed, but its receipts do not hash to receipts_root")
            continue
        if receipt_leaf(receipt) not in [receipt_leaf(r) for r in checkpoint["receipts"]]:
            problems.append("signed, but it does not cover the receipt read from the receipts topic")
            continue
        by_hash = {hashlib.sha256(canonical(m)).hexdigest(): m for m in messages if m.get("type") not in _CHECKPOINTS}
        missing = [h for h in checkpoint["event_hashes"] if h not in by_hash]
        if missing:
            problems.append(f"signed, but {len(missing)} of its events are not on the topic")
            continue
        return checkpoint, [by_hash[h] for h in checkpoint["event_hashes"]]
    raise SystemExit(f"height {height}: no valid checkpoint ({'; '.join(problems)})")


_CHECKPOINTS = ("SignedCheckpoint", "BlockProcessed")


# --------------------------------------------------------------------------- the walk-through


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap host:port")
    parser.add_argument("--chain", required=True, help="chain id, e.g. main")
    parser.add_argument("--node", required=True, help="your node's id, e.g. n0")
    parser.add_argument("--key", required=True, help="your member key file")
    parser.add_argument("--party-api", help="your node's party API (node key for checkpoints)")
    parser.add_argument("--anchor", action="store_true", help="send chain.anchor instead of doc.register")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    key = load_key(args.key)
    sender = key.verify_key.encode().hex()
    chain, node = args.chain, args.node
    tx_topic, receipts_topic = f"traco.{chain}.tx", f"traco.{chain}.node.{node}.receipts"
    service = "chain" if args.anchor else "doc"
    events_topic = f"traco.{chain}.node.{node}.events.{service}"
    client = consumer(args.bootstrap)
    require_topics(client, [tx_topic, f"traco.{chain}.blocks", receipts_topic, events_topic])

    nonce = next_nonce(client, chain, sender)
    print(f"sender {sender}, next nonce {nonce} (from the sealed blocks)")
    nonce_tag = os.urandom(16).hex()
    if args.anchor:
        kind, payload = "chain.anchor", {"digest": hashlib.sha256(nonce_tag.encode()).hexdigest(), "label": "example"}
    else:
        invoice = f"invoice {nonce_tag}".encode()
        kind, payload = (
            "doc.register",
            {
                "file_hash": hashlib.sha256(invoice).hexdigest(),
                "type": "invoice",
                "business_key": {"namespace": f"MEMBER:{sender[:16]}", "reference": f"INV-{nonce_tag[:12]}"},
            },
        )
    envelope = sign(key, chain, kind, nonce, payload)
    print(f"signed {kind} {envelope['tx_id']}")

    partitions = [TopicPartition(receipts_topic, p) for p in sorted(client.partitions_for_topic(receipts_topic))]
    start = client.end_offsets(partitions)  # only receipts written after this point matter
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all", **kafka_options())
    traceparent = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
    sent = producer.send(
        tx_topic,
        key=sender.encode(),
        value=json.dumps(envelope).encode(),
        headers=[("traceparent", traceparent.encode())],
    ).get(timeout=30)
    producer.close()
    print(f"produced to {tx_topic} partition {sent.partition} offset {sent.offset}, traceparent {traceparent}")

    receipt = wait_receipt(client, receipts_topic, start, envelope["tx_id"], args.timeout)
    print("receipt: " + json.dumps(receipt, sort_keys=True))
    if receipt["status"] != "accepted":
        print(f"refused: {receipt['code']} {receipt['message']}")
        return 2

    if service == "chain":

        def arrived(messages: list[Any]) -> bool:
            return any(m.get("type") == "Anchored" and m.get("tx_id") == envelope["tx_id"] for m in messages)
    else:

        def arrived(messages: list[Any]) -> bool:  # the checkpoint follows its receipts onto the topics
            return any(
                m.get("type") == "SignedCheckpoint" and m["checkpoint"]["height"] == receipt["height"] for m in messages
            )

    messages = read_all(client, events_topic, until=arrived)
    if service == "chain":
        for event in [m for m in messages if m.get("type") == "Anchored" and m.get("tx_id") == envelope["tx_id"]]:
            print(f"event: Anchored {event['aggregate_id']} (the chain's checkpoint is unsigned: GET /proofs/<tx_id>)")
        return 0
    if not args.party_api:
        print("no --party-api: the checkpoint is not checked")
        return 0
    checkpoint, events = check_checkpoint(
        chain, node, node_key(args.party_api, node, receipt["height"]), messages, receipt
    )
    for event in events:
        position = (event["height"], event["tx_index"], event["event_index"])  # dedupe by this, never by equality
        print(f"event: {event['type']} {event['aggregate_id']} at {position}")
    print(
        f"checkpoint verified: node {node}, {service} height {receipt['height']}, {len(events)} events, "
        f"{len(checkpoint['receipts'])} receipts, state_root {checkpoint['checkpoint']['state_root']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
