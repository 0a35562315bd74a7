"""Text from an alert, a playbook or the sandbox, escaped so that what reads it shows it as itself.

`plain` is for a human's terminal (the CLI's tables and lines, the tabletop's console scorecard): nothing in the text
can move the cursor, retitle the window, reorder what follows (bidi overrides) or hide itself. `xml_text` is for an
XML document (the tabletop's junit.xml): the characters XML 1.0 forbids are written as the same visible escapes, so
the file always parses. Both double a backslash, so an escape they write never reads the same as the text's own
(the text `\\x1b` is written `\\\\x1b`, an ESC `\\x1b`). Both live below every layer that prints (responder.cli,
responder.tabletop), so there is one way to neutralise text (docs/security.md, "What humans read").
"""

from __future__ import annotations

import unicodedata

_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # letters that print as nothing (Hangul fillers, braille blank)


def _escape(c: str) -> str:
    """`c` as a Python escape: `\\x1b`, `\\u202e`, `\\U000e0001`."""
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


def _shown(c: str) -> str:
    if c == "\\":
        return "\\\\"  # so that an escape below cannot be faked by the text itself
    if c.isprintable() and c not in _BLANK and unicodedata.category(c) not in ("Mn", "Me"):
        return c
    return _escape(c)


def plain(text: object) -> str:
    """`text` safe to print for a human: what does not print as itself (escape sequences, newlines, bidi overrides,
    zero-width, combining and blank characters) written as a Python escape, and a backslash doubled. For what came
    from Kafka or an alert, printed with `markup=False` (the consoles never turn `:name:` into an emoji)."""
    return "".join(c if " " <= c < "\x7f" and c != "\\" else _shown(c) for c in str(text))


def _xml_allowed(c: str) -> bool:
    """XML 1.0's Char production: tab, newline, carriage return and the rest of Unicode but surrogates, FFFE/FFFF."""
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def xml_text(text: object) -> str:
    """`text` for an XML attribute or element: each character XML 1.0 forbids (ESC, NUL, a lone surrogate, U+FFFE)
    written as a Python escape, a backslash doubled (so the text `\\x1b` is not read as an ESC), the rest as it is
    (the XML writer escapes `<`, `&` and quotes)."""
    return "".join("\\\\" if c == "\\" else c if _xml_allowed(c) else _escape(c) for c in str(text))
