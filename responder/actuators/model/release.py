"""The signed release statement: which model and version an artifact was signed as, and its signed order.

A model-signing bundle covers every file's bytes but no name: without more, an artifact signed for
one model verifies as any model's, and an old version copied under a new name (or with its unsigned
`version.json` rewritten) verifies as the newest. The signer therefore writes `RELEASE_NAME` into
the artifact directory before signing it::

    {"schema": "responder.model-release/v1", "model": "fraud-scorer", "version": "v8",
     "created": "2026-11-25T10:00:00+00:00"}

Being one of the signed files, it is covered by the bundle; a candidate is only served when the
signed model and version equal its place in the registry and the signed `created` is the time its
place in the version order was computed from (`bound`).

The artifact digest (`content_digest`) leaves this file out, so one set of weights signed as two
versions (an rc promoted to the release) is still recognised as the same artifact, and equals the
digest the same files had when signed without a release statement (older quarantine marks match).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from responder.actuators.model.versions import MODEL_NAME, VERSION_NAME, ModelVersion
from responder.errors import ConfigError

RELEASE_NAME = "responder-release.json"
MAX_RELEASE_BYTES = 65536  # a statement is ~150 bytes; a larger file is never read into memory
SCHEMA = "responder.model-release/v1"
MIGRATE = ("re-sign it with `responder models resign MODEL VERSION --key KEY` (see docs/models.md), or set "
           "model_accept_legacy_signatures while migrating")
AFTER_MIGRATION = ("signed without a release statement, and model_refuse_legacy_signatures says every version was "
                   "migrated: find where this artifact came from before re-signing or serving it")


class Release(BaseModel):
    """What the signer declared: the model and version the artifact is, and when it was released."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: Literal["responder.model-release/v1"] = Field(alias="schema")
    model: str = Field(pattern=MODEL_NAME)
    version: str = Field(pattern=VERSION_NAME)
    created: AwareDatetime

    def encode(self) -> bytes:
        """Canonical JSON bytes (sorted keys)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True).encode()


def release_for(model: str, version: str, created: datetime | None = None) -> Release:
    """A release statement for `model` `version` (created now unless given); ConfigError for a bad name."""
    when = created or datetime.now(UTC)
    try:
        return Release.model_validate({"schema": SCHEMA, "model": model, "version": version,
                                       "created": when if when.tzinfo else when.replace(tzinfo=UTC)})
    except ValidationError as exc:
        raise ConfigError(f"invalid model name or version for signing: {exc.errors()[0]['msg']}") from exc


def parse_release(data: bytes | None) -> Release | None:
    """The release statement in `data`, or None when absent or not one."""
    if not data:
        return None
    try:
        return Release.model_validate_json(data)
    except ValidationError:
        return None


def bundle_statement(bundle: bytes) -> dict[str, Any] | None:
    """The in-toto statement in a bundle's DSSE payload, unverified; None when it has none."""
    try:
        statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    except (ValueError, KeyError, TypeError, RecursionError):  # deeply nested JSON: not a bundle
        return None
    return statement if isinstance(statement, dict) else None


def content_digest(bundle: bytes) -> str | None:
    """`sha256:hex` over the bundle's file digests (in its order) without the release statement; None if unreadable.

    This is model-signing's root digest computed without `RELEASE_NAME`: the same files give the same
    digest whatever model or version they were signed as.
    """
    statement = bundle_statement(bundle)
    try:
        resources = statement["predicate"]["resources"] if statement else None
        hasher = hashlib.sha256()
        for resource in resources or ():
            if resource["name"] != RELEASE_NAME:
                hasher.update(bytes.fromhex(resource["digest"]))
    except (KeyError, TypeError, ValueError):
        return None
    return f"sha256:{hasher.hexdigest()}" if resources else None


def _release_resource(bundle: bytes) -> dict[str, Any] | None:
    statement = bundle_statement(bundle)
    try:
        found = [r for r in statement["predicate"]["resources"] if r["name"] == RELEASE_NAME] if statement else []
    except (KeyError, TypeError):
        return None
    return found[0] if len(found) == 1 and isinstance(found[0], dict) else None


def signs_release(bundle: bytes) -> bool:
    """True when the bundle's statement lists the release statement among its signed files."""
    return _release_resource(bundle) is not None


def _file_digest(data: bytes, algorithm: str) -> str | None:
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algorithm == "blake3":
        from blake3 import blake3  # a dependency of model-signing

        return str(blake3(data).hexdigest())
    return None


def signed_release(model_dir: Path, bundle: bytes) -> Release | None:
    """The release statement of a directory whose bundle has verified; None when the bundle does not sign one.

    The bytes parsed are checked against the digest the bundle lists for them, so a statement swapped
    after verification is not read as the signed one.
    """
    path = model_dir / RELEASE_NAME
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RELEASE_BYTES:
        return None
    return listed_release(path.read_bytes(), bundle)


def listed_release(statement: bytes | None, bundle: bytes | None) -> Release | None:
    """The statement in `statement` when `bundle` lists exactly these bytes as its release statement, else None.

    Before verification (ordering a listing) this keeps a statement planted beside a legacy bundle, or
    swapped under a newer one, from deciding the order; only a verified bundle makes it the signed one.
    """
    resource = _release_resource(bundle) if bundle else None
    if resource is None or statement is None or len(statement) > MAX_RELEASE_BYTES:
        return None
    if _file_digest(statement, str(resource.get("algorithm"))) != resource.get("digest"):
        return None
    return parse_release(statement)


def mismatch(version: ModelVersion, release: Release) -> tuple[str, str] | None:
    """(reason, detail) when the signed release is not the registry entry `version`; None when it is."""
    if release.model != version.model:
        return "other_model", f"signed as model {release.model!r}, found under {version.model!r}"
    if release.version != version.version:
        return "other_version", f"signed as version {release.version!r}, found under {version.version!r}"
    if release.created != version.created:
        return ("order_mismatch", f"signed as created {release.created.isoformat()}, ordered by "
                f"{version.created.isoformat()}")
    return None
