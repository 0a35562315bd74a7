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

from responder.models.timeline import GENESIS_HASH, EntryKind, TimelineEntry
from responder.settings import Settings
from responder.timeline.chain import Sealer, parse_lines
from responder.timeline.checkpoint import Ack, Cadence, Signer
from responder.timeline.durable import DurableSink, GroupCommit
from responder.timeline.resume import read_back, unsigned_run, warn_signed
from responder.timeline.store import FileStore, TimelineStore
from responder.timeline.tail import OFFLINE_WRITER
from responder.timeline.verification import Flagged, Verification
from responder.timeline.verify import verify_lines
from responder.tracing import STAMP

__all__ = ["DurableSink", "Recorder", "default_writer_id"]

_MILLIS = [f"{n:03d}" for n in range(1000)]  # the digits of an `at`'s microseconds, in two halves
_MICROS = [f"{n:03d}+00:00" for n in range(1000)]


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
        carry_cadence: bool = False,
        carried: Cadence | None = None,
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
        self.tail_cadence = checkpoint_every  # what `verify` allows after the last checkpoint on disk (it signs it)
        self._owed = False  # a checkpoint before the next entry (see _resume)
        self._flagged: Flagged | None = None  # what verify will flag of the run the start's checkpoint signs
        self._carry = carry_cadence  # an offline command's: its checkpoints keep the file's signed cadence
        self._carried: Cadence | None = None
        if carried is not None:
            self._keep(carried)
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
    def offline(cls, path: Path, settings: Settings, store: FileStore | None = None,
                cadence: Cadence | None = None) -> Recorder:
        """A command's recorder on a stopped service's file (`undo`, `models …`): it seals what it adds with a signed
        checkpoint on close when this host has the signing key (`unsigned()` otherwise). Its writer is
        `offline:host:pid:token`, so `verify` tells its unsigned entries from the service's (see verify_lines). Its
        checkpoints sign the cadence the file's last checkpoint signs (the service's), when it signs one, not this
        host's settings: they would widen the tail `verify` allows. `store`: the file already opened (its lock held);
        `cadence`: the one its last checkpoint signs, when known (`timeline sign`'s full verification)."""
        key = settings.timeline_signing_key
        store = store or FileStore(path)
        recorder = cls(store, f"{OFFLINE_WRITER}{default_writer_id()}:{secrets.token_hex(3)}",  # a pid may repeat
                       signer=Signer.from_text(key.get_secret_value()) if key else None,
                       checkpoint_every=settings.timeline_checkpoint_every,
                       checkpoint_interval=settings.timeline_checkpoint_interval, carry_cadence=True, carried=cadence)
        if recorder.signer is None and not recorder.signed_on_disk:  # the tail read at open may start after the last
            run, signed, found = unsigned_run(store.path)  # checkpoint (a crash): count over the whole file
            recorder.signed_on_disk, recorder._opened_run = signed, run
            if found is not None and recorder._carried is None:  # a last checkpoint beyond the tail read: its cadence
                recorder._keep(found)
            recorder.tail_cadence = found.every if found is not None else recorder.checkpoint_every
        return recorder

    def past_cadence(self) -> bool:
        """Whether the signed timeline's unsigned run is already longer than the cadence (no signer here): `verify`
        reports it as an unsigned offline tail, and an offline command must not start on it (see verify_lines)."""
        return self.signer is None and self.signed_on_disk and self.unsigned_run() > self.tail_cadence

    def unsigned(self) -> int:
        """Entries this recorder added to a signed timeline that no checkpoint of its own covers (no signer here)."""
        return self._next_seq - self.opened_seq if self.signer is None and self.signed_on_disk else 0

    def unsigned_run(self) -> int:
        """Entries after the last checkpoint, those on disk at open included (what `verify`'s cadence counts)."""
        return self._since_checkpoint if self.signer is not None else self._opened_run + self.unsigned()

    def _resume(self) -> None:
        """Continue after the last entry on disk.

        A file store is read from its tail only (the last 256 KiB), so a start does not grow with history;
        `responder timeline verify` checks the whole chain. With a signer, a checkpoint is appended at once when the
        unsigned run on disk already reaches the cadence (a crash tore the checkpoint after its last entry) or
        is longer than the tail read (its length unknown): `verify` allows no more than the cadence. Otherwise one is
        owed before this recorder's first entry when entries follow the last checkpoint (a crash's) or that
        checkpoint signs another cadence than this recorder's: so the entries after a checkpoint are one writer
        process's, kept to the cadence and interval it signs, which is what `verify` holds an unsigned tail to.
        """
        state = read_back(self.store)
        self._next_seq, self._head, self._durable_seq = state.next_seq, state.head, state.last_seq
        self._since_checkpoint, self.signed_on_disk = state.since_checkpoint, state.signed
        if state.cadence is not None:
            self.tail_cadence = state.cadence.every
            if self._carry and self._carried is None:  # never wider than what the service signs
                self._keep(state.cadence)
        mine = self.cadence()
        self._owed = self.signer is not None and (state.since_checkpoint > 0
                                                  or (state.signed and state.cadence != mine))
        self._flagged = state.unproven(self.writer, mine) if self.signer is not None else None  # logged once signed
        if self._since_checkpoint >= self.checkpoint_every or (state.partial and not state.signed
                                                               and self._since_checkpoint):
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
        if self._owed:
            self.checkpoint()
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

    def _keep(self, cadence: Cadence) -> None:
        """Sign `cadence`, the file's, from here on (an offline command's: never wider than what the service signs)."""
        self._carried = cadence
        self.checkpoint_every, self.checkpoint_interval = cadence.every, cadence.interval_ms / 1000

    def cadence(self) -> Cadence:
        """The cadence this recorder's checkpoints sign: the file's, carried forward (`offline`), else its own."""
        return self._carried or Cadence.of(self.checkpoint_every, self.checkpoint_interval)

    def checkpoint(self, ack: Ack | None = None) -> TimelineEntry | None:
        """Append a signed checkpoint over the current head now (None without a signer or an empty chain); with an
        operator's `ack` (`timeline sign --force`), a version-3 one that signs it too."""
        if self.signer is None or self._next_seq == 0:
            return None
        body = self.signer.body(self.writer, self._next_seq - 1, self._head, self.cadence(), ack)
        self._since_checkpoint, self._owed = 0, False
        self._checkpoint_clock = self.clock()
        if self._flagged is not None:
            warn_signed(self._flagged, self.writer)
            self._flagged = None
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
