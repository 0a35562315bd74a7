"""structlog set-up: JSON in production, console in development; aiokafka's noise routed and damped."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import structlog


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """A logger on the *current* sys.stderr (it may be swapped, e.g. by a CLI test runner, and closed)."""
    return structlog.PrintLogger(file=sys.stderr)


_level = [logging.NOTSET]  # the level `configure` set last (NOTSET: not configured, every level passes)


def enabled(level: int) -> bool:
    """Whether the configured level lets `level` through: hot paths skip a filtered call, which still binds a
    logger each time (cache_logger_on_first_use stays off so that `configure` can be called again)."""
    return level >= _level[0]


def context_vars(*keys: str) -> tuple[ContextVar[Any], ...]:
    """The context variables behind structlog's `bind_contextvars(key=…)` (its tokens name them), for hot paths
    that set them directly: `bind_contextvars` looks each variable up by a name it formats, and builds a dict of
    keyword arguments and one of tokens, per call."""
    tokens = structlog.contextvars.bind_contextvars(**dict.fromkeys(keys))
    structlog.contextvars.reset_contextvars(**tokens)
    return tuple(token.var for token in tokens.values())


def _escaped(text: str, keep: str = "") -> str:
    """`text` with what does not print as itself (ESC, CR, BEL, bidi overrides) written as its Python escape."""
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def _inert(_logger: object, _method: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Console lines only: a library's message (the event) and a traceback (whose message may quote an alert) are
    written without raw control characters, a traceback keeping its newlines; other values are repr'd, whole."""
    for key, keep in (("event", ""), ("exception", "\n")):
        if isinstance(value := event_dict.get(key), str):
            event_dict[key] = _escaped(value, keep)
    return event_dict


def configure(fmt: str = "json", level: str = "info") -> None:
    """Configure structlog and the stdlib loggers it wraps."""
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    _level[0] = lvl
    # the console renders every value with repr (an alert's ESC or bidi override shows as \x1b, \u202e: inert)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, repr_native_str=True)
    )
    # JSON escapes control characters itself; on a console a library's traceback (stdlib exc_info) is formatted as
    # text first, to be escaped, not by the renderer's rich traceback (which writes the message's ESC raw)
    inert: list[structlog.types.Processor] = [] if fmt == "json" else [structlog.processors.format_exc_info, _inert]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *inert,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _route_stdlib([*inert, renderer])
    for name, damped in _DAMPED.items():
        logging.getLogger(name).setLevel(damped)


_DAMPED = {"aiokafka": logging.CRITICAL, "botocore": logging.WARNING, "werkzeug": logging.ERROR}


def reset() -> None:
    """Undo `configure`, for tests (which share one process): structlog's defaults, every level passing `enabled`,
    the stdlib root logger without our handler and at its default level, the damped libraries at theirs."""
    structlog.reset_defaults()
    _level[0] = logging.NOTSET
    root = logging.getLogger()
    for ours in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(ours)
    root.setLevel(logging.WARNING)
    for name in _DAMPED:
        logging.getLogger(name).setLevel(logging.NOTSET)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so a second `configure` replaces it (and leaves other handlers, e.g. pytest's, alone)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # the current one, as for structlog's own lines
        super().emit(record)


def _route_stdlib(rendering: list[structlog.types.Processor]) -> None:
    """Library loggers (botocore, moto, werkzeug) render with the same renderer: one log format per process."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.processors.TimeStamper(fmt="iso", utc=True)],
    ))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
