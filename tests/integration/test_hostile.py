"""Hostile input on the real broker (architecture: Kafka is not trusted): an attacker with nothing but a plain Kafka
producer writes garbage and forgeries to every topic the validators, the API and the services
read. Afterwards the chain still seals and executes ordinary transactions, no process has
exited, every undecodable message is in the dead-letter topic and every decodable but invalid
transaction has a refusal receipt. Then the readers restart over the same messages: same result.

The producer is aiokafka's own ``AIOKafkaProducer``, not the project's bus.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, bill_of_lading, send
from traco.core import crypto
from traco.core.topics import topic
from traco.schemas.block import Commit, CommitSig, SealedBlock, vote_sign_bytes
from traco.schemas.tx import sign_tx
from traco.services.consensus import rules
from traco.services.consensus.genesis import init_chain, load_genesis

pytestmark = pytest.mark.integration

Message = tuple[str, bytes | None, bytes]


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("hostile")
    chain_id = f"hx{int(time.time() * 1000) % 10**8}"
    genesis = init_chain(data_dir, chain_id, 4)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def envelope(chain_id: str, sender: str, payload: bytes, kind: bytes = b"chain.anchor") -> bytes:
    """An envelope around raw payload JSON, with a junk id and signature: no key needed."""
    return (
        b'{"chain_id":"' + chain_id.encode() + b'","tx_id":"' + b"ab" * 32 + b'","kind":"' + kind
        + b'","sender":"' + sender.encode() + b'","nonce":1,"payload":' + payload + b',"signature":"'
        + b"cd" * 64 + b'"}'
    )  # fmt: skip


def undecodable_tx(chain_id: str, member: str) -> list[bytes]:
    def env(payload: bytes) -> bytes:
        return envelope(chain_id, member, payload)

    return [
        b"\xff\xfe\xfd not UTF-8",
        b"not JSON at all",
        b"[]",
        b"null",
        b'{"chain_id": 5, "tx_id": [], "kind": {}, "sender": null, "nonce": "1", "payload": 7}',
        env(b'{"amount": 9007199254740993}'),  # beyond 2^53: decodes, has no canonical form
        env(b'{"amount": ' + b"9" * 5000 + b"}"),
        env(b'{"amount": 1e99999}'),
        env(b'{"label": "\\ud800"}'),  # a lone surrogate
        env(b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}"),
        b"x" * 200_000,
    ]


def refused_tx(chain_id: str, cast: Cast) -> list[tuple[bytes, str, str]]:
    """Decodable envelopes that break the rule: (bytes, tx id, expected refusal code)."""
    exporter = cast.key("exporter")
    digest = hashlib.sha256(b"hostile").hexdigest()
    other_chain = sign_tx(exporter, "elsewhere", "chain.anchor", 1, {"digest": digest, "label": "x"})
    unknown = sign_tx(exporter, chain_id, "nosuch.kind", 1, {})
    genuine = sign_tx(exporter, chain_id, "chain.anchor", 1, {"digest": digest, "label": "x"})
    forged_id = genuine.model_copy(update={"payload": {"digest": digest, "label": "changed"}})
    second = sign_tx(exporter, chain_id, "chain.anchor", 1, {"digest": digest, "label": "y"})
    other = sign_tx(cast.key("importer"), chain_id, "chain.anchor", 1, {"digest": digest, "label": "x"})
    forged_signature = second.model_copy(update={"signature": other.signature})
    big = sign_tx(exporter, chain_id, "chain.anchor", 1, {"values": [1e20] * 4000})
    small_form = big.model_dump_json().replace("100000000000000000000.0", "1e20").encode()
    assert len(small_form) < 64 * 1024 < len(big.canonical_bytes())
    outsider = sign_tx(crypto.generate_private_key(), chain_id, "chain.anchor", 1, {"digest": digest, "label": "x"})
    return [
        (other_chain.model_dump_json().encode(), other_chain.tx_id, "WRONG_CHAIN"),
        (unknown.model_dump_json().encode(), unknown.tx_id, "UNKNOWN_KIND"),
        (forged_id.model_dump_json().encode(), forged_id.tx_id, "INVALID_TX_ID"),
        (forged_signature.model_dump_json().encode(), forged_signature.tx_id, "INVALID_SIGNATURE"),
        (small_form, big.tx_id, "TOO_LARGE"),
        (outsider.model_dump_json().encode(), outsider.tx_id, "NOT_ADMITTED"),
    ]


def undecodable_consensus(validator: str) -> list[bytes]:
    vote = {
        "type": "vote",
        "kind": "prevote",
        "height": 2**60,  # not a safe integer
        "round": 0,
        "block_hash": None,
        "validator": validator,
        "signature": "00" * 64,
    }
    return [
        b"\x00\x01garbage",
        b'{"type": "proposal"}',
        b'{"type": "who-knows"}',
        json.dumps(vote).encode(),
        b'{"type": "vote", "kind": "prevote", "height": 1, "round": 1e400}',
        b'{"type": "proposal_request", "height": 1, "round": 0, "block_hash": "zz", "requester": 7}',
    ]


def decodable_consensus(validator: str) -> list[bytes]:
    """Absurd but well-formed: forged signatures and heights far ahead are ignored."""
    vote = {
        "type": "vote",
        "kind": "precommit",
        "height": 10**12,
        "round": 10**9,
        "block_hash": "11" * 32,
        "validator": validator,
        "signature": "22" * 64,
    }
    request = {"type": "block_request", "from_height": 1, "to_height": 10**15, "requester": "attacker"}
    # a validator's name asking for every proposal of a height: only the proposer answers, at
    # most every 0.2 s, and only with a proposal it made
    ask = {"type": "proposal_request", "height": 2, "round": 0, "block_hash": "33" * 32, "requester": validator}
    return [json.dumps(vote).encode(), json.dumps(request).encode(), *[json.dumps(ask).encode()] * 50]


def forged_block(mesh: MeshProcesses, height: int, prev_hash: str) -> bytes:
    """A well-formed block at the next height, sealed by keys that are not validators."""
    genesis = load_genesis(mesh.data_dir / "genesis.json")
    tip = rules.genesis_tip(genesis)
    tip = rules.ChainTip(height - 1, prev_hash, tip.time, tip.results_root, tip.validators)
    keys = [crypto.generate_private_key() for _ in range(4)]
    header = rules.build_header(genesis, tip, 0, int(time.time() * 1000), crypto.public_key(keys[0]).hex(), [])
    sign_bytes = vote_sign_bytes(genesis.chain_id, "precommit", height, 0, header.block_hash())
    commit = Commit(
        height=height,
        round=0,
        block_hash=header.block_hash(),
        signatures=tuple(
            CommitSig(validator=crypto.public_key(k).hex(), signature=crypto.sign(k, sign_bytes).hex()) for k in keys
        ),
    )
    return SealedBlock(header=header, txs=(), commit=commit).model_dump_json().encode()


async def produce(bootstrap: str, messages: list[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=1 << 20)
    await producer.start()
    try:
        for name, key, value in messages:
            await producer.send_and_wait(name, value, key=key)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, name: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(name) or {0}
        tps = [TopicPartition(name, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20

        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while await behind() and time.monotonic() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=500)
            out += [json.loads(r.value) for records in batch.values() for r in records]
        return out
    finally:
        await consumer.stop()


def dead_letters(mesh: MeshProcesses, chain_id: str, node: str = "n0") -> list[bytes]:
    records = asyncio.run(read_all(mesh.bootstrap, topic(chain_id, f"node.{node}.dlq")))
    return [base64.b64decode(r["value_b64"]) for r in records]


def all_alive(mesh: MeshProcesses) -> None:
    dead = {name: mesh.log(name)[-2000:] for name in mesh.procs if not mesh.alive(name)}
    assert not dead, dead


def test_hostile_input_on_every_topic_changes_nothing_but_the_dead_letters(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    status = client.get_json("/status")
    chain_id = status["chain_id"]
    bill_of_lading(cast, client, "before")  # party and doc execute
    tip = client.get_json("/status")["height"]
    tip_hash = client.get_json(f"/blocks/{tip}")["header"]
    genesis = load_genesis(mesh.data_dir / "genesis.json")
    validator = genesis.validators[0].public_key
    exporter = cast.pub("exporter")

    bad_tx = undecodable_tx(chain_id, exporter)
    invalid = refused_tx(chain_id, cast)
    bad_consensus = undecodable_consensus(validator)
    bad_blocks = [b"\x00not a block", b'{"header": {"height": 1e30}}']
    from traco.schemas.block import BlockHeader

    prev_hash = BlockHeader.model_validate(tip_hash).block_hash()
    messages: list[Message] = [(topic(chain_id, "tx"), exporter.encode(), raw) for raw in bad_tx]
    messages += [(topic(chain_id, "tx"), exporter.encode(), raw) for raw, _, _ in invalid]
    messages += [(topic(chain_id, "consensus"), b"1", raw) for raw in bad_consensus + decodable_consensus(validator)]
    messages += [(topic(chain_id, "blocks"), str(tip + 1).encode(), raw) for raw in bad_blocks]
    messages.append((topic(chain_id, "blocks"), str(tip + 1).encode(), forged_block(mesh, tip + 1, prev_hash)))
    forged_receipt = {
        "tx_id": invalid[0][1],
        "kind": "chain.anchor",
        "status": "accepted",
        "code": "OK",
        "height": tip,
        "index": 0,
        "service": "chain",
    }
    forged_checkpoint = {
        "type": "SignedCheckpoint",
        "node": "n0",
        "checkpoint": {"service": "party", "height": tip + 1, "state_digest": "00" * 32},
        "signature": "11" * 64,
    }
    for name in ("node.n0.receipts", "node.n0.events.party", "node.n1.events.doc"):
        messages += [
            (topic(chain_id, name), b"k", json.dumps(forged_receipt).encode()),
            (topic(chain_id, name), b"k", json.dumps(forged_checkpoint).encode()),
        ]
    for name in ("receipts", "events.party", "events.doc", "events.chain", "node.n0.receipts", "node.n2.events.doc"):
        messages += [
            (topic(chain_id, name), b"k", b"\xff garbage"),
            (topic(chain_id, name), b"k", b'{"type": "BlockProcessed", "service": "party", "height": 1e30}'),
            (topic(chain_id, name), b"k", b'{"type": "BlockProcessed", "service": "party", "height": 99999999999,'
             b' "state_digest": "' + b"00" * 32 + b'"}'),
        ]  # fmt: skip
    asyncio.run(produce(mesh.bootstrap, messages))

    # the chain still seals and executes, every process is up
    after_doc, _ = bill_of_lading(cast, client, "after")
    assert after_doc
    anchor = send(client, cast.key("importer"), "chain.anchor", {"digest": "ee" * 32, "label": "after"})
    assert anchor.accepted
    all_alive(mesh)

    # forged receipts and checkpoints on the nodes' topics changed nothing: the refusal stands
    # every decodable but invalid transaction was refused with its own code
    for _, tx_id, code in invalid:
        receipt = client.wait_receipt(tx_id, 30)
        assert receipt is not None and receipt.code == code, (code, receipt)

    # every undecodable message on tx, consensus and blocks is a dead letter, once
    expected = set(bad_tx) | set(bad_consensus) | set(bad_blocks)
    deadline = time.monotonic() + 30
    while not expected <= set(letters := dead_letters(mesh, chain_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert expected <= set(letters), [m[:40] for m in expected - set(letters)]
    assert all(letters.count(m) == 1 for m in expected)

    # readers that restart read the same messages again and survive them again
    mesh.kill("node-n2")
    mesh.kill("node-n0")  # the node whose API, receipts and dead letters the test reads
    mesh.start_node("n2")
    mesh.start_node("n0")
    mesh.wait_for_api("node-n0")
    again = send(client, cast.key("importer"), "chain.anchor", {"digest": "ef" * 32, "label": "after restart"})
    assert again.accepted
    bill_of_lading(cast, client, "after restart")
    all_alive(mesh)
    letters = dead_letters(mesh, chain_id)
    assert all(letters.count(m) == 1 for m in expected), "a restart dead-lettered a message twice"
