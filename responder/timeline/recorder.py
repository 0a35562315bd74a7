"""The recorder: chains entries, signs checkpoints; its base `GroupCommit` (durable.py) makes them durable."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from responder.errors import ChainBroken
from responder.models.timeline import GENESIS_HASH, EntryKind, TimelineEntry
from responder.settings import Settings
from responder.timeline.chain import Sealer, parse_lines
from responder.timeline.checkpoint import Signer
from responder.timeline.durable import DurableSink, GroupCommit
from responder.timeline.store import TAIL_WINDOW, FileStore, TimelineStore
from responder.timeline.verification import Verification
from responder.timeline.verify import OFFLINE_WRITER, verify_lines
from responder.tracing import STAMP

__all__ = ["DurableSink", "Recorder", "default_writer_id"]

_MILLIS = [f"{n:03d}" for n in range(1000)]  # the digits of an `at`'s microseconds, in two halves
_MICROS = [f"{n:03d}+00:00" for n in range(1000)]
_KIND = b',"kind":"'  # in a canonical line the entry's own kind is the last: only prev, seq and writer follow it


def _is_checkpoint(line: bytes) -> bool:
    """Whether a canonical line is a checkpoint entry (a body's nested `"kind":"checkpoint"` comes before it)."""
    at = line.rfind(_KIND)
    return at >= 0 and line.startswith(b'checkpoint"', at + len(_KIND))


def default_writer_id() -> str:
    """host:pid, so entries from different replicas are told apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Recorder(GroupCommit):
    """Appends chained entries; `flush()` makes them durable, sharing one fsync between concurrent callers.

    With a `signer`, a checkpoint entry signing the head is appended after every `checkpoint_every`
    entries, or at the first append or flush once `checkpoint_interval` seconds have passed, and on close.
    """

    def __init__(
        self,
        store: TimelineStore,
        writer: str | None = None,
        linger: float = 0.0,
        *,
        signer: Signer | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 10.0,
        retry_max: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store, linger, retry_max)
        self.clock = clock
        self.writer = writer or default_writer_id()
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.observers: list[Callable[[TimelineEntry], None]] = []  # called at append, in the appending task
        self._next_seq = 0
        self._head = GENESIS_HASH
        self._since_checkpoint = 0
        self._checkpoint_clock = clock()
        self._sealer = Sealer(self.writer)
        self._at_second, self._at_prefix = -1, ""
        self.signed_on_disk = False  # the file held a checkpoint when opened (someone signs this timeline)
        self._closed = False
        self._resume()
        self.opened_seq, self._opened_run = self._next_seq, self._since_checkpoint

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> Recorder:
        """The file-backed recorder, signing checkpoints when a key is configured; entries are stamped by `clock`."""
        key = settings.timeline_signing_key
        return cls(FileStore(settings.timeline_path), linger=settings.timeline_linger_ms / 1000,
                   signer=Signer.from_text(key.get_secret_value()) if key else None,
                   checkpoint_every=settings.timeline_checkpoint_every,
                   checkpoint_interval=settings.timeline_checkpoint_interval, clock=clock)

    @classmethod
    def offline(cls, path: Path, settings: Settings) -> Recorder:
        """A command's recorder on a stopped service's file (`undo`, `models …`): it seals what it adds with a signed
        checkpoint on close when this host has the signing key (`unsigned()` otherwise). Its writer is
        `offline:host:pid:token`, so `verify` tells its unsigned entries from the service's (see verify_lines)."""
        key = settings.timeline_signing_key
        store = FileStore(path)
        recorder = cls(store, f"{OFFLINE_WRITER}{default_writer_id()}:{secrets.token_hex(3)}",  # a pid may repeat
                       signer=Signer.from_text(key.get_secret_value()) if key else None,
                       checkpoint_every=settings.timeline_checkpoint_every,
                       checkpoint_interval=settings.timeline_checkpoint_interval)
        if recorder.signer is None and not recorder.signed_on_disk:  # the tail read at open may start after the last
            run, signed = 0, False  # checkpoint (a crash): count the unsigned run over the whole file, line by line
            with store.path.open("rb") as fh:
                for line in fh:
                    if _is_checkpoint(line):
                        run, signed = 0, True
                    elif line.strip():
                        run += 1
            recorder.signed_on_disk, recorder._opened_run = signed, run
        return recorder

    def past_cadence(self) -> bool:
        """Whether the signed timeline's unsigned run is already longer than the cadence (no signer here): `verify`
        reports it as an unsigned offline tail, and an offline command must not start on it (see verify_lines)."""
        return self.signer is None and self.signed_on_disk and self.unsigned_run() > self.checkpoint_every

    def unsigned(self) -> int:
        """Entries this recorder added to a signed timeline that no checkpoint of its own covers (no signer here)."""
        return self._next_seq - self.opened_seq if self.signer is None and self.signed_on_disk else 0

    def unsigned_run(self) -> int:
        """Entries after the last checkpoint, those on disk at open included (what `verify`'s cadence counts)."""
        return self._since_checkpoint if self.signer is not None else self._opened_run + self.unsigned()

    def _resume(self) -> None:
        """Continue after the last entry on disk (orjson only: this runs on every start).

        A file store is read from its tail only (the last 256 KiB), so a start does not grow with history;
        `responder timeline verify` checks the whole chain. With a signer, a checkpoint is owed at once when the
        unsigned run on disk already reaches the cadence (a crash tore the checkpoint after its last entry) or
        is longer than the tail read (its length unknown): `verify` allows no more than the cadence.
        """
        last: dict[str, Any] | None = None
        signed = False
        first: dict[str, Any] | None = None
        tail = getattr(self.store, "tail", None)
        data = tail(TAIL_WINDOW) if tail is not None else self.store.read()
        partial = tail is not None and os.path.getsize(self.store.path) > len(data)  # type: ignore[attr-defined]
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                last = orjson.loads(line)
                first = first if first is not None else last
                kind, seq, digest, prev = last["kind"], int(last["seq"]), str(last["hash"]), str(last["prev"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ChainBroken(number, f"line {number} is not a timeline entry: {exc.__class__.__name__}") from exc
            if partial and last is first:  # the tail starts mid-chain: link checks start at its first entry
                self._next_seq, self._head = seq, prev
            if seq != self._next_seq or prev != self._head:  # links only: hashes are `timeline verify`'s job
                reason = (f"sequence gap: expected seq {self._next_seq}, found {seq}" if seq != self._next_seq
                          else "prev does not match the hash of the entry before it")
                raise ChainBroken(seq, f"{reason}; refusing to append to a broken timeline "
                                       "(`responder timeline verify` shows it)")
            signed = signed or kind == EntryKind.CHECKPOINT
            self._since_checkpoint = 0 if kind == EntryKind.CHECKPOINT else self._since_checkpoint + 1
            self._next_seq, self._head, self._durable_seq = seq + 1, digest, seq
        self.signed_on_disk = signed
        if self._since_checkpoint >= self.checkpoint_every or (partial and not signed and self._since_checkpoint):
            self.checkpoint()

    @property
    def head(self) -> str:
        """Hash of the last entry appended."""
        return self._head

    @property
    def next_seq(self) -> int:
        """The seq the next entry will get."""
        return self._next_seq

    def append(self, kind: str, body: Mapping[str, Any], incident: str | None = None) -> TimelineEntry:
        """Chain an entry onto the head; durable only after `flush()`. It carries this context's trace `STAMP`."""
        stamp = STAMP.get()
        entry = self._seal(kind, dict(body) if stamp is None else {**stamp, **body}, incident or None)
        for observer in self.observers:
            observer(entry)
        if self.signer is not None:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every or self._checkpoint_due():
                self.checkpoint()
        return entry

    def _at(self) -> str:
        """The clock as ISO 8601 with microseconds (`datetime.isoformat`'s text), the second's prefix cached."""
        now = self.clock()
        second = int(now)  # toward zero, as math.modf
        micros = round((now - second) * 1e6)  # exact: the fraction of a float is representable
        if micros >= 1_000_000 or micros < 0:  # rounded up to the next second, or before 1970
            second, micros = second + micros // 1_000_000, micros % 1_000_000
        if second != self._at_second:
            self._at_second = second
            self._at_prefix = datetime.fromtimestamp(second, UTC).isoformat()[:-6] + "."  # without "+00:00"
        return f"{self._at_prefix}{_MILLIS[micros // 1000]}{_MICROS[micros % 1000]}"  # a third of {micros:06d}'s cost

    def _seal(self, kind: str, body: dict[str, Any], incident: str | None) -> TimelineEntry:
        """Chain an entry with `body`, a dict the caller made for it (kept, never copied again)."""
        sealer = self._sealer
        sealed = sealer.seal(self._head, self._next_seq, self._at(), kind, incident, body)
        self._pending.append(sealed)
        self._head = sealer.last  # the entry's hash, the same str
        self._next_seq += 1
        return sealed[0]

    def _checkpoint_due(self) -> bool:
        return self._since_checkpoint > 0 and self.clock() - self._checkpoint_clock >= self.checkpoint_interval

    def checkpoint(self) -> TimelineEntry | None:
        """Append a signed checkpoint over the current head now (None without a signer or an empty chain)."""
        if self.signer is None or self._next_seq == 0:
            return None
        body = self.signer.body(self.writer, self._next_seq - 1, self._head)
        self._since_checkpoint = 0
        self._checkpoint_clock = self.clock()
        return self._seal(EntryKind.CHECKPOINT, dict(body), None)

    def entries(self) -> Iterator[TimelineEntry]:
        """Every durable entry, in order."""
        return parse_lines(self.store.read().splitlines())

    def verify(self) -> Verification:
        """Verify the durable chain (links and hashes; signatures need a Checker, see verify_lines)."""
        return verify_lines(self.store.read().splitlines())

    def close(self) -> None:
        """Seal with a final checkpoint when anything is unsigned, flush, and close the store: closed (its lock
        released) even when the last write fails, so that a service built after this one can open the file. Once
        closed or released, nothing."""
        if self._closed:
            return
        try:
            if self.signer is not None and self._since_checkpoint > 0:
                self.checkpoint()
            self.flush_sync()
        finally:
            self._closed = True
            self.store.close()

    def release(self) -> None:
        """Make what was appended durable and close the store (its lock released) without sealing: a service whose
        start failed adds no checkpoint (the next start signs the tail). Closing it afterwards does nothing."""
        if self._closed:
            return
        try:
            self.flush_sync()
        finally:
            self._closed = True
            self.store.close()
