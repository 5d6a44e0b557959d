"""``traco audit verify --from-topic``: the blocks come from the chain's ``blocks`` topic, where
anyone can write (architecture: Kafka is not trusted). Republished duplicates are dropped, a forged block beside the
real one is skipped because it does not verify, and a gap fails the audit at the missing height.

The logic runs on the in-memory bus (milliseconds); one test runs the command itself against the
real Tansu broker."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from rich.console import Console

from tests.consensus.servicechain import ServiceChain, registry_chain
from traco.core.adapters.factory import StorageConfig
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.ports import EventBus, OutgoingMessage
from traco.core.topics import chain_topics, topic
from traco.schemas.block import SealedBlock
from traco.services.consensus.audit import AuditReport, TopicBlocks, audit_chain, read_blocks_topic


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceChain]:
    chain, _ids = registry_chain(tmp_path_factory.mktemp("topic"), chain_id="topicaudit")
    yield chain
    chain.close()


async def publish(bus: EventBus, chain_id: str, messages: Sequence[SealedBlock | bytes]) -> None:
    name = topic(chain_id, "blocks")
    await bus.publish_many(
        [OutgoingMessage(name, m if isinstance(m, bytes) else m.model_dump_json().encode(), b"block") for m in messages]
    )


async def read_from_memory(chain_id: str, messages: Sequence[SealedBlock | bytes]) -> TopicBlocks:
    bus = MemoryEventBus(MemoryBroker())
    await bus.start()
    try:
        await bus.ensure_topics(chain_topics(chain_id))
        await publish(bus, chain_id, messages)
        return await read_blocks_topic(bus, chain_id)
    finally:
        await bus.stop()


def audit(chain: ServiceChain, blocks: TopicBlocks, component: str = "node") -> AuditReport:
    config = StorageConfig(backend="sqlite", data_dir=chain.data_dir)
    return audit_chain(config, component, chain.genesis, workers=1, topic_blocks=blocks)


def weakened(block: SealedBlock) -> SealedBlock:
    """The same block with a commit of too few signatures (same header hash: not a duplicate)."""
    commit = block.commit.model_copy(update={"signatures": block.commit.signatures[:1]})
    return block.model_copy(update={"commit": commit})


async def test_duplicates_and_a_forged_twin_on_the_topic_do_not_fail_an_honest_chain(built: ServiceChain) -> None:
    b = built.blocks
    messages: list[SealedBlock | bytes] = [
        b[0],
        b[0],
        weakened(b[1]),
        b[1],
        b"{not a block",
        b[2],
        b[1],
        b[3],
        b[4],
        b[4],
    ]
    blocks = await read_from_memory(built.genesis.chain_id, messages)
    assert (blocks.height, blocks.duplicates, blocks.undecodable) == (5, 3, 1)
    report = audit(built, blocks, component="no-such-node")
    assert report.ok, report.problem
    assert report.records_compared == 0  # no node's record: the replay alone decides
    assert report.notes == [
        "skipped a block at height 2 that does not verify: commit of height 2 has valid "
        "signatures for 1 of 4 voting power; more than 2/3 (3) is needed"
    ]


async def test_a_gap_in_the_topic_fails_at_the_missing_height(built: ServiceChain) -> None:
    b = built.blocks
    blocks = await read_from_memory(built.genesis.chain_id, [b[0], b[1], b[3], b[4]])
    report = audit(built, blocks)
    assert report.first_bad_height == 3
    assert report.problem == "block 3 is missing from the topic (it holds blocks up to 5)"


async def test_a_forged_block_alone_at_its_height_fails_there(built: ServiceChain) -> None:
    b = built.blocks
    blocks = await read_from_memory(built.genesis.chain_id, [b[0], weakened(b[1]), *b[2:]])
    report = audit(built, blocks)
    assert report.first_bad_height == 2
    assert report.problem is not None and "valid signatures for 1 of 4" in report.problem


@pytest.mark.integration
def test_audit_verify_from_topic_on_the_real_broker(tansu_broker: str, unique_chain: str, tmp_path: Path) -> None:
    """The command as an operator runs it: blocks published (twice, as validators republish)
    on Tansu, audited from the topic with the replay."""
    import asyncio

    from traco.core.adapters.kafka import KafkaEventBus
    from traco.core.settings import Settings
    from traco.services.consensus.audit import run_audit_cli

    chain, _ids = registry_chain(tmp_path / "data", chain_id=unique_chain)
    chain.close()

    async def put() -> None:
        bus = KafkaEventBus(tansu_broker, client_id="audit-test")
        await bus.start()
        try:
            await bus.ensure_topics(chain_topics(unique_chain))
            await publish(bus, unique_chain, [*chain.blocks, *chain.blocks[2:]])
        finally:
            await bus.stop()

    asyncio.run(put())
    settings = Settings(data_dir=chain.data_dir, kafka_bootstrap=tansu_broker)
    console = Console(record=True, width=400)
    code = run_audit_cli(settings, "node", 1, console, replay=True, from_topic=True)
    text = console.export_text()
    assert code == 0, text
    assert f"blocks read from traco.{unique_chain}.blocks (4 duplicates dropped)" in text  # blocks 3..6 twice
    assert "OK: 6 blocks, 12 transactions verified; results replayed (chain, party, doc, trade)" in text
    assert "node's record of the results compared with the replay at 6 heights" in text
