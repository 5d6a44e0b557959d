"""The character classes that payload validators refuse in free text, as compiled patterns.

Why here: party, doc and trade each refuse control characters in their text fields, and they
ran a Python-level loop over every character of every field of every transaction (one
``unicodedata.category`` call, or one ``ord``, per character). A compiled pattern gives the
same verdict in C. The classes are exactly the ones the services defined, so no payload is
judged differently (``tests/core/test_text.py`` compares each with its definition over every
code point):

* ``CONTROL_OR_SURROGATE``: Unicode's ``Cc`` (U+0000–U+001F, U+007F–U+009F) and ``Cs``
  (U+D800–U+DFFF) categories, as party and doc refuse them;
* ``CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB``: the same without newline and tab, for
  party's long texts;
* ``C0_CONTROL``: U+0000–U+001F only, as trade has refused since its first rules (trade's
  memos accept U+007F–U+009F; changing that would change which transactions a replay
  accepts).

``plain_text`` is party's and doc's one rule for a short text field (a name, a title): no
whitespace at either end, nothing of ``CONTROL_OR_SURROGATE``.
"""

from __future__ import annotations

import re
from typing import Final

CONTROL_OR_SURROGATE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
C0_CONTROL: Final = re.compile("[\x00-\x1f]")


def plain_text(value: str) -> str:
    """``value`` if it is plain one-line text; raises ``ValueError`` naming what is wrong (a
    pydantic ``AfterValidator``)."""
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if CONTROL_OR_SURROGATE.search(value):
        raise ValueError("must not contain control characters or lone surrogates")
    return value
