"""Idempotency for SIEM retries: a redelivery is acknowledged again and not produced twice.

In memory, bounded (`max_entries`, oldest first) and with a TTL: correct for one intake replica. Each source's
replay memory (its signed deliveries within twice the timestamp tolerance) keeps its live entries instead
(`evict_live=False`, since 2026-12-08), bounded by what the source's rate admits in that time (`replay_bound`), so it
is never full while the source keeps its rate; were it full, the intake would refuse the source's new signed
deliveries (503), since an entry evicted early could be replayed. Two
replicas, or a restart, can produce a redelivery twice; the engine's step idempotency keys still make
each effect happen once (docs/intake.md, "Limits").
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from responder.intake.problems import Problem


def replay_bound(rate_per_s: float, burst: int, window_s: float) -> int:
    """The most deliveries a source's token bucket admits in `window_s` (twice the timestamp tolerance): its replay
    memory's bound, so that it never has to forget a live entry."""
    return burst + math.ceil(rate_per_s * window_s)


def replay_key(webhook_id: str, timestamp: str | None) -> str:
    """A signed delivery's replay entry: a digest of its id and timestamp (an id may be as long as a header)."""
    return hashlib.sha256(f"{webhook_id}\x1f{timestamp}".encode()).hexdigest()


class Deliveries:
    """Delivery keys that were acknowledged, and the ones being produced right now."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic,
                 evict_live: bool = True) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.evict_live = evict_live
        self.clock = clock
        self._done: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bool]] = {}

    def __len__(self) -> int:
        return len(self._done)

    def _expire(self) -> None:
        now = self.clock()
        while self._done:
            key, (expiry, _) = next(iter(self._done.items()))
            if expiry > now and (len(self._done) <= self.max_entries or not self.evict_live):
                break
            del self._done[key]

    def _known(self, key: str, digest: str | None) -> bool:
        self._expire()
        entry = self._done.get(key)
        if entry is None:
            return False
        if digest is not None and entry[1] is not None and entry[1] != digest:
            raise Problem(409, "replayed", "delivery id already used for a different body")
        return True

    async def claim(self, key: str, digest: str | None = None) -> bool:
        """True: the caller must produce and then call `done`; False: already acknowledged (a redelivery)."""
        while True:
            if self._known(key, digest):
                return False
            pending = self._inflight.get(key)
            if pending is None:
                self._inflight[key] = asyncio.get_running_loop().create_future()
                return True
            await asyncio.shield(pending)  # the same delivery is being produced: wait for its outcome

    def done(self, key: str, digest: str | None, ok: bool) -> None:
        """Record the outcome of a claim (remembered only when acknowledged)."""
        if ok:
            self._done[key] = (self.clock() + self.ttl, digest)
            self._done.move_to_end(key)
            self._expire()
        pending = self._inflight.pop(key, None)
        if pending is not None and not pending.done():
            pending.set_result(ok)

    def bind(self, key: str, digest: str) -> None:
        """Remember that delivery `key` carries the body `digest`; 409 when it was used for another body."""
        if not self._known(key, digest):
            self.done(key, digest, True)

    def seen(self, key: str) -> bool:
        """Whether `key` was acknowledged and has not expired (no claim)."""
        return self._known(key, None)

    def full(self) -> bool:
        """Whether as many live entries as the bound are remembered (one more would have to evict a live one)."""
        self._expire()
        return len(self._done) >= self.max_entries

    def retry_after(self) -> int:
        """Whole seconds until enough entries expire for one more to fit (at least 1)."""
        self._expire()
        over = len(self._done) - self.max_entries
        if over < 0:
            return 1
        expiry = next(v[0] for n, v in enumerate(self._done.values()) if n == over)
        return max(1, math.ceil(expiry - self.clock()))
