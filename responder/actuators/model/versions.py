"""What a model registry holds: names (validated, never a path), versions, and where to find them."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, JsonValue

# defined with the ActuationContext that carries it (a module below this package); still importable from here
from responder.actuators.base import ModelConfig as ModelConfig
from responder.errors import PermanentActuationError

MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
VERSION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
REGISTRY_URL = r"^(s3://|sagemaker\+s3://|file://)?[^\x00-\x1f]{1,1024}$"
ARTIFACT_DIR = "model"
VERSION_META = "version.json"
MAX_META_BYTES = 64 * 1024  # a larger version.json is not read (a version's order then falls back: docs/models.md)


def printable(text: str) -> str:
    """`text` with every lone surrogate (an undecodable byte of a file name, or one a bundle's JSON carries) written
    as a backslash escape: a rejection's detail must encode as UTF-8 for the timeline (orjson refuses surrogates)."""
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
                   else f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def checked(value: str, pattern: str, what: str) -> str:
    """`value` if it matches `pattern`; names become paths and S3 keys, so nothing else gets through."""
    if not re.fullmatch(pattern, value):
        raise PermanentActuationError(f"invalid {what} {value!r}: must match {pattern}", code="InvalidName")
    return value


def digest_mark(digest: str) -> str:
    """The quarantine mark of an artifact digest (`sha256:ab…` → `sha256.ab…`, a valid version name).

    Quarantining a version also marks its digest, so the same signed artifact under another version
    name stays quarantined. 57 hex digits (228 bits) are kept: the name pattern allows 64 characters.
    """
    return re.sub(r"[^A-Za-z0-9]", ".", digest)[:64]


def digest_shaped(name: str) -> bool:
    """Whether `name` has the form of an artifact digest's quarantine mark (`digest_mark`), in any case: a mark
    written for a version so named would quarantine whichever artifact has that digest."""
    return re.fullmatch(r"sha256\.[0-9a-f]{57}", name, flags=re.IGNORECASE) is not None


def safe_relative(name: str) -> bool:
    """True for a relative POSIX path without `..`, empty or absolute parts (a file inside an artifact)."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


class ModelVersion(BaseModel):
    """One version of a model: where its artifact and signature bundle are, its digest and creation time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: str
    location: str
    signature: str | None
    digest: str | None
    created: datetime

    def view(self, quarantined: bool = False) -> dict[str, JsonValue]:
        """JSON-ready description for the timeline and the CLI."""
        return {
            "model": self.model,
            "version": self.version,
            "location": self.location,
            "signature": self.signature,
            "digest": self.digest,
            "created": self.created.isoformat(),
            "quarantined": quarantined,
        }


@dataclass(frozen=True)
class Rejection:
    """A candidate the rollback walked past, and why."""

    version: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", printable(self.detail))  # for the timeline: no lone surrogate

    def view(self) -> dict[str, JsonValue]:
        """JSON-ready."""
        return {"version": self.version, "reason": self.reason, "detail": self.detail}


class ModelStore(Protocol):
    """A registry backend: versions, a serving pointer, quarantine marks, and local copies to verify."""

    kind: str

    async def versions(self, model: str) -> list[ModelVersion]:
        """Every version, oldest first (by creation time, then name)."""
        ...

    async def serving(self, model: str) -> str | None:
        """The version currently served, or None when nothing registered is served."""
        ...

    async def set_serving(self, model: str, version: ModelVersion) -> None:
        """Point the serving pointer at `version` (atomically where the backend allows)."""
        ...

    async def quarantined(self, model: str) -> set[str]:
        """Versions marked never to be served."""
        ...

    async def quarantine(self, model: str, version: str, reason: str) -> bool:
        """Mark `version` never to be served; False when it already was."""
        ...

    def local_copy(self, version: ModelVersion) -> AbstractAsyncContextManager[tuple[Path, Path | None]]:
        """The artifact directory and signature bundle as local paths, for verification."""
        ...

    async def deployable(self, version: ModelVersion) -> str | None:
        """None when the backend can serve `version`; otherwise why not."""
        ...

    async def publish(self, model: str, version: str, source: Path, signature: Path | None) -> ModelVersion:
        """Copy a model directory (and its bundle) in as a new version."""
        ...

    async def resigned(self, version: ModelVersion, statement: bytes, bundle: bytes) -> None:
        """Add the release statement to `version`'s artifact and replace its bundle (`responder models resign`)."""
        ...

