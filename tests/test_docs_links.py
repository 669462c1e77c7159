"""The README and docs/*.md link only to files that exist, and to headings that exist.

Pure file reading: every relative markdown link ``[text](path)`` or ``[text](path#anchor)``
(and every reference definition ``[name]: path``) outside fenced code blocks must name an
existing file, and every ``#anchor``, on the same page or another, must match a heading of the
target file under GitHub's slug rules. http(s) and mailto links are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            continue
        if fence is not None:
            if m and m.group(1).startswith(fence):
                fence = None
            continue
        out.append((number, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: markup dropped, lowercased, punctuation stripped
    except hyphens and spaces (letters, digits and underscores stay), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated slug gets -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code blocks and code spans."""
    out = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        m = _REFERENCE.match(line)
        if m:
            out.append((number, m.group(1)))
            continue
        for target in _INLINE_LINK.findall(_CODE_SPAN.sub("", line)):
            out.append((number, target))
    return out


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def broken_links(page: Path) -> list[str]:
    problems = []
    for number, target in links(page):
        if not target or _EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        where = f"{_shown(page)}:{number}: {target}"
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{where}: no file {path_part}")
            continue
        if anchor:
            if dest.suffix.lower() != ".md" or not dest.is_file():
                problems.append(f"{where}: an anchor into a file that is not markdown")
            elif unquote(anchor).lower() not in anchors(dest):
                problems.append(f"{where}: no heading #{anchor} in {_shown(dest)}")
    return problems


def test_slug_follows_github() -> None:
    assert slug("What limits pretraining's own task?") == "what-limits-pretrainings-own-task"
    assert slug("Finer volumes, and views at 256 px") == "finer-volumes-and-views-at-256-px"
    assert slug("The data doctor: `aneurysm check`") == "the-data-doctor-aneurysm-check"
    assert slug("6. On a GPU: `scripts/device_check.sh`") == "6-on-a-gpu-scriptsdevice_checksh"
    assert slug("Aneurysm size: what holds pretraining below 0.85") == (
        "aneurysm-size-what-holds-pretraining-below-085")


def test_duplicate_headings_are_numbered(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```\n# Notes\n```\n\n## Notes\n", encoding="utf-8")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def test_links_skip_code_and_external(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A\n\n[ok](#a) [web](https://example.org/x#y) `[code](missing.md)`\n\n"
                    "```\n[fenced](missing.md)\n```\n\n[bad](missing.md) [gone](#b)\n",
                    encoding="utf-8")
    assert [t for _, t in links(page)] == ["#a", "https://example.org/x#y", "missing.md", "#b"]
    problems = broken_links(page)
    assert len(problems) == 2 and "no file missing.md" in problems[0] and "#b" in problems[1]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / unquote(t.partition("#")[0])).resolve()
              for _, t in links(README) if t and not _EXTERNAL.match(t)}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"
