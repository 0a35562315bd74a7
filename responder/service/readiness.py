"""What `/readyz` answers for a service: ready, or why not, and a warning it shows while ready.

`Readiness` is mixed into `Service` (responder/service/core.py), whose `MetricsServer` asks it at each request.
"""

from __future__ import annotations

from responder.service.consumers import ConsumerRebuilds


class Readiness(ConsumerRebuilds):
    """Whether the service consumes and its timeline takes writes, read off its run state."""

    def ready_now(self) -> bool:
        """Whether the service is consuming and its timeline takes writes (what `/readyz` reports).

        A full or failing timeline disk stalls the recorder: no step acts without a durable intent and no offset
        is committed, so the service is unready until the write goes through (tests/faults/test_disk_faults.py).
        """
        return self.unready() is None

    def warning(self) -> str | None:
        """What `/readyz` adds under `ready`: the group is shared outside fleet mode (`_note_sharing`), a runbook's
        notification topic is missing (neither holds the start)."""
        return "; ".join(w for w in (self.group_shared, self.topics_warning) if w) or None

    def unready(self) -> str | None:
        """Why the service is not ready (the body of a 503 from `/readyz`), or None when it is."""
        if self._stop.is_set():
            return "stopping"
        if self.topics_missing is not None:
            return self.topics_missing
        if not self.ready.is_set():
            return "starting: joining the consumer group"
        if self.recorder.stalled is not None:
            return f"timeline stalled, no step acts until it takes writes: {self.recorder.stalled}"
        if (rebuilding := self._rebuilding_why()) is not None:
            return rebuilding
        if self._rebalance_error is not None:
            return f"a rebalance failed, stopping: {type(self._rebalance_error).__name__}: {self._rebalance_error}"
        if self.fleet is not None and self.fleet.failed:  # a partition whose state is not restored
            failed = sorted(self.fleet.failed.items())
            return (f"partition(s) {', '.join(str(p) for p, _ in failed)} not restored (paused, retried with "
                    f"backoff): {failed[0][1]}")
        if self.fleet is not None and self.fleet.restoring:
            restoring = ", ".join(map(str, sorted(self.fleet.restoring)))
            return f"partition(s) {restoring} being restored from the changelog (paused until then)"
        return None
