"""How a long-running TRACO process collects cyclic garbage (decision 0008, third round).

Why: CPython's cycle collector runs a young collection after every 700 net container
allocations and, every hundred of those, a full one that walks every tracked object of the
process. A node allocates a few hundred containers per transaction (models, dicts, tuples of
the state tree) and keeps large, long-lived tables (its mempool, the state values and tree
nodes it remembers), so with the defaults it walked those tables again and again: measured on
the sealing benchmark, a fifth of a node's CPU per sealed transaction went to the collector.
Almost nothing a node allocates is cyclic (reference counting frees it), so collecting less
often costs little memory.

How: ``tune(thresholds)`` at start-up of a serving or auditing process — after imports and
set-up — collects once, moves everything that survives into the permanent generation
(``gc.freeze``: the modules, the genesis, the settings; never scanned again) and sets the
thresholds (``Settings.gc_thresholds``, ``TRACO_GC_THRESHOLDS``). With the default
``(50_000, 20, 10)`` a young collection runs every 50,000 allocations and a full one about
every ten million, a few tens of seconds under load, so cyclic garbage (asyncio's
exception-and-traceback cycles) still goes, only later.

Caveat: this is per process and global; tests and tools that import TRACO keep Python's
defaults unless they call it.
"""

from __future__ import annotations

import gc
from typing import Final

DEFAULT_THRESHOLDS: Final = (50_000, 20, 10)
"""Young-generation allocations, then young and middle collections per next-older one."""


def tune(thresholds: tuple[int, int, int] = DEFAULT_THRESHOLDS) -> None:
    """Collect once, freeze what survives, then collect with ``thresholds`` (each ≥ 1)."""
    if len(thresholds) != 3 or any(not isinstance(t, int) or t < 1 for t in thresholds):
        raise ValueError(f"gc thresholds are three integers of at least 1, not {thresholds!r}")
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


__all__ = ["DEFAULT_THRESHOLDS", "tune"]
