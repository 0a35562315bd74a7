"""What an actuator that changes several things in turn has changed so far, so that a failure part-way is not taken
for one that changed nothing (docs/security.md, "Failed steps do not spend the quota").

`Partly` is used as a context manager around an apply's changes: each change is `note`d once made, and a failure
that is not transient (a permanent error, a bug), raised after at least one change, leaves the block as a
`PartialActuationError` naming them, with the state before and after in the actuator's own terms (`state`, read when
it fails) so undo can revert what was done. A transient error leaves it as it is: the step is retried (each apply is
idempotent) and, if the retries run out, is recorded as a transient failure, never refunded. A failure before any
change leaves it as it is too: nothing was changed, and the quota run is refunded as before.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from responder.errors import TransientActuationError
from responder.errors_actuation import PartialActuationError

State = Callable[[], tuple[dict[str, Any], dict[str, Any]]]
"""The (prior, after) to record for undo once the apply fails part-way; empty dicts when undo cannot revert it."""


def _nothing() -> tuple[dict[str, Any], dict[str, Any]]:
    return {}, {}


class Partly:
    """The changes one apply made so far (`done`, in words); see the module docstring."""

    __slots__ = ("done", "state")

    def __init__(self, state: State = _nothing) -> None:
        self.done: list[str] = []
        self.state = state

    def note(self, change: str) -> None:
        """One change made (`put the invoke deny on role x`)."""
        self.done.append(change)

    def __enter__(self) -> Partly:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or not self.done or not isinstance(exc, Exception) \
                or isinstance(exc, TransientActuationError | PartialActuationError):
            return
        prior, after = self.state()
        raise PartialActuationError(exc, done="; ".join(self.done), prior=prior, after=after) from exc
