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


def _kill_at_fired(run: Run) -> dict[int, bool]:
    """Each `kill_at` fault (by its place in `faults`) with whether a kill at a virtual time happened at or after
    its time: matched by time (earliest fault to the earliest such kill not yet matched), never by playbook order."""
    timed = sorted(k["at"] for k in run.kills if KILL_AT in k.get("during", []))
    out: dict[int, bool] = {}
    for n, at in sorted(((n, f.kill_at) for n, f in enumerate(run.playbook.faults)
                         if isinstance(f, KillFault) and f.kill_at is not None), key=lambda p: (p[1], p[0])):
        match = next((t for t in timed if t >= at), None)
        if match is not None:
            timed.remove(match)
        out[n] = match is not None
    return out


def grades(run: Run) -> list[Grade]:
    """A must-pass FAIL `faults.N` for each declared fault or kill that never fired (N counts from 0): each
    `kill_during` on an operation needs a kill of its own (a second on `UpdateAccessKey` needs a second kill there)."""
    out = []
    aws = 0
    timed = sum(1 for k in run.kills if KILL_AT in k.get("during", []))
    at_fired = _kill_at_fired(run)
    during: dict[str, int] = {}  # kill_during faults seen so far, by operation
    for n, fault in enumerate(run.playbook.faults):
        if isinstance(fault, AwsFault):
            fired = any(i.get("fault") == aws for i in run.faults)  # FaultyAws numbers the AWS faults in order
            aws += 1
        elif fault.kill_during is not None:
            during[fault.kill_during] = during.get(fault.kill_during, 0) + 1
            fired = sum(fault.kill_during in k.get("during", []) for k in run.kills) >= during[fault.kill_during]
        else:
            fired = at_fired[n]
        if not fired:
            out.append(Grade(id=f"faults.{n}", kind=FAULT, status="FAIL", weight=1.0, must_pass=True,
                             instead=_never_fired(fault, timed)))
    return out
