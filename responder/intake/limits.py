"""Request limits: body size while streaming, slow clients, JSON nesting depth, per-source rate."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from responder.intake.problems import CLOSE, Problem


async def read_body(chunks: AsyncIterator[bytes], declared: str | None, max_bytes: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it passes `max_bytes` (never buffered past it), 408 when slow.

    Both refusals abandon the body: they say `connection: close`, so the connection is closed after them.
    """
    if declared and declared.isascii() and declared.isdigit():
        digits = declared.lstrip("0")  # int() of over 4,300 digits raises: the length decides first
        if len(digits) > len(str(max_bytes)) or int(digits or "0") > max_bytes:
            shown = digits if len(digits) <= 20 else f"of {len(digits)} digits"
            raise Problem(413, "too-large", f"Content-Length {shown} exceeds {max_bytes} bytes", CLOSE)
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise Problem(413, "too-large", f"body exceeds {max_bytes} bytes", CLOSE)
                parts.append(chunk)
    except TimeoutError:
        raise Problem(408, "slow-client", f"body not received within {timeout:g}s", CLOSE) from None
    return b"".join(parts)


def check_depth(doc: Any, limit: int, body: bytes | None = None) -> None:
    """400 when containers nest deeper than `limit`; level by level, so a hostile document cannot recurse.

    With the raw `body`, a document with at most `limit` opening brackets in all is passed without a walk.
    """
    if body is not None and body.count(b"[") + body.count(b"{") <= limit:
        return
    level = [doc] if isinstance(doc, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise Problem(400, "too-deep", f"JSON nesting exceeds {limit} levels")
        deeper = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    deeper.append(child)
        level = deeper


class RateLimiter:
    """A token bucket per source: `rate` requests per second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> None:
        """Spend one token, or raise 429 with Retry-After (whole seconds until one is back)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            wait = max(1, math.ceil((1.0 - self.tokens) / self.rate))
            raise Problem(429, "rate-limited", f"more than {self.rate:g} requests/s", {"Retry-After": str(wait)})
        self.tokens -= 1.0
