"""The project explains itself from a clone: every relative link in README.md and docs/ resolves
inside the repository (to a file, a folder, or a heading of a Markdown file), nothing points at
a design document outside it, and docs/index.md lists every document in docs/.

Why a test: the README once linked ``../shared/DESIGN.md`` and decisions cited "DESIGN §n",
which exist only beside the repository, not in anyone's clone. Links rot silently otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose(path: Path) -> str:
    """The file without its fenced code blocks (a shell example is not a link)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def links(path: Path) -> list[str]:
    text = prose(path)
    return [m.group(1) for m in INLINE_LINK.finditer(text)] + [m.group(1) for m in REFERENCE_LINK.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(prose(path)):
        base, n = slug(heading), 0
        while (f"{base}-{n}" if n else base) in found:
            n += 1
        found.add(f"{base}-{n}" if n else base)
    return found


def problem(source: Path, target: str) -> str | None:
    """What is wrong with one link from ``source`` (None if it resolves, or is not relative)."""
    if SCHEME.match(target) or target.startswith("//"):
        return None
    where, _, anchor = target.partition("#")
    resolved = (source.parent / where).resolve() if where else source
    if ROOT not in resolved.parents and resolved != ROOT:
        return f"{target} leaves the repository"
    relative = resolved.relative_to(ROOT).as_posix()
    if not resolved.exists():
        return f"{target}: no {relative} in the repository"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{target}: {relative} has no heading #{anchor}"
    return None


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_inside_the_repository(doc: Path) -> None:
    problems = [p for target in links(doc) if (p := problem(doc, target))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_design_document_outside_the_repository_is_cited(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    cited = [f"line {n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if "../shared" in line]
    cited += [f"line {n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if "DESIGN §" in line]
    assert not cited, "link docs/architecture.md (or a guide) instead:\n" + "\n".join(cited)


def test_the_index_lists_every_document() -> None:
    index = ROOT / "docs" / "index.md"
    listed = {(index.parent / target.partition("#")[0]).resolve() for target in links(index)}
    missing = [
        doc.relative_to(ROOT).as_posix()
        for doc in sorted((ROOT / "docs").rglob("*.md"))
        if doc != index and doc.resolve() not in listed
    ]
    assert not missing, "docs/index.md does not list: " + ", ".join(missing)


def test_the_checker_catches_what_it_exists_for(tmp_path: Path) -> None:
    """A broken file, a missing heading, a link out of the repository; what is fine passes."""
    readme = ROOT / "README.md"
    assert problem(readme, "docs/nope.md") == "docs/nope.md: no docs/nope.md in the repository"
    assert problem(readme, "docs/architecture.md#no-such-heading") is not None
    assert problem(readme, "../shared/DESIGN.md") == "../shared/DESIGN.md leaves the repository"
    assert problem(readme, "docs/architecture.md#the-data-flow") is None
    assert problem(readme, "https://example.org/x") is None
    assert problem(readme, "docs/signing.md#nope") is not None
    page = tmp_path / "page.md"
    page.write_text("# A `code` Title: here\n\nSee [x](a.md 'title') and [y][r].\n\n[r]: <b.md>\n```\n[z](c.md)\n```\n")
    assert links(page) == ["a.md", "b.md"]
    assert anchors(page) == {"a-code-title-here"}
