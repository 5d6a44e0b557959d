"""Time passes on an idle chain: empty blocks at the chain's interval, a chain parameter set in
genesis (decision 0017), so clauses due at a height or time fire without anyone's transaction."""

from __future__ import annotations

import asyncio

from tests.consensus.chainkit import Kit
from tests.consensus.test_driver_simulation import Cluster, run_virtual
from traco.schemas.genesis import DEFAULT_EMPTY_BLOCK_INTERVAL_MS, ChainParams, Genesis


def kit_with(interval_ms: int | None) -> Kit:
    kit = Kit()
    kit.genesis = kit.genesis.model_copy(update={"params": ChainParams(empty_block_interval_ms=interval_ms)})
    return kit


def idle_heights(kit: Kit, virtual_s: float) -> list[int]:
    cluster = Cluster(kit)
    heights: list[int] = []

    async def scenario() -> None:
        await cluster.start()
        try:
            await asyncio.sleep(virtual_s)
            cluster.check_agreement()
            heights.extend(ledger.height for ledger in cluster.ledgers)
        finally:
            await cluster.stop()

    run_virtual(scenario)
    return heights


def test_an_idle_chain_seals_empty_blocks_at_the_chains_interval() -> None:
    heights = idle_heights(kit_with(2000), 21)
    assert min(heights) >= 8 and max(heights) <= 11, heights


def test_an_interval_of_zero_seals_nothing_while_idle() -> None:
    assert idle_heights(kit_with(0), 30) == [0, 0, 0, 0]


def test_the_default_is_on_and_leaves_old_genesis_files_their_hash() -> None:
    kit = kit_with(None)
    assert kit.genesis.params.empty_block_interval == DEFAULT_EMPTY_BLOCK_INTERVAL_MS > 0
    assert "empty_block_interval_ms" not in kit.genesis.json_value()["params"]
    reread = Genesis.model_validate_json(kit.genesis.model_dump_json())
    assert reread.genesis_hash() == kit.genesis.genesis_hash()
    explicit = kit_with(DEFAULT_EMPTY_BLOCK_INTERVAL_MS).genesis
    assert explicit.genesis_hash() != kit.genesis.genesis_hash()  # set, it is part of the chain
