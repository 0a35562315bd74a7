"""The service's clock: epoch seconds that follow the wall clock's rate but never its steps.

Quotas, approval deadlines and the future-event clamp compare times on the engine's clock. With `time.time` an
NTP step or an operator's `date -s` of an hour moves every window and deadline by an hour at once: a forward
jump ends quota windows and approval deadlines early, a backward one holds them an hour longer. `SteadyClock`
reads the wall clock once, at start, and advances with `time.monotonic` (which the kernel slews with NTP but
never steps), so a jump while the service runs changes nothing; a restart re-reads the wall clock.
tests/faults/test_clock_jumps.py drives the engine through ±1 h jumps on both clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SteadyClock:
    """Wall-clock time anchored once, advanced by a monotonic clock."""

    def __init__(self, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._base = wall()
        self._start = monotonic()

    def __call__(self) -> float:
        """Epoch seconds: the wall clock at start plus the monotonic time since."""
        return self._base + (self._monotonic() - self._start)
