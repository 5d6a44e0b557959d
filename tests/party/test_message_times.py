"""Party's receipt messages show times as ISO 8601 UTC and spans in days, never raw epoch
milliseconds (receipt messages are for people and are not hashed, decision 0011)."""

from __future__ import annotations

import re

import pytest

from tests.party.kit import Chain, register_payload
from traco.core.timefmt import iso_utc
from traco.services.party.models import DEFAULT_RULES

RAW_MS = re.compile(r"(?<![0-9a-f])1[0-9]{12}(?![0-9a-f])")


@pytest.fixture
def chain() -> Chain:
    return Chain.dev()


def test_kyc_expiry_out_of_range(chain: Chain) -> None:
    refused = chain.refused(
        "INVALID_PAYLOAD", "kyc", "party.kyc", {"member_id": "exporter", "status": "verified", "expires_at": 5}
    )
    assert (
        refused.message
        == f"expires_at: must be after the block time {iso_utc(chain.time)} and at most 1830 days after it"
    )


def test_delegation_expiry_out_of_range(chain: Chain) -> None:
    refused = chain.refused(
        "INVALID_PAYLOAD", "exporter", "party.delegate", {"principal": "P", "kinds": ["doc.register"], "expires_at": 5}
    )
    assert f"block time {iso_utc(chain.time)} and at most 366 days after it" in refused.message
    assert not RAW_MS.search(refused.message)


def test_an_expired_proposal_names_its_deadline_in_iso(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    pid = chain.propose("council-1", {"type": "admit_member", "member_id": "acme"})
    refused = chain.refused(
        "PROPOSAL_EXPIRED",
        "council-2",
        "party.vote",
        {"proposal_id": pid, "choice": "yes"},
        advance=DEFAULT_RULES.timeout_ms + 1000,
    )
    assert not RAW_MS.search(refused.message), refused.message
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z"
    expected = rf"proposal {pid} expired at {iso} \(block time {re.escape(iso_utc(chain.time))}\)"
    assert re.fullmatch(expected, refused.message), refused.message
