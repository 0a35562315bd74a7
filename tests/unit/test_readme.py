"""The README gets a newcomer to a result on its first screen, stays short, and every docs link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
FIRST_SCREEN = 24  # lines: one classic terminal
MAX_LINES = 200
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
CITED_TEST = re.compile(r"\btests/[\w/]+\.py\b")
# `bench/x.py:76` (`APPLIED.setdefault(…)`: a file's line, and the code the docs quote from it (up to its first "(")
CITED_LINE = re.compile(r"`((?:bench|responder|tests)/[\w/]+\.py):(\d+)`(?: \(`([^`(]+))?")


def _markdown_files() -> list[Path]:
    folders = sorted(p for p in ROOT.glob("*/README.md") if not p.parent.name.startswith("."))
    return [p for p in [README, *sorted((ROOT / "docs").glob("*.md")), *folders] if p.is_file()]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(h) for h in HEADING.findall(path.read_text(encoding="utf-8"))}


def _links(path: Path) -> list[tuple[str, str]]:
    """Relative links of a Markdown file as (file part, anchor part); web links and code blocks left out."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        out.append((file, anchor))
    return out


def test_first_screen_has_the_two_commands():
    """`make demo` and `make test` are both in a console block within the README's first screen."""
    screen = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])
    block = screen[screen.index("```console"):]
    assert "$ make demo" in block
    assert "$ make test" in block


def test_readme_is_short():
    """The README is at most 200 lines: reference material lives in docs/."""
    assert len(README.read_text().splitlines()) <= MAX_LINES


def test_readme_gives_the_order_validate_dry_run_run():
    """`runbooks validate`, then `run --dry-run`, then `run` appear in that order in one console block."""
    text = README.read_text()
    steps = ["$ responder runbooks validate", "$ responder run --dry-run", "$ responder run "]
    positions = [text.index(s) for s in steps]
    assert positions == sorted(positions)
    assert "```" not in text[positions[0]:positions[-1]]


def test_readme_runbook_matches_the_file():
    """The runbook printed 'in full' in README.md is byte-for-byte the file in runbooks/."""
    readme = README.read_text()
    marker = "`runbooks/iam-credential-compromise.yaml`, in full:\n\n```yaml\n"
    start = readme.index(marker) + len(marker)
    shown = readme[start : readme.index("```", start)]
    assert shown == (ROOT / "runbooks" / "iam-credential-compromise.yaml").read_text()


def test_readme_links_every_document():
    """Every page under docs/ and the shipped-runbook catalogue are linked from the README's Documentation list."""
    text = README.read_text()
    listed = set(LINK.findall(text[text.index("## Documentation"):]))
    docs = {p.relative_to(ROOT).as_posix() for p in _markdown_files() if p != README}
    assert docs - listed == set()


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path):
    """Each relative link in README.md, docs/ and folder READMEs names an existing file, and its #anchor a heading."""
    broken = []
    for file, anchor in _links(path):
        target = (path.parent / file).resolve() if file else path
        if not target.exists():
            broken.append(f"{file}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{file}#{anchor}: no such heading")
    assert broken == []


def test_cited_test_files_exist():
    """Every tests/….py path the docs or the code cite exists (no reference to a renamed or never-written test)."""
    sources = [*_markdown_files(), *(ROOT / "responder").rglob("*.py"), *(ROOT / "runbooks").glob("*.yaml")]
    cited = {m for p in sources for m in CITED_TEST.findall(p.read_text(encoding="utf-8"))}
    assert cited
    assert sorted(c for c in cited if not (ROOT / c).is_file()) == []


def test_cited_source_lines_hold_the_quoted_code():
    """A `file.py:N` the docs cite is an existing file with a line N, and that line holds the code quoted after it."""
    cited = [(p.name, *m) for p in _markdown_files() for m in CITED_LINE.findall(p.read_text(encoding="utf-8"))]
    assert cited
    stale = []
    for doc, file, line, quoted in cited:
        lines = (ROOT / file).read_text(encoding="utf-8").splitlines() if (ROOT / file).is_file() else []
        if not 0 < int(line) <= len(lines) or quoted.strip() not in lines[int(line) - 1]:
            stale.append(f"{doc}: {file}:{line} ({quoted})")
    assert stale == []
