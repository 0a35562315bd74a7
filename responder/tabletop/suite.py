"""Run a set of playbooks on one sandbox (broker + moto started once, moto reset per scenario)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox
from responder.tabletop.escalation import scenario_runbooks
from responder.tabletop.expectations import Expectation
from responder.tabletop.grading import Card, grade
from responder.tabletop.models import Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.runner import Scenario
from responder.tabletop.scorecard import build, sign_and_append
from responder.tabletop.signed import Manifest, sign_manifest
from responder.timeline.checkpoint import Checker, Signer, generate_keypair


class SuiteResult(BaseModel):
    """Every scenario's card, the key that signed them, the signed manifest of the whole, and the wall time."""

    cards: list[Card]
    key_id: str
    public_key: str
    wall_seconds: float
    manifest: Manifest | None = None  # set by run_suite once every card is signed (signed.py)

    @property
    def failed(self) -> bool:
        """Whether any must_pass expectation failed or a scenario did not finish."""
        return any(c.status == "FAIL" for c in self.cards)


async def _met(exp: Expectation, run: Run, checker: Checker) -> bool:
    """Whether an expectation holds on the run so far (anchors injects with `after: <expectation>`)."""
    return (await grade(exp, run, checker)).status == "PASS"


async def run_suite(playbooks: Sequence[tuple[Path, Playbook]], runbooks_dir: Path, work: Path | None = None,
                    progress: Callable[[str, str, str], None] | None = None,
                    default_on_failure: Sequence[Mapping[str, Any]] = ()) -> SuiteResult:
    """Start the sandbox, run each playbook in order, grade, sign; the sandbox is always torn down.

    `default_on_failure` is the service's setting (`responder run` reads the same one): each scenario's service
    gives it to the runbooks without `on_failure`, as production does, unless its playbook's
    `settings.default_on_failure` is `none`; a bad one is a ConfigError before the run.

    `progress(playbook, kind, text)` hears of it as it happens; kinds: start, setup, clock, inject, decision,
    fault, expect (an expectation met or graded), done (the scenario's status and score).
    """
    started, started_wall, run_id = time.monotonic(), round(time.time(), 3), uuid.uuid4().hex
    books = load_runbooks(runbooks_dir, registry)
    for _, pb in playbooks:  # a default the service would refuse: refused before the sandbox starts
        scenario_runbooks(pb, books, default_on_failure, registry)
    private, public = generate_keypair()
    signer, checker = Signer.from_text(private), Checker.from_text(public)
    sandbox = Sandbox(topics=("responder.notifications",), partitions=1)
    await asyncio.to_thread(sandbox.start)
    if any(pb.world.instances for _, pb in playbooks):  # moto loads its EC2 images on the first call: seconds
        warm = AwsSession(endpoint_url=sandbox.aws.endpoint_url, credentials=SANDBOX_CREDENTIALS, call_timeout=300)
        await warm.call("ec2", "describe_vpcs")
    cards: list[Card] = []
    root = Path(tempfile.mkdtemp(prefix="tabletop-")) if work is None else work
    root.mkdir(parents=True, exist_ok=True)
    try:
        for n, (path, pb) in enumerate(playbooks, 1):
            say = (lambda kind, msg, _id=pb.id: progress(_id, kind, msg)) if progress else None
            if progress:
                progress(pb.id, "start", f"{n}/{len(playbooks)} {pb.title}")
            work_dir = root / f"{n:02d}-{pb.id}"
            shutil.rmtree(work_dir, ignore_errors=True)  # a report directory reused from an earlier run
            work_dir.mkdir(parents=True)
            scenario = Scenario(pb, path, sandbox, books, runbooks_dir, work_dir, private, say,
                                judge=lambda exp, run: _met(exp, run, checker),
                                default_on_failure=default_on_failure)
            run = await scenario.run()
            card = await build(run, checker)
            sign_and_append(card, run, signer, scenario.clock())
            cards.append(card)
            if progress:
                for g in card.grades:
                    progress(pb.id, "expect", f"{g.status} {g.id}" + (f": {g.instead}" if g.instead else ""))
                progress(pb.id, "done", f"{card.status} {card.score:.0%}")
    finally:
        await asyncio.to_thread(sandbox.stop)
        if work is None:  # nobody asked to keep the timelines and model registries
            shutil.rmtree(root, ignore_errors=True)
    return SuiteResult(cards=cards, key_id=signer.key_id, public_key=public,
                       wall_seconds=round(time.monotonic() - started, 3),
                       manifest=sign_manifest(cards, signer, run_id, started_wall))
