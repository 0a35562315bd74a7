"""bench/longrun.py's fast-forward (`--real-days`): one real incident's timeline entries copied under new ids,
chained and hashed as the recorder does, without the engine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from responder.timeline.chain import canonical_json, parse_lines
from responder.timeline.recorder import Recorder


def forward(recorder: Recorder, templates: list[tuple[str, bytes]], old: tuple[str, str], new: tuple[str, str]) -> None:
    """Append one incident's entries at the format level: the first real incident's canonical bodies with its ids
    replaced, chained and hashed as the recorder does (`responder timeline verify` accepts them), but without
    the engine. Uses the recorder's chain head directly: a bench shortcut, not an API."""
    at = datetime.fromtimestamp(recorder.clock(), UTC).isoformat(timespec="microseconds")
    lines = []
    head, seq, sealer = recorder._head, recorder._next_seq, recorder._sealer
    for kind, body in templates:
        body_json = body.replace(old[0].encode(), new[0].encode()).replace(old[1].encode(), new[1].encode())
        head, line = sealer.line(head, seq, at, kind, new[0], body_json)
        lines.append(line)
        seq += 1
    recorder.store.write(b"".join(lines))
    recorder._head, recorder._next_seq, recorder._durable_seq = head, seq, seq - 1


def first_incident(path: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """The first incident's id and its entries' (kind, canonical body), read from the file line by line.

    Not `recorder.entries()`, which reads the whole file into one buffer: two such reads of the 9 MiB file left
    glibc holding ~10 MB of freed heap for the rest of the run (its dynamic mmap threshold, docs/fleet.md), the
    running RSS's 92 → 103 MB step that looked like growth.
    """
    incident: str | None = None
    found: list[tuple[str, bytes]] = []
    with path.open("rb") as lines:
        for e in parse_lines(lines):
            if incident is None and e.kind == "incident.opened":
                incident = str(e.incident)
            if incident is not None and e.incident == incident:
                found.append((e.kind, canonical_json(e.body)))
    if incident is None:
        raise SystemExit(f"{path}: no incident.opened entry to copy")
    return incident, found
