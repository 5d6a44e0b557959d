"""The compiled character classes refuse exactly what the services' per-character checks did."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from traco.core.text import C0_CONTROL, CONTROL_OR_SURROGATE, CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB


def _categorised(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs")


DEFINITIONS = [
    (CONTROL_OR_SURROGATE, _categorised),
    (CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB, lambda ch: _categorised(ch) and ch not in "\n\t"),
    (C0_CONTROL, lambda ch: ord(ch) < 32),
]


@pytest.mark.parametrize(("pattern", "definition"), DEFINITIONS, ids=["cc-cs", "cc-cs-but-newline-tab", "c0"])
def test_every_code_point_is_judged_as_by_its_definition(pattern, definition) -> None:  # type: ignore[no-untyped-def]
    differ = [cp for cp in range(sys.maxunicode + 1) if bool(pattern.search(chr(cp))) != definition(chr(cp))]
    assert differ == []


def test_a_refused_character_is_found_anywhere_in_a_text() -> None:
    assert CONTROL_OR_SURROGATE.search("bill of lading\x85 no. 7") is not None
    assert CONTROL_OR_SURROGATE.search("bill of lading no. 7") is None
    assert C0_CONTROL.search("memo \x7f") is None  # trade's memos have always allowed DEL
    assert C0_CONTROL.search("memo\x1b[31m") is not None
    assert CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB.search("line one\n\tline two") is None
    assert CONTROL_OR_SURROGATE_EXCEPT_NEWLINE_TAB.search("line one\r\nline two") is not None
