"""Alert text in a Markdown report renders inert and readable: no link, image, mention, heading, list or entity."""

from __future__ import annotations

import re
from html import unescape

import pytest
from markdown_it import MarkdownIt

from responder.models.timeline import EntryKind, TimelineEntry
from responder.tabletop.postmortem import postmortem
from responder.timeline.evidence import evidence_pack, render_markdown
from responder.timeline.markdown import cell
from tests.timeline_builders import incident_timeline

HOSTILE = [
    "[click](https://evil.example/x)",
    "see https://evil.example/login now",
    "hTTps://evil.example",
    "ftp://evil.example/a",
    "mailto:eve@evil.example",
    "<https://evil.example>",
    "www.evil.example/x",
    "WWW.evil.example",
    "eve@evil.example",
    "ping @oncall-team",
    "![x](https://tracker.example/p.png)",
    "<img src=https://tracker.example/p.png>",
    "<script>alert(1)</script>",
    "&lt;b&gt; &#64; &amp;",
    "# heading",
    "## heading",
    "- nested item",
    "+ nested item",
    "1. nested item",
    "7) nested item",
    "---",
    "=",
    "$\\color{red}{x}$".replace("\\", ""),
    "`code` **bold** _em_ ~~strike~~",
    "fixes #123",
    "see owner/repo#45 and #6",
    "GH-7 and gh-8",
]

_GFM_LINK = re.compile(r"(?<!\\)(?i:https?|ftp|mailto|xmpp)(?<!\\):|(?i:www)(?<!\\)\.|[\w.+-]@[A-Za-z0-9]")


def _render(md: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(md)


def _autolinks(md: str) -> list[str]:
    """What a GFM renderer (extended autolinks: scheme:, www., user@host) would turn into a link in `md`, outside
    code spans (their text is literal)."""
    return _GFM_LINK.findall(re.sub(r"(`+).*?\1", "", md))


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_renders_as_its_own_text_and_nothing_else(text):
    """An alert's text in a list item renders as one paragraph of that very text: no markup, no link, no autolink."""
    md = f"- {cell(text)}"
    html = _render(md)
    assert re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", html, re.S), html  # one item, nothing nested
    inner = re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", html, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in inner, html  # no element at all: link, image, heading, emphasis, code
    assert unescape(inner).replace("\u2060", "") == text  # readable: renders as itself
    assert not _autolinks(md), md


# GitHub links these in a comment's rendered text (after Markdown, so a backslash before `#` stops nothing)
_GITHUB_REFERENCE = re.compile(r"#\d|\bGH-\d", re.IGNORECASE)


@pytest.mark.parametrize("text", ["fixes #123", "see owner/repo#45", "#1 first", "GH-7", "gh-8", "x#9"])
def test_an_issue_reference_in_alert_text_links_no_issue_and_reads_as_itself(text):
    """An issue reference like `#123` in alert text renders as itself, linking no issue."""
    html = _render(f"- {cell(text)}")
    inner = re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", html, re.S)
    assert inner, html
    shown = unescape(inner.group(1))
    assert not _GITHUB_REFERENCE.search(shown), shown
    assert "\\" not in shown, shown
    assert shown.replace("\u2060", "") == text


@pytest.mark.parametrize("text", ["  - nested item", "   1. nested item", "  + x", "  ---", "     indented code"])
def test_a_cell_starting_with_spaces_opens_no_block(text):
    """A table cell starting with spaces opens no block, the leading spaces shown as visible escapes."""
    html = _render(f"- {cell(text)}")
    inner = re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", html, re.S)
    assert inner, html  # one item, not a nested list, a code block or a rule
    assert "<" not in inner.group(1), html
    spaces = len(text) - len(text.lstrip(" "))
    assert unescape(inner.group(1)) == "\\x20" * spaces + text.lstrip(" ")


def test_a_cell_keeps_times_and_numbers_as_they_are():
    """Timestamps, numbers and ids need no escape: the raw report stays readable."""
    for text in ("2026-11-25T10:00:00+00:00", "8.0", "-5", "1.5", "AKIAEXAMPLE", "ev-1", "step.result"):
        assert cell(text) == text


def _entries(text: str) -> list[TimelineEntry]:
    base = {"writer": "w", "prev": "0" * 64, "hash": "0" * 64, "incident": None}
    docs = [
        {"seq": 0, "kind": EntryKind.EVENT_RECEIVED, "body": {
            "event_id": f"ev {text}", "source": text, "type": text, "severity": text, "time": text,
            "resources": [{"kind": "iam_user", "id": text}]}},
        {"seq": 1, "kind": EntryKind.INCIDENT_OPENED, "incident": "inc-1",
         "body": {"event_id": f"ev {text}", "runbook": text, "summary": text}},
        {"seq": 2, "kind": EntryKind.STEP_RESULT, "incident": "inc-1",
         "body": {"step": text, "actuator": "a.b", "target": text, "status": "failed", "error": text, "key": "k"}},
    ]
    return [TimelineEntry.model_validate(base | {"at": "2026-11-25T10:00:00+00:00"} | d) for d in docs]


def test_the_evidence_report_makes_no_link_of_alert_text():
    """Every event-derived cell of the evidence report: no link, image, HTML or heading, and no GFM autolink."""
    text = "[click](https://evil.example) ![t](https://tracker.example/p) www.evil.example eve@evil.example <b>"
    md = render_markdown(evidence_pack(_entries(text), "inc-1", {"ok": True}))
    html = _render(md)
    assert not re.search("<(a|img|b)[ >]", html), html
    assert not _autolinks(md), [line for line in md.splitlines() if _autolinks(line)]


def test_the_postmortem_makes_no_link_of_alert_text(tmp_path):
    """A postmortem draft of a timeline with hostile text holds no link, image or autolink."""
    rec = incident_timeline(tmp_path / "t.jsonl")
    rec.append("step.result", {"step": "s", "actuator": "a.b", "target": "x", "status": "failed",
                               "error": "see https://evil.example or www.evil.example, mail eve@evil.example"},
               "inc-1")
    rec.close()
    entries = [TimelineEntry.model_validate_json(line) for line in (tmp_path / "t.jsonl").read_bytes().splitlines()]
    md = postmortem(entries, "inc-1")
    assert not _autolinks(md), [line for line in md.splitlines() if _autolinks(line)]
    assert "<a " not in _render(md)


def test_the_evidence_reports_head_hash_stays_a_code_span():
    """A head hash from a file that does not verify (any text) stays inside its code span: no link, no markup."""
    head = "ab` [click](https://evil.example) `cd"
    md = render_markdown(evidence_pack(_entries("x"), "inc-1", {"ok": False, "head": head, "first_bad_seq": 1}))
    assert "<a " not in _render(md)
    assert not _autolinks(md), [line for line in md.splitlines() if _autolinks(line)]
