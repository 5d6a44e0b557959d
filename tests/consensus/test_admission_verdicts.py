"""Admission keeps its answers about a key only while party's state and the time it judges at
stay the same (``Admission._verdicts``): a suspension that party executes, a key that expires
with the next block's time, or another state followed, is judged again at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.consensus.chainkit import Kit
from traco.core.domain import DictState, StateView
from traco.services.consensus.admission import Admission


class Party:
    """Party's queries, answering from a table the test changes, counting the questions; each
    answer is for the state admission follows and the time it judges at (``expires``: a key
    valid until then)."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {"k1": "admitted", "k2": "admitted", "k3": "admitted"}
        self.expires: dict[str, int] = {}
        self.asked = 0
        self.view: StateView | None = None

    def member(self, view: StateView, key: str, time: int) -> Mapping[str, Any] | None:
        assert view is self.view, "judged on another state than the one followed"
        self.asked += 1
        status = self.status.get(key)
        if status is None or time >= self.expires.get(key, time + 1):
            return None
        return {"member_id": f"m-{key}", "status": status}

    def is_admitted(self, view: StateView, key: str, time: int) -> bool:
        record = self.member(view, key, time)
        return record is not None and record["status"] == "admitted"


def admission_on(party: Party, height: list[int]) -> Admission:
    admission = Admission(Kit().genesis)
    admission.state = party.view = DictState()
    admission._queries = party  # type: ignore[assignment]
    admission._local_height = lambda: height[0]
    return admission


def test_answers_are_kept_only_while_partys_height_and_the_time_stay() -> None:
    party, height = Party(), [5]
    admission = admission_on(party, height)
    assert "k1" in admission and "k1" in admission
    assert admission.member_of("k1") == admission.member_of("k1") == "m-k1"
    assert party.asked == 2  # once for admission, once for the member: then remembered
    party.status["k1"] = "suspended"  # party executes a suspension at the next height
    assert "k1" in admission  # (the same height: nothing changed in party's state yet)
    height[0] = 6
    assert "k1" not in admission and "k2" in admission
    party.status["k2"] = "suspended"
    party.expires["k3"] = admission.time + 1
    assert "k3" in admission
    admission.at_time(admission.time + 1)  # a new block time: every key is judged again
    assert "k2" not in admission and "k3" not in admission  # k3's key expired at that time
    assert admission.member_of("k3") == "k3"  # an expired key belongs to no member
    admission.state = party.view = DictState()  # another state followed
    party.status["k2"] = "admitted"
    assert "k2" in admission
    assert "unknown" not in admission and admission.member_of("unknown") == "unknown"
    assert 5 not in admission and None not in admission  # only a key (a str) can be admitted
