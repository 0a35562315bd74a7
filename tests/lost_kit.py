"""A test actuator whose reply can be lost after it acted, and whose outputs a read gives back only in part: for the
tests of the outputs of a step settled by verify() or recovered after a crash (tests/unit/test_lost_outputs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import JsonValue

from responder.actuators.base import ActuationContext, ActuationResult
from responder.errors import TransientActuationError
from tests.fakes import Echo, EchoParams, Killed
from tests.kit import HEADER, Kit, make_kit

MARK = """\
steps:
  - id: mark
    actuator: test.mark
    retries: 2
    with: {target: t1, message: hello}
"""
"""The runbook's first step: the mark, retried twice (its reply lost once it acted, it is settled by verify)."""


class Marker(Echo):
    """Marks its target; returns the mark's text (which a read gives back) and a verdict (which no read does).

    Example::

        - id: mark
          actuator: test.mark
          with: {target: t1, message: hello}
    """

    name = "test.mark"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"message": "hello", "verdict": True}

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, str] = {}
        self.applies = 0
        self.lose_replies = 0
        """How many of the next applies act, then lose their reply (a transient error)."""
        self.readable = True
        """Whether `outputs_now` can read the mark's text back."""
        self.die_after = False
        """Whether the next apply kills the process (`Killed`) once it has made the mark."""

    async def apply(self, p: EchoParams, ctx: ActuationContext) -> ActuationResult:
        self.applies += 1
        changed = self.marks.get(p.target) != p.message
        self.marks[p.target] = p.message
        if self.die_after:
            self.die_after = False
            raise Killed
        if self.lose_replies > 0:
            self.lose_replies -= 1
            raise TransientActuationError("read timeout after the mark was made", code="Timeout")
        return ActuationResult(changed=changed, target=p.target, outputs={"message": p.message, "verdict": True})

    async def verify(self, p: EchoParams, ctx: ActuationContext) -> bool:
        return self.marks.get(p.target) == p.message

    async def outputs_now(self, p: EchoParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        if not self.readable or p.target not in self.marks:
            return None
        return {"message": self.marks[p.target]}


def marker_kit(tmp_path: Path, runbook: str) -> tuple[Kit, Marker]:
    """A kit whose registry has a `Marker`, running one runbook (`runbook`: its body after the shared header)."""
    kit = make_kit(tmp_path, {})
    marker = Marker()
    kit.registry.add(marker)
    (kit.runbooks_dir / "rb.yaml").write_text(HEADER.format(id="rb") + runbook)
    kit.start()
    return kit, marker
