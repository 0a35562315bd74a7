"""The local-directory registry: the embedded default used by the demo and tabletops.

Layout (every name is checked against a pattern before it becomes a path)::

    ROOT/<model>/versions/<version>/model/…        the artifact: a directory of files, with the signed
                                                   release statement model/responder-release.json
    ROOT/<model>/versions/<version>/model.sig      its model-signing bundle (absent = unsigned)
    ROOT/<model>/versions/<version>/version.json   {"created": ISO-8601}: the order of versions signed without a
                                                   release statement (else the directory's mtime)
    ROOT/<model>/serving                           the served version's name, replaced atomically
    ROOT/<model>/quarantine/<version>.json         a version never to be served, and why
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from responder.actuators.model.release import MAX_RELEASE_BYTES, RELEASE_NAME, Release, listed_release
from responder.actuators.model.signing import SIGNATURE_NAME, bundle_digest
from responder.actuators.model.versions import (
    ARTIFACT_DIR,
    MAX_META_BYTES,
    MODEL_NAME,
    VERSION_META,
    VERSION_NAME,
    ModelVersion,
    checked,
)
from responder.errors import PermanentActuationError
from responder.threadpools import run_detached

_POINTER_READS: dict[Path, asyncio.Future[str]] = {}
"""The read of each serving pointer under way: one thread per pointer at most, however many reads of a hung mount
were abandoned at their deadlines."""


async def _pointer_read(pointer: Path) -> str:
    """The pointer's text, read in a thread of its own (`run_detached`) shared with every caller asking meanwhile; a
    caller's deadline abandons its wait, not the read."""
    pending = _POINTER_READS.get(pointer)
    if pending is None or pending.done() or pending.get_loop() is not asyncio.get_running_loop():
        pending = asyncio.ensure_future(run_detached("model-pointer", pointer.read_text))
        _POINTER_READS[pointer] = pending
    return await asyncio.shield(pending)


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # any failure, even a cancel: remove the temporary file, then re-raise
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def created_at(meta: bytes | None, fallback: datetime, release: Release | None = None) -> datetime:
    """A version's place in the order: the `created` of the release statement its bundle lists (`listed_release`;
    checked against the signature before it is served), else of its version.json (legacy signatures; one over
    MAX_META_BYTES, not JSON or nested too deep is ignored), else `fallback`."""
    if release is not None:
        return release.created
    if meta and len(meta) <= MAX_META_BYTES:
        try:
            value = datetime.fromisoformat(str(json.loads(meta)["created"]))
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested too deep
            return fallback
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return fallback


def _small(path: Path) -> bytes | None:
    """The bytes of a regular file of at most MAX_META_BYTES, else None (missing, larger, unreadable, a link)."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_META_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


class LocalStore:
    """A registry in a local directory."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _model(self, model: str) -> Path:
        return self.root / checked(model, MODEL_NAME, "model name")

    def _version(self, model: str, version: str) -> Path:
        return self._model(model) / "versions" / checked(version, VERSION_NAME, "model version")

    def _scan(self, model: str) -> list[ModelVersion]:
        base = self._model(model) / "versions"
        found: list[ModelVersion] = []
        for entry in sorted(base.iterdir()) if base.is_dir() else []:
            if not entry.is_dir() or entry.is_symlink():
                continue
            try:
                checked(entry.name, VERSION_NAME, "model version")
            except PermanentActuationError:
                continue
            meta, statement = entry / VERSION_META, entry / ARTIFACT_DIR / RELEASE_NAME
            mtime = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
            sig = entry / SIGNATURE_NAME
            bundle = sig.read_bytes() if sig.is_file() else None
            small = statement.is_file() and not statement.is_symlink() and statement.stat().st_size <= MAX_RELEASE_BYTES
            found.append(ModelVersion(
                model=model,
                version=entry.name,
                location=str(entry / ARTIFACT_DIR),
                signature=str(sig) if bundle is not None else None,
                digest=bundle_digest(bundle) if bundle is not None else None,
                created=created_at(_small(meta), mtime,
                                   listed_release(statement.read_bytes() if small else None, bundle)),
            ))
        return sorted(found, key=lambda v: (v.created, v.version))

    async def versions(self, model: str) -> list[ModelVersion]:
        return await asyncio.to_thread(self._scan, model)

    async def serving(self, model: str) -> str | None:
        pointer = self._model(model) / "serving"
        try:
            # a thread of its own: a read stuck in the kernel (NFS, a FIFO), abandoned at the step's deadline, must
            # hold neither asyncio.run's exit (the `responder undo` command's) nor the interpreter's
            value = (await _pointer_read(pointer)).strip()
        except FileNotFoundError:
            return None
        return value or None

    async def set_serving(self, model: str, version: ModelVersion) -> None:
        if not self._version(model, version.version).is_dir():
            raise PermanentActuationError(f"{model} has no version {version.version}", code="NotFound")
        await asyncio.to_thread(write_atomically, self._model(model) / "serving", f"{version.version}\n".encode())

    async def quarantined(self, model: str) -> set[str]:
        base = self._model(model) / "quarantine"
        if not base.is_dir():
            return set()
        return {p.stem for p in base.glob("*.json")}

    async def quarantine(self, model: str, version: str, reason: str) -> bool:
        checked(version, VERSION_NAME, "model version")
        mark = self._model(model) / "quarantine" / f"{version}.json"
        if mark.exists():
            return False
        body = {"version": version, "reason": reason, "at": datetime.now(UTC).isoformat()}
        await asyncio.to_thread(write_atomically, mark, json.dumps(body).encode())
        return True

    @asynccontextmanager
    async def local_copy(self, version: ModelVersion) -> AsyncIterator[tuple[Path, Path | None]]:
        yield Path(version.location), Path(version.signature) if version.signature else None

    async def deployable(self, version: ModelVersion) -> str | None:
        return None

    async def publish(self, model: str, version: str, source: Path, signature: Path | None) -> ModelVersion:
        target = self._version(model, version)
        if target.exists():
            raise PermanentActuationError(f"{model} already has a version {version}", code="AlreadyExists")

        def copy() -> None:
            target.mkdir(parents=True)
            shutil.copytree(source, target / ARTIFACT_DIR, symlinks=True)
            if signature is not None:
                shutil.copyfile(signature, target / SIGNATURE_NAME)
            (target / VERSION_META).write_text(json.dumps({"created": datetime.now(UTC).isoformat()}))

        await asyncio.to_thread(copy)
        return next(v for v in await self.versions(model) if v.version == version)

    async def resigned(self, version: ModelVersion, statement: bytes, bundle: bytes) -> None:
        target = self._version(version.model, version.version)
        if not target.is_dir():
            raise PermanentActuationError(f"{version.model} has no version {version.version}", code="NotFound")
        await asyncio.to_thread(write_atomically, target / ARTIFACT_DIR / RELEASE_NAME, statement)
        await asyncio.to_thread(write_atomically, target / SIGNATURE_NAME, bundle)
