"""The actuation branch's failure after a partial change, of the one exception tree (`responder.errors`).

::

    ResponderError
    └── ActuationError
        └── PermanentActuationError
            └── PartialActuationError   it failed after changing part of its target (or may have): kept counted

A module of its own so that `responder.errors` stays one screenful; `ActuationError`, `TransientActuationError` and
`PermanentActuationError` stay there (every actuator imports them).
"""

from __future__ import annotations

from typing import Any

from responder.errors import PermanentActuationError


class PartialActuationError(PermanentActuationError):
    """A failure after the actuator changed part of its target (a role of several, some network interfaces, a spare
    key it deleted), or, `certain` False, may have (an earlier attempt cut short by a transient error). Its quota run
    is not refunded, and the step's result records it: `done` (what was changed, in words: the error ends with it,
    so the escalation says it), and, when certain, `prior` and `after` in the actuator's own terms, for undo."""

    def __init__(self, cause: BaseException, *, done: str, prior: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None, certain: bool = True) -> None:
        self.done = done
        self.prior: dict[str, Any] = dict(prior or {})
        self.after: dict[str, Any] = dict(after or {})
        self.certain = certain
        said = "partly done before it failed: " if certain else ""
        super().__init__(f"{str(cause) or type(cause).__name__}; {said}{done}",
                         code=getattr(cause, "code", type(cause).__name__))
