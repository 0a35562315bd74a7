"""Text from the timeline (an alert's, possibly) as inert Markdown: table cells, list items and code spans.

Every Markdown report built from recorded text uses these (the evidence pack, the tabletop's after-action report
and postmortem draft): a `|` or a newline in an event's text never ends its cell, starts a row or a heading, and
markup characters never make a link, an image, an HTML tag, an entity, a list or an emphasis of it. GFM's extended
autolinks are defused too (docs/security.md, "What humans read"): the `:` ending a URL scheme (`https:/`,
`mailto:`) and the `.` after `www` are backslash-escaped, and a word joiner (U+2060, invisible) follows each `@`
(no e-mail link, no @mention; a backslash does not stop GFM's e-mail autolink) and each `#` and the `-` of `GH-`
(no issue reference `#123`, `owner/repo#123` or `GH-123` in a GitHub comment: GitHub links those in the rendered
text, where the backslash before `#` is already gone). Rendered, the text reads as itself.
"""

from __future__ import annotations

import re
from typing import Any

_MARKDOWN = frozenset("`*_[]<>|~#&$")  # what could start markup, a link, a code span, a new cell, an entity or math
_AUTOLINK = re.compile(r"(?<=[a-z]):(?=/)|(?<=mailto):|(?<=xmpp):|(?<=www)\.", re.IGNORECASE)  # https://, www.
# what, at the start of a list item, would nest a list, draw a rule or underline a heading
_BLOCK_START = re.compile(r"[+=-](?=[ \t+=-]|$)|\d{1,9}[.)](?=[ \t]|$)")
_JOINER = "\u2060"  # WORD JOINER after an `@`: prints as nothing, breaks an e-mail autolink or a mention
_REFERENCE = re.compile(r"(?<=\bGH)-|#", re.IGNORECASE)  # GitHub's issue references: #123, owner/repo#123, GH-123


def _visible(c: str) -> str:
    return c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" \
        if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


def cell(value: Any) -> str:
    """`value` as inert Markdown text (a table cell, a list item, a heading): markup characters backslash-escaped,
    what does not print as itself (newline, ESC, bidi override, a leading space) written as a visible escape, a
    backslash shown doubled, a word joiner after `@`, `#` and `GH-`; `–` for nothing."""
    if value in (None, ""):
        return "–"
    text = str(value)
    escaped = {m.start() for m in _AUTOLINK.finditer(text)}
    if lead := _BLOCK_START.match(text):
        escaped.add(lead.end() - 1)
    joined = {m.start() for m in _REFERENCE.finditer(text)}  # linked after rendering: a backslash stops nothing
    spaces = len(text) - len(text.lstrip(" "))  # swallowed by Markdown; before a marker they would open a block
    return "\\x20" * spaces + "".join(
        ("\\\\\\\\" if c == "\\" else f"\\{c}" if c in _MARKDOWN or i in escaped
         else f"@{_JOINER}" if c == "@" else _visible(c)) + (_JOINER if i in joined else "")
        for i, c in enumerate(text[spaces:], spaces))


def code(value: Any, *, json: bool = False) -> str:
    """A code span holding `value` literally: fenced by more backticks than it holds in a row, `|` escaped for the
    table, what does not print written as a visible escape and a backslash doubled (in JSON, already escapes)."""
    text = "".join("\\\\" if c == "\\" and not json else _visible(c) for c in str(value)).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def target(value: Any) -> str:
    """A step's target as a code span, or `–` when it has none (a step whose parameters did not resolve)."""
    return cell(None) if value is None else code(value)
