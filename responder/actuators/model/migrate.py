"""`responder models resign`: give a version signed before release statements one, after checking its old signature.

The old bundle must verify against a trusted key (so a tampered or foreign-key artifact is never
laundered), must not already carry a statement, and the new statement names the version's current
place in the registry (model, version, and the `created` it is ordered by now). A statement file the
old bundle does not sign (left by an interrupted resign, whose two writes are not one) is ignored and
replaced, so running it again completes the migration. Whoever runs it
vouches for that label: check `responder models list MODEL` first.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import structlog

from responder.actuators.model.release import RELEASE_NAME, signs_release
from responder.actuators.model.signing import SIGNATURE_NAME, Verdict, sign, verify
from responder.actuators.model.versions import ARTIFACT_DIR, ModelStore
from responder.errors import ConfigError

log = structlog.get_logger(__name__)


def _resign(artifact: Path, signature: Path | None, keys: Sequence[Path], private_key: Path, model: str,
            version: str, created: datetime, work: Path) -> tuple[Verdict, bytes, bytes]:
    copy = work / ARTIFACT_DIR
    # a statement the old bundle does not sign is left out: one written by an interrupted resign (its bundle
    # not yet replaced) or planted; the copy is what is verified and signed, so it is never vouched for
    unsigned = signature is not None and signature.is_file() and not signs_release(signature.read_bytes())
    top = str(artifact)
    shutil.copytree(artifact, copy, symlinks=True,
                    ignore=lambda d, names: [RELEASE_NAME] if unsigned and d == top and RELEASE_NAME in names else [])
    old = verify(copy, signature, keys)
    if not old.ok:
        why = old.reason.value if old.reason else "rejected"
        raise ConfigError(f"{model} {version} does not verify ({why}: {old.detail}); not re-signing it")
    if old.release is not None:
        raise ConfigError(f"{model} {version} is already signed as {old.release.model} {old.release.version}")
    bundle = work / SIGNATURE_NAME
    sign(copy, private_key, bundle, model=model, version=version, created=created)
    new = verify(copy, bundle, keys)
    if not new.ok or new.digest != old.digest:
        raise ConfigError(f"the re-signed {model} {version} does not verify as the same artifact ({new.reason})")
    return new, (copy / RELEASE_NAME).read_bytes(), bundle.read_bytes()


async def resign(store: ModelStore, model: str, version: str, private_key: Path, keys: Sequence[Path]) -> Verdict:
    """Re-sign `model` `version` in place with a release statement; ConfigError when it may not be."""
    found = [v for v in await store.versions(model) if v.version == version]
    if not found:
        raise ConfigError(f"{model} has no version {version}")
    entry = found[0]
    with tempfile.TemporaryDirectory(prefix="responder-resign-") as tmp:
        async with store.local_copy(entry) as (artifact, signature):
            verdict, statement, bundle = await asyncio.to_thread(
                _resign, artifact, signature, keys, private_key, model, version, entry.created, Path(tmp))
    await store.resigned(entry, statement, bundle)
    log.info("model_version_resigned", model=model, version=version, digest=verdict.digest)
    return verdict
