"""Faults graded: a fault or kill the playbook declares that never fired cannot leave its scenario PASS.

A drill with a fault exists to test what the service does under it: a throttle whose window the service never
called in, or a kill during a call it never made, leaves a scenario that tested nothing (`restarts 0`, `faults 0`)
yet passes every expectation. The loader refuses the names that could never fire (operations.py); this grade
catches the rest (a real operation the service did not call, or not in the fault's window).
"""

from __future__ import annotations

from responder.tabletop.grading import Grade
from responder.tabletop.models import AwsFault, KillFault
from responder.tabletop.outcome import Run

FAULT = "fault"  # the kind of the grade of a fault that never fired
KILL_AT = "kill_at"  # what a kill at a virtual time records as its call (runner.py)


def _never_fired(fault: AwsFault | KillFault, hits: int) -> str:
    if isinstance(fault, AwsFault):
        return (f"{fault.service} {fault.operation} ({fault.error}, t+{fault.start:g}s..t+{fault.end:g}s) never "
                "fired: the service made no such call in that window, so the drill did not test it")
    if fault.kill_during is not None:
        return (f"kill_during {fault.kill_during} never fired: the service never made that call, so no process was "
                "killed and nothing had to recover")
    return f"kill_at t+{fault.kill_at:g}s never fired ({hits} kill_at kill(s) happened): the scenario ended before it"


def grades(run: Run) -> list[Grade]:
    """A must-pass FAIL `faults.N` for each declared fault or kill that never fired (N counts from 0)."""
    out = []
    aws = kill_at = 0
    timed = sum(1 for k in run.kills if KILL_AT in k.get("during", []))
    for n, fault in enumerate(run.playbook.faults):
        if isinstance(fault, AwsFault):
            fired = any(i.get("fault") == aws for i in run.faults)  # FaultyAws numbers the AWS faults in order
            aws += 1
        elif fault.kill_during is not None:
            fired = any(fault.kill_during in k.get("during", []) for k in run.kills)
        else:
            kill_at += 1
            fired = kill_at <= timed
        if not fired:
            out.append(Grade(id=f"faults.{n}", kind=FAULT, status="FAIL", weight=1.0, must_pass=True,
                             instead=_never_fired(fault, timed)))
    return out
