"""Builders for timelines with checkpoints, an archive, and one incident's worth of entries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import EntryKind, TimelineEntry
from responder.timeline import FileStore, Recorder
from responder.timeline.archive import Archiver, MemoryArchive
from responder.timeline.checkpoint import Signer, generate_keypair

PRIVATE, PUBLIC = generate_keypair()
START = 1_800_000_000.0
TIMELINE_ENV = ("RESPONDER_CONFIG", "RESPONDER_TIMELINE_VERIFY_KEY", "RESPONDER_TIMELINE_ARCHIVE",
                "RESPONDER_TIMELINE_SIGNING_KEY", "RESPONDER_TIMELINE_CHECKPOINT_EVERY",
                "RESPONDER_TIMELINE_CHECKPOINT_INTERVAL")
"""The settings a timeline CLI test starts without (the verifier's cadence then: 1000)."""


@pytest.fixture
def no_timeline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI defaults come from RESPONDER_* variables; a test using this starts without any (verifier's cadence: 1000)."""
    for name in TIMELINE_ENV:
        monkeypatch.delenv(name, raising=False)


def verify_json(path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    """`timeline verify PATH --public-key PUBLIC --json` and `extra`: its exit code and document."""
    out = CliRunner().invoke(app, ["timeline", "verify", str(path), "--public-key", PUBLIC, "--json", *extra])
    return out.exit_code, orjson.loads(out.stdout)


def docs_of(path: Path) -> list[dict]:
    """Each line of a timeline file, parsed."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


class Clock:
    """A settable clock for a recorder."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def service_recorder(path: Path, clock: Callable[[], float], writer: str = "svc:1", every: int = 1000,
                     cls: type[Recorder] = Recorder) -> Recorder:
    """The service's recorder: signs every `every` entries or 10 s."""
    return cls(FileStore(path), writer, signer=Signer.from_text(PRIVATE), checkpoint_every=every,
               checkpoint_interval=10.0, clock=clock)


def append_events(rec: Recorder, clock: Clock, n: int, step: float = 3.0) -> None:
    """`n` entries, `step` seconds apart on `clock`."""
    for i in range(n):
        clock.now += step
        rec.append("event.received", {"i": i}, "inc-1")


def crash(rec: Recorder) -> None:
    """SIGKILL: what was appended is durable, no checkpoint on close."""
    rec.flush_sync()
    rec.store.close()


def keyed_start(path: Path, writer: str = "svc:9") -> None:
    """A service started with the key on the file, ten days on: it checkpoints before its first entry (version 2, when
    entries follow the last checkpoint), writes one, stops."""
    clock = Clock()
    clock.now += 10 * 86400
    rec = service_recorder(path, clock, writer)
    append_events(rec, clock, 1)
    rec.close()


def signed_recorder(path: Path, every: int = 5, interval: float = 3600.0) -> Recorder:
    """A file recorder that checkpoints every `every` entries with the test key."""
    return Recorder(FileStore(path), writer="test", signer=Signer.from_text(PRIVATE), checkpoint_every=every,
                    checkpoint_interval=interval)


def write_signed(path: Path, n: int = 20, every: int = 5) -> list[bytes]:
    """`n` entries plus checkpoints (and a final one on close); returns the lines without newlines."""
    rec = signed_recorder(path, every)
    for i in range(n):
        rec.append("step.intent", {"i": i, "text": "ü"}, incident="inc")
    rec.close()
    return path.read_bytes().splitlines()


async def archived(lines: list[bytes]) -> MemoryArchive:
    """A memory archive holding every sealed segment of `lines`."""
    archive = MemoryArchive()
    archiver = Archiver(archive)
    archiver.catch_up(lines)
    archiver.close()
    await archiver.run()
    return archive


def incident_timeline(path: Path) -> Recorder:
    """A recorder holding one event that opened incident `inc-1` and ran one step, plus unrelated noise."""
    rec = signed_recorder(path, every=100)
    rec.append("event.received", {"event_id": "ev-1", "source": "guardduty", "type": "UnauthorizedAccess:IAMUser/X",
                                  "severity": 8.0, "time": "2026-11-25T10:00:00+00:00",
                                  "resources": [{"kind": "access_key", "id": "AKIAEXAMPLE"}]})
    rec.append("event.received", {"event_id": "ev-2", "source": "guardduty", "type": "other"})
    rec.append("event.matched", {"event_id": "ev-1", "runbook": "rb@1"})
    rec.append("incident.opened", {"event_id": "ev-1", "runbook": "rb@1", "group_key": "g",
                                   "event_time": "2026-11-25T10:00:00+00:00"}, "inc-1")
    head = {"step": "deactivate-key", "actuator": "aws.iam.deactivate_access_key", "target": "AKIAEXAMPLE", "key": "k1"}
    rec.append("step.intent", {**head, "params": {"user_name": "u", "access_key_id": "AKIAEXAMPLE"}}, "inc-1")
    rec.append("step.result", {**head, "status": "ok", "changed": True, "verified": True, "duration_ms": 12.5,
                               "prior": {"status": "Active"}, "after": {"status": "Inactive"}}, "inc-1")
    rec.append("step.intent", {"step": "x", "key": "other"}, "inc-2")
    return rec


def rehash(docs: list[dict]) -> bytes:
    """Renumber and rehash entries: what an attacker without the signing key can do after a change."""
    from responder.timeline.chain import canonical_json, entry_hash

    out, prev = [], "0" * 64
    for seq, d in enumerate(docs):
        d["seq"], d["prev"] = seq, prev
        d["hash"] = prev = entry_hash(prev, seq, d["writer"], d["at"], d["kind"], d["incident"],
                                      canonical_json(d["body"]))
        out.append(canonical_json(d) + b"\n")
    return b"".join(out)


def rewritten_tail(path: Path, label: Callable[[int], str], hours: bool = True) -> None:
    """The reviews' rewrite: 20 service entries, the checkpoints after seq 4 deleted, entry 7 edited, the tail's `k`th
    entry relabelled `label(k)` (and, with `hours`, restamped `k` hours later), rehashed."""
    clock = Clock()
    rec = service_recorder(path, clock)
    append_events(rec, clock, 20)
    rec.close()
    kept = [d for d in docs_of(path) if d["kind"] != "checkpoint" or d["seq"] == 4]
    kept[7]["body"]["i"] = 999
    for k, d in enumerate(kept[5:]):
        d["writer"] = label(k)
        if hours:
            d["at"] = (datetime.fromisoformat(d["at"]) + timedelta(hours=k)).isoformat()
    path.write_bytes(rehash(kept))


class RecorderV1(Recorder):
    """The recorder as before 2026-12-07: version-1 checkpoints, which sign no cadence (what older files hold), and a
    start that owes no checkpoint before its first entry (one only once the unsigned run on disk reached the cadence).
    """

    def _resume(self) -> None:
        super()._resume()
        self._owed = False

    def checkpoint(self) -> TimelineEntry | None:
        """A version-1 checkpoint over the head, as the recorder wrote it then."""
        if self.signer is None or self._next_seq == 0:
            return None
        body = self.signer.body(self.writer, self._next_seq - 1, self._head)
        self._since_checkpoint, self._owed = 0, False
        self._checkpoint_clock = self.clock()
        return self._seal(EntryKind.CHECKPOINT, dict(body), None)


def cut_back_to_version_1(path: Path, forged: int = 40,
                          label: Callable[[int], tuple[str, str]] | None = None) -> int:
    """The review's b_downgrade: a file an older release signed (version 1) and an upgraded one continued, cut back to
    its last version-1 checkpoint, then `forged` entries an hour apart appended and rehashed (no key needed): the `k`th
    of the writer and kind `label(k)` (default: the entry's before the checkpoint). Returns that checkpoint's seq."""
    clock = Clock()
    old = service_recorder(path, clock, every=3, cls=RecorderV1)
    append_events(old, clock, 5, step=0.1)
    old.close()
    new = service_recorder(path, clock, every=3)
    append_events(new, clock, 30)
    new.close()
    docs = docs_of(path)
    last_v1 = max(d["seq"] for d in docs if d["kind"] == "checkpoint" and d["body"]["v"] == 1)
    kept, template = [d for d in docs if d["seq"] <= last_v1], docs[last_v1 - 1]
    for k in range(forged):
        at = (datetime.fromisoformat(template["at"]) + timedelta(hours=k + 1)).isoformat()
        writer, kind = label(k) if label is not None else (template["writer"], template["kind"])
        kept.append({**template, "writer": writer, "kind": kind, "body": {"forged": k}, "at": at})
    path.write_bytes(rehash(kept))
    return last_v1
