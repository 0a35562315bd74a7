"""The fleet's writers: which replicas' timelines a verification of several files found, against those expected.

A replica's writer id is `host:pid` (a new pid at each restart, the host stable: a pod name); an offline command's
is `offline:host:pid:token`. One file per replica; verify checks each file's chain, this checks the set of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from responder.timeline.tail import OFFLINE_WRITER
from responder.timeline.verification import Verification


def replica(writer: str) -> str | None:
    """The replica of a writer id: the host of `host:pid` (the whole id without a `:pid`); None for an offline
    command's."""
    if writer.startswith(OFFLINE_WRITER):
        return None
    host, _, pid = writer.rpartition(":")
    return host if host and pid.isdigit() else writer


@dataclass
class WriterCoverage:
    """One replica's part of one file: its last entry and whether a signed checkpoint covers it."""

    name: str
    path: str
    verified: bool
    last_seq: int
    head: str
    last_checkpoint: int | None
    signed: bool
    """A checkpoint after its last entry signs it (False also when the file did not verify)."""


@dataclass
class FileWriters:
    """What one file holds: each writer id's last entry (seq, hash), and its verification (None: it failed)."""

    path: str
    writers: Mapping[str, tuple[int, str]]
    verification: Verification | None = None


@dataclass
class FleetCheck:
    """Expected replicas against the writers found: missing, unexpected, and each found one's coverage."""

    expected: list[str]
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    writers: list[WriterCoverage] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)
    unsigned_only: list[str] = field(default_factory=list)
    """Expected replicas whose entries are all unsigned (after their file's last checkpoint): forgeable, missing."""

    @property
    def ok(self) -> bool:
        """No replica missing and none unexpected (each file's own verdict is verify's)."""
        return not self.missing and not self.unexpected

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"ok": self.ok, "expected": self.expected, "missing": self.missing, "unexpected": self.unexpected,
                "writers": [asdict(w) for w in self.writers], "offline_writers": self.offline,
                "unsigned_only": self.unsigned_only}


def check_writers(expected: Iterable[str], files: Iterable[FileWriters]) -> FleetCheck:
    """Compare the replicas found in `files` with `expected`; a replica is found where any of its writer ids wrote,
    and, with signatures checked, only where a signed checkpoint covers one of its entries: anyone who can write a
    file can append unsigned entries under any writer id, so those alone do not make a deleted replica's file present.
    """
    want = sorted(set(expected))
    result = FleetCheck(expected=want)
    found: set[str] = set()
    seen: set[str] = set()
    for f in files:
        last: dict[str, tuple[int, str]] = {}
        v = f.verification
        cp = v.last_checkpoint if v is not None else None
        for writer, (seq, digest) in f.writers.items():
            name = replica(writer)
            if name is None:
                result.offline.append(writer)
                continue
            if name not in last or seq > last[name][0]:
                last[name] = (seq, digest)
            seen.add(name)
            if v is None or not v.signatures_checked or (cp is not None and v.first_seqs.get(writer, cp + 1) <= cp):
                found.add(name)
        for name, (seq, digest) in sorted(last.items()):
            result.writers.append(WriterCoverage(name, f.path, v is not None, seq, digest, cp,
                                                 v is not None and cp is not None and seq <= cp))
    result.missing = [n for n in want if n not in found]
    result.unsigned_only = [n for n in result.missing if n in seen]
    result.unexpected = sorted(seen - set(want))
    return result
