"""The console log format writes an alert's text without raw terminal control characters."""

from __future__ import annotations

import logging

import structlog

from responder import log

HOSTILE = "x\x1b[2K\x1b]8;;https://evil.example\x07y\u202e"


def _raw(text: str) -> list[str]:
    """What in `text` a terminal would act on: ESC, BEL, a bidi override."""
    return [c for c in text if c in "\x1b\x07\u202e"]


def test_console_log_values_and_tracebacks_hold_no_raw_escape(capsys):
    """A value, an exception's message and a library's message with escape sequences are written escaped."""
    log.configure("console", "info")
    logger = structlog.get_logger()
    logger.warning("step_escalated", event_id=HOSTILE, error=f"boom {HOSTILE}")
    try:
        raise ValueError(f"bad {HOSTILE}")
    except ValueError:
        logger.exception("handle_failed")
    logging.getLogger("botocore.test").warning("library says %s", HOSTILE)
    err = capsys.readouterr().err
    assert "step_escalated" in err
    assert "handle_failed" in err
    assert "library says" in err
    assert "ValueError" in err
    assert not _raw(err), err
    assert "\\x1b[2K" in err


def test_a_library_loggers_traceback_holds_no_raw_escape(capsys):
    """A library logger's exception (stdlib logging, exc_info) is written as an escaped traceback, not rich's."""
    log.configure("console", "info")
    try:
        raise ValueError(f"bad {HOSTILE}")
    except ValueError:
        logging.getLogger("botocore.test").exception("library failed")
    err = capsys.readouterr().err
    assert "library failed" in err
    assert "ValueError: bad x\\x1b[2K" in err, err
    assert not _raw(err), err


def test_json_logs_keep_an_alerts_value_verbatim(capsys):
    """The JSON log format is not repr'd: a value reads back as the very text (JSON escapes its control characters)."""
    import json

    log.configure("json", "info")
    structlog.get_logger().warning("step_escalated", event_id=HOSTILE)
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["event_id"] == HOSTILE
    assert not _raw(line), line
