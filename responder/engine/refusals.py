"""What a refused decision or operator request may cost: bounded, whoever floods the topic, and still on the record.

Anyone who can write the approvals (or operator requests) topic can send records no key signed; each is refused and
recorded (`approval.rejected`, `operator.rejected`). `Refusals` records the first `full` refusals per bucket in each
window in full, and counts the rest: once the window has passed (at the next refusal or `tick`), one summary entry
of the same kind per bucket says how many were not recorded one by one (`suppressed: n`; readers that know the kind
take it for one refusal, as before). A bucket is (kind, reason class, key id), the class being the `Refusal` its
caller names (a field of the error, never read from the message), the key id only when it names a key of the ring
(`known`): a claimed id nobody holds is the sender's choice, so all of them share one bucket, as do the
unsigned. A refusal whose signature verified under a key of the ring (`signed`: the id of its signed bytes) has a
bucket of its own per signed record: copies of one (a replay) share it, but cannot crowd out another record a key
really signed (an insider or a stolen key: evidence), which no one without the key can make. Nothing here
flushes: a refusal rides the next group commit (the approvals loop flushes once per batch, before its offsets are
committed), so a flood adds entries and fsyncs up to a bound, never one per record. While a window has `counting`
refusals, the loops hold their offsets back until its summary is durable (responder/service/signed.py).
Each refusal, recorded or not, is counted by `counted(reason class)` (`responder_decisions_refused_total`).
A refusal made `again()` (of a record a fleet member read again at its start: it reads every decision from the
first, and refused this one when it came) is neither recorded nor counted, only logged at debug: a rolling restart
is not a flood of forged decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from responder.errors import Refusal
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)

FULL_PER_WINDOW = 10
"""Refusals recorded in full per bucket and window; the rest are counted into the window's summary entry."""
WINDOW_S = 60.0
"""Length of a window, in seconds of the engine's clock."""
_AGAIN: ContextVar[bool] = ContextVar("refusals_again", default=False)
"""Whether the record the current task handles was read again at a start: the task's own (the approvals and operator
loops run side by side, and what one reads again says nothing of the other's records)."""


@dataclass
class _Bucket:
    recorded: int = 0
    suppressed: int = 0
    incidents: set[str] = field(default_factory=set)


class Refusals:
    """Records refusals on `recorder`, at most `full` per bucket and window, the rest counted into a summary."""

    def __init__(self, recorder: Recorder, clock: Callable[[], float], *, known: Callable[[str], bool],
                 full: int = FULL_PER_WINDOW, window: float = WINDOW_S) -> None:
        self.recorder, self.clock, self.known = recorder, clock, known
        self.full, self.window = full, window
        self.counted: Callable[[str], None] = lambda reason: None
        """Told the class of every refusal (the service counts them in `responder_decisions_refused_total`)."""
        self._start: float | None = None
        self._buckets: dict[tuple[str, str, str | None, str | None], _Bucket] = {}

    @staticmethod
    @contextmanager
    def again(replayed: bool = True) -> Iterator[None]:
        """While inside (when `replayed`), this task's refusals are of a record read again at a start, refused when it
        came (by this member before it stopped, or by the members running then): neither recorded nor counted."""
        token = _AGAIN.set(_AGAIN.get() or replayed)
        try:
            yield
        finally:
            _AGAIN.reset(token)

    def record(self, kind: str, body: Mapping[str, Any], incident: str | None, *, refusal: Refusal,
               key_id: str | None, signed: str | None = None) -> bool:
        """Record one refusal (`body`, which says why; `refusal`, its class) unless its bucket is full in this window;
        True if recorded. `signed`: the id of the record's signed bytes when its signature verified under `key_id`."""
        self.tick()
        now, cls = self.clock(), refusal.value
        if _AGAIN.get():
            log.debug("refusal_read_again", kind=kind, reason=cls)
            return False
        self.counted(cls)
        if self._start is None:
            self._start = now
        key = key_id if key_id and self.known(key_id) else None
        bucket = self._buckets.setdefault((kind, cls, key, signed if key else None), _Bucket())
        if bucket.recorded < self.full:
            bucket.recorded += 1
            self.recorder.append(kind, body, incident)
            return True
        bucket.suppressed += 1
        if incident and len(bucket.incidents) < self.full:
            bucket.incidents.add(incident)
        if bucket.suppressed == 1:
            log.warning("refusals_suppressed", kind=kind, reason=cls, full=self.full, window=self.window)
        return False

    @property
    def counting(self) -> bool:
        """Whether this window counted refusals its summary has not recorded yet (their offsets wait for it)."""
        return any(bucket.suppressed for bucket in self._buckets.values())

    def tick(self) -> int:
        """End the window once it has passed: a summary entry per bucket that counted refusals; how many entries."""
        if self._start is None or self.clock() < self._start + self.window:
            return 0
        return self._summarise()

    def close(self) -> None:
        """End the window now (at shutdown): what it counted is not lost with the process."""
        self._summarise()

    def _summarise(self) -> int:
        """A summary entry per bucket of the window that counted refusals; how many. A new window starts."""
        start, end = self._start, self.clock()
        written = 0
        for (kind, cls, key_id, signed), bucket in sorted(self._buckets.items(), key=lambda item: str(item[0])):
            if bucket.suppressed and start is not None:
                self.recorder.append(kind, {
                    "reason": f"{bucket.suppressed} more refusals ({cls}) in this window, counted, not recorded one "
                              "by one", "key_id": key_id, "class": cls, "suppressed": bucket.suppressed,
                    "recorded": bucket.recorded, "window_start": _iso(start), "window_end": _iso(end),
                    **({"signed": signed} if signed else {}),
                    **({"incidents": sorted(bucket.incidents)} if bucket.incidents else {})})
                written += 1
        self._start, self._buckets = None, {}
        return written


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()
