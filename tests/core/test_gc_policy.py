"""The cycle collector of serving processes (core/gc_policy.py): tuned as configured, refused
when a setting would switch it off, and applied by every ``traco serve`` command."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from traco.cli import main as cli_main
from traco.core import gc_policy
from traco.core.settings import Settings


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_sets_the_thresholds_and_freezes_what_lives_at_start_up() -> None:
    keep = [[i] for i in range(100)]  # tracked containers alive at start-up
    gc.unfreeze()
    gc_policy.tune((40_000, 7, 3))
    assert gc.get_threshold() == (40_000, 7, 3)
    assert gc.get_freeze_count() >= len(keep)


@pytest.mark.parametrize("bad", [(0, 10, 10), (700, 0, 10), (700, 10, -1), (700, 10)])
def test_thresholds_that_would_switch_the_collector_off_are_refused(bad: tuple[int, ...]) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="three integers of at least 1"):
        gc_policy.tune(bad)  # type: ignore[arg-type]
    assert gc.get_threshold() == before


def test_the_setting_defaults_to_the_policy_and_reads_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().gc_thresholds == gc_policy.DEFAULT_THRESHOLDS
    monkeypatch.setenv("TRACO_GC_THRESHOLDS", "[20000, 5, 5]")
    assert Settings().gc_thresholds == (20_000, 5, 5)


def test_serve_commands_tune_the_collector_from_their_settings() -> None:
    settings = Settings().model_copy(update={"gc_thresholds": (30_000, 9, 4)})
    assert cli_main._serving(settings) is settings
    assert gc.get_threshold() == (30_000, 9, 4)
