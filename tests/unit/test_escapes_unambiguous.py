"""`plain` and `xml_text` write text so that an escape they add never reads the same as the text's own characters."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from responder.escapes import plain, xml_text

# each pair: a forbidden character, and text that spells its escape literally
PAIRS = [("\x1b", "\\x1b"), ("\x00", "\\x00"), ("\ufffe", "\\ufffe"), ("\ud800", "\\ud800")]


@pytest.mark.parametrize(("char", "spelled"), PAIRS)
def test_xml_text_tells_a_forbidden_character_from_its_spelling(char, spelled):
    """xml_text writes ESC (and NUL, U+FFFE, a lone surrogate) and the literal text `\\x1b` differently."""
    assert xml_text(f"a{char}b") != xml_text(f"a{spelled}b")
    assert xml_text(f"a{spelled}b") == f"a\\{spelled}b"  # the text's backslash doubled


@pytest.mark.parametrize(("char", "spelled"), [("\x1b", "\\x1b"), ("\u202e", "\\u202e"), ("\n", "\\x0a")])
def test_plain_tells_a_control_character_from_its_spelling(char, spelled):
    """plain writes ESC (a bidi override, a newline) and the literal text of its escape differently."""
    assert plain(f"a{char}b") != plain(f"a{spelled}b")


def test_xml_text_keeps_junit_parsing_with_backslashes(tmp_path):
    """A message holding backslashes and an ESC is still well-formed XML and reads back with each told apart."""
    root = ET.Element("failure", message=xml_text("path C:\\tmp \\x1b real \x1b"))
    back = ET.fromstring(ET.tostring(root, encoding="unicode")).get("message")
    assert back == "path C:\\\\tmp \\\\x1b real \\x1b"
