"""Hypothesis profiles for the consensus tests.

``mutants`` (``pytest --hypothesis-profile=mutants``, used by ``tools/named_mutants.py`` and
``make mutants``): the same examples on every run (derandomized, no example database) and
no shrinking, so a mutant is judged by a fixed set of schedules and a failing run stops at
its first counterexample instead of spending minutes minimising it.
"""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile(
    "mutants",
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    print_blob=False,
)
