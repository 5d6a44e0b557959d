"""Node keys on the chain (architecture: Nodes): registered by a member, bound to it, rotated like
member keys — the new key counts from two heights on, so a checkpoint of any height is checked
against the key the node had then."""

from __future__ import annotations

import pytest

from tests.party.kit import Chain, node_payload, pub, sig
from traco.services.party import queries


@pytest.fixture
def chain() -> Chain:
    return Chain.dev()


def test_a_member_registers_a_node_bound_to_itself(chain: Chain) -> None:
    accepted = chain.ok("bank-a", "party.node.register", node_payload("bank-a", "bank-a-1", "node-key-1"))
    assert accepted.result == {"node_id": "bank-a-1", "member_id": "bank-a"}
    record = queries.node(chain.state, "bank-a-1")
    assert record is not None and record["member_id"] == "bank-a"
    assert queries.node_key_at(chain.state, "bank-a-1", chain.height) == pub("node-key-1")
    assert [n["node_id"] for n in queries.nodes(chain.state)] == ["bank-a-1"]


def test_ids_and_keys_are_unique_and_the_key_must_be_proven(chain: Chain) -> None:
    chain.ok("bank-a", "party.node.register", node_payload("bank-a", "bank-a-1", "node-key-1"))
    chain.refused("ALREADY_REGISTERED", "bank-b", "party.node.register", node_payload("bank-b", "bank-a-1", "k2"))
    chain.refused("ALREADY_REGISTERED", "bank-b", "party.node.register", node_payload("bank-b", "b-1", "node-key-1"))
    forged = node_payload("bank-b", "b-1", "k3") | {"proof": sig("k3", b"something else")}
    chain.refused("BAD_KEY_PROOF", "bank-b", "party.node.register", forged)
    # a proof made for another member does not transfer
    chain.refused("BAD_KEY_PROOF", "bank-b", "party.node.register", node_payload("bank-a", "b-1", "k4"))


def test_only_the_nodes_member_rotates_its_key_and_the_new_key_counts_two_heights_later(chain: Chain) -> None:
    chain.ok("bank-a", "party.node.register", node_payload("bank-a", "bank-a-1", "node-key-1"))
    registered_at = chain.height
    chain.refused(
        "NOT_PERMITTED", "bank-b", "party.node.rotate", node_payload("bank-b", "bank-a-1", "node-key-2", "new_key")
    )
    chain.refused("UNKNOWN_NODE", "bank-a", "party.node.rotate", node_payload("bank-a", "nope", "k9", "new_key"))
    rotated = chain.ok("bank-a", "party.node.rotate", node_payload("bank-a", "bank-a-1", "node-key-2", "new_key"))
    at = rotated.result["from_height"]
    assert at == chain.height + 2
    assert queries.node_key_at(chain.state, "bank-a-1", at - 1) == pub("node-key-1")
    assert queries.node_key_at(chain.state, "bank-a-1", at) == pub("node-key-2")
    assert queries.node_key_at(chain.state, "bank-a-1", registered_at - 1) is None  # not a node before


def test_genesis_nodes_are_registered_to_their_members() -> None:
    import tempfile
    from pathlib import Path

    from traco.services import registry
    from traco.services.consensus.genesis import init_chain

    with tempfile.TemporaryDirectory() as tmp:
        genesis = init_chain(Path(tmp), "nodes-genesis", 4, observers=1)
        events = registry.genesis_events(genesis)("party")
    registered = [e.data for e in events if e.type == "NodeRegistered"]
    assert [r["node_id"] for r in registered] == ["n0", "n1", "n2", "n3", "n4"]
    assert {r["member_id"] for r in registered} == {"member"}
    assert [r["public_key"] for r in registered[:4]] == [v.public_key for v in genesis.validators]
