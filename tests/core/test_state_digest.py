"""The state digest chain (architecture: Execution): ``SHA-256(previous ‖ canonical events)``.

``next_digest`` builds the canonical list from each event's own canonical bytes; it must give
exactly what canonicalising the whole list gives, or every replay and audit would disagree."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core.canonical import canonicalize
from traco.core.service_exec import GENESIS_DIGEST, next_digest
from traco.schemas.events import DomainEvent

SAFE = st.integers(-(2**53) + 1, 2**53 - 1)
KEYS = st.text(max_size=6)  # any code points: JCS sorts keys by UTF-16 units
JSON = st.recursive(
    st.none() | st.booleans() | SAFE | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=10,
)
EVENTS = st.lists(
    st.builds(
        DomainEvent,
        type=st.sampled_from(["Transferred", "Pledged", "Ünïcode"]),
        service=st.sampled_from(["trade", "doc"]),
        height=st.integers(1, 10**9),
        tx_id=st.none() | st.just("ab" * 32),
        tx_index=st.none() | st.integers(0, 5000),
        event_index=st.integers(0, 50),
        aggregate_id=st.text(max_size=10),
        data=st.dictionaries(KEYS, JSON, max_size=4),
    ),
    max_size=5,
)


@settings(max_examples=300)
@given(EVENTS, st.sampled_from([GENESIS_DIGEST, "ff" * 32]))
def test_the_digest_is_the_hash_of_the_whole_list_in_canonical_form(events: list[DomainEvent], prev: str) -> None:
    whole = canonicalize([e.json_value() for e in events])
    assert next_digest(prev, events) == hashlib.sha256(bytes.fromhex(prev) + whole).hexdigest()


def test_no_events_hash_an_empty_list() -> None:
    assert next_digest(GENESIS_DIGEST, []) == hashlib.sha256(bytes(32) + b"[]").hexdigest()
