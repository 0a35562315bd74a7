"""The walk back: from the serving (or reported) version to the newest older version that may be served."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from responder.actuators.model.release import AFTER_MIGRATION, MIGRATE, mismatch
from responder.actuators.model.signing import Reason, Verdict, verify
from responder.actuators.model.versions import ModelStore, ModelVersion, Rejection, digest_mark
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Selection:
    """What the walk found: where it started, the chosen version (if any), and every rejection with its reason."""

    model: str
    serving: str | None
    start: str | None
    chosen: ModelVersion | None
    verdict: Verdict | None
    rejected: Sequence[Rejection] = field(default_factory=tuple)

    def refusal(self) -> str:
        """Why nothing can be switched to, naming each rejected version."""
        why = "; ".join(f"{r.version}: {r.reason}" for r in self.rejected) or "no older version registered"
        return f"no signed version of {self.model} older than {self.start or 'the served one'} qualifies ({why})"


def bound(version: ModelVersion, verdict: Verdict, legacy: bool = False, migrated: bool = False) -> Verdict:
    """A verified `verdict` stays ok only when its signed release statement is `version`'s place in the registry.

    A bundle without a release statement (signed before statements existed) is refused as
    legacy_signature unless `legacy` (the `model_accept_legacy_signatures` setting) accepts it, loudly; the
    refusal's hint is the migration's, or with `migrated` (`model_refuse_legacy_signatures`) to find its origin.
    """
    if not verdict.ok:
        return verdict
    if verdict.release is None:
        if not legacy:
            return replace(verdict, ok=False, reason=Reason.LEGACY_SIGNATURE,
                           detail=f"the signature does not name the model and version it signs: "
                                  f"{AFTER_MIGRATION if migrated else MIGRATE}")
        log.warning("model_legacy_signature_accepted", model=version.model, version=version.version)
        return replace(verdict, detail="accepted a legacy signature that does not name its model and version "
                                       "(model_accept_legacy_signatures)")
    wrong = mismatch(version, verdict.release)
    if wrong is None:
        return verdict
    return replace(verdict, ok=False, reason=Reason(wrong[0]), detail=wrong[1])


async def check(store: ModelStore, version: ModelVersion, keys: Sequence[Path], quarantined: set[str],
                *, legacy: bool = False, migrated: bool = False) -> Verdict:
    """Quarantine (by name or artifact digest), signature against the trusted keys, files, the signed release
    statement against the registry entry (`bound`), then deployability."""
    if version.version in quarantined or (version.digest and digest_mark(version.digest) in quarantined):
        return Verdict(False, Reason.QUARANTINED, "marked never to be served")
    try:
        async with store.local_copy(version) as (artifact, signature):
            verdict = await asyncio.to_thread(verify, artifact, signature, keys)
    except PermanentActuationError as exc:
        return Verdict(False, Reason.UNSAFE_PATH if exc.code == "BadKey" else Reason.MISSING_ARTIFACT, str(exc))
    except (ConnectionError, TimeoutError):
        raise  # the network, not the candidate: the step's retry policy decides
    except OSError as exc:  # a file that cannot be read or staged (a full disk too): this candidate is not served
        log.warning("model_artifact_unreadable", model=version.model, version=version.version,
                    error=type(exc).__name__)
        return Verdict(False, Reason.MISSING_ARTIFACT, f"cannot read or stage the artifact: {type(exc).__name__}: "
                                                       f"{exc}")
    if verdict.digest and digest_mark(verdict.digest) in quarantined:
        return Verdict(False, Reason.QUARANTINED, f"artifact digest {verdict.digest} is quarantined")
    verdict = bound(version, verdict, legacy, migrated)
    if not verdict.ok:
        return verdict
    problem = await store.deployable(version)
    if problem is not None:
        return Verdict(False, Reason.NOT_DEPLOYABLE, problem)
    return verdict


async def select(
    store: ModelStore, model: str, keys: Sequence[Path], start: str | None = None, serving: str | None = None,
    *, legacy: bool = False, migrated: bool = False,
) -> Selection:
    """Walk back from `start` (default: the serving version) and return the first version that passes `check`.

    Only versions strictly older than the start, and than the serving version when it is registered, are
    candidates (a start the alert names, newer than what is served or not registered at all, never makes a
    rollback serve a newer version); when neither is registered (something unregistered is being served), every
    registered version is. `serving`, when the caller has just read it, saves reading it again.
    """
    versions = await store.versions(model)
    serving = serving or await store.serving(model)
    origin = start or serving
    names = [v.version for v in versions]
    older = versions[: min((names.index(n) for n in (origin, serving) if n in names), default=len(versions))]
    # read from the start's bundle unverified, on purpose: it only ever rejects candidates (see docs/models.md)
    bad = versions[names.index(origin)].digest if origin in names else None
    quarantined = await store.quarantined(model)
    rejected: list[Rejection] = []
    for candidate in reversed(older):
        verdict = await check(store, candidate, keys, quarantined, legacy=legacy, migrated=migrated)
        if bad and bad in (candidate.digest, verdict.digest):  # the artifact rolled away from, published twice
            verdict = Verdict(False, Reason.SAME_ARTIFACT, f"the same signed artifact ({bad}) as {origin}")
        if verdict.ok:
            return Selection(model, serving, origin, candidate, verdict, tuple(rejected))
        reason = verdict.reason.value if verdict.reason else "rejected"
        rejected.append(Rejection(candidate.version, reason, verdict.detail))
        log.warning("model_version_rejected", model=model, version=candidate.version, reason=reason)
    return Selection(model, serving, origin, None, None, tuple(rejected))
