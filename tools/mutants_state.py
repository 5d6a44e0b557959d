"""Named mutants of the state tree's storage and of what the runtime remembers.

A node left behind or never stored, a page rewritten without the nodes it held, an undo that
forgets, a moved store trusted unchecked, a scan or an upstream's answer remembered past the
state it read, a key filter that denies a stored key."""

from __future__ import annotations

from mutants_consensus import Mutant

SMT_TREE = "core/smt_tree.py"
TREE_STORE = "core/tree_store.py"
TREE_TESTS = "tests/core/test_tree_store.py"
EVERY_HEIGHT = f"{TREE_TESTS}::test_every_height_keeps_its_tree_by_position_and_the_one_before_still_proves"

STATE_MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "tree-climbing-leaf-left-behind",
        "state tree: a leaf that climbs after its sibling's delete is also left where it was",
        SMT_TREE,
        "        self.vacate(position, raw)\n        return raw",
        "        return raw",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-moved-leaf-left-behind",
        "state tree: a leaf pushed down by a new neighbour is also left at its old position",
        SMT_TREE,
        "        if built[0] != node:  # the leaf went (stale) or moves down (placed anew below)\n"
        "            self.vacate(position, raw)",
        "        if False:\n            self.vacate(position, raw)",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-child-leaf-unplaced",
        "state tree: a new left child leaf is never stored (the root is right, the store is not)",
        SMT_TREE,
        "            placed[(position[0] + 1, 2 * position[1])] = left[2]",
        "            pass",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-page-thought-new",
        "state tree: every changed page is written as if it were new, dropping the nodes it held",
        TREE_STORE,
        "            slots = touched[page] = before.page(page) if was.get(page) is not None else {}",
        "            slots = touched[page] = {}",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-undo-forgets",
        "state tree: the undo records no page as it was, so the tree before cannot be proven",
        TREE_STORE,
        "        previous[name] = before.record(page) if was.get(page) is not None else None",
        "        previous[name] = None",
        (EVERY_HEIGHT,),
    ),
    Mutant(
        "tree-migration-unchecked",
        "state tree: a store moved from nodes by hash is trusted without checking its state's root",
        TREE_STORE,
        "    if rebuilt.root != root:",
        "    if False:",
        (f"{TREE_TESTS}::test_a_store_whose_state_does_not_hash_to_its_root_is_not_moved",),
    ),
    Mutant(
        "scan-run-outlives-commit",
        "SQLite: a scan remembered before a commit still answers after it (stale state read)",
        "core/adapters/sqlite_state.py",
        "        self._runs.clear()  # the scans remembered were of the store before this commit",
        "        pass",
        ("tests/core/test_sqlite_scan_runs.py::test_a_commit_is_seen_by_the_next_scan",),
    ),
    Mutant(
        "key-filter-not-told-of-a-batch",
        "SQLite: the writer's key filter is not told a batch's keys (a stored key read as absent)",
        "core/adapters/sqlite_state.py",
        "            self._keys.add_all(key for key, _ in puts if remembered.get(key) is None)",
        "            pass",
        ("tests/core/test_key_filter.py::test_the_writer_reads_what_a_dict_would_hold",),
    ),
    Mutant(
        "key-filter-skips-a-key-remembered-absent",
        "SQLite: a new key the writer had read as absent is not told to the key filter (read as absent later)",
        "core/adapters/sqlite_state.py",
        "if remembered.get(key) is None)",
        "if key not in remembered)",
        ("tests/core/test_key_filter.py::test_a_key_read_as_absent_then_stored_is_found_once_its_value_is_forgotten",),
    ),
    Mutant(
        "key-filter-outlives-foreign-commit",
        "SQLite: the key filter survives another connection's commit (its new keys read as absent)",
        "core/adapters/sqlite_state.py",
        "        self._runs.clear()\n        self._keys = None\n",
        "        self._runs.clear()\n",
        ("tests/core/test_key_filter.py::test_a_key_another_connection_stored_is_found_once_noticed",),
    ),
    Mutant(
        "upstream-memo-outlives-block",
        "execution: an upstream's answers are remembered across blocks (a suspended member still submits)",
        "core/domain.py",
        "    memo = view.memo\n",
        '    memo = remembered.__dict__.setdefault("memo", {})\n',
        ("tests/core/test_upstream_memo.py::test_a_member_suspended_between_blocks_is_refused_in_the_next_block",),
    ),
)
