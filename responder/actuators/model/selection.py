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
    bound: str | None = None  # the version whose place bounds the candidates (None: every registered one, or none)
    unplaced: str | None = None  # why the walk did not start: no trustworthy place to start from

    def refusal(self) -> str:
        """Why nothing can be switched to: the bound the walk used, naming each rejected version."""
        if self.unplaced:
            return self.unplaced
        why = "; ".join(f"{r.version}: {r.reason}" for r in self.rejected) or "no older version registered"
        return f"no signed version of {self.model} older than {self.bound or 'the served one'} qualifies ({why})"


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
    verdict = await attested(store, version, keys, legacy=legacy, migrated=migrated, quarantined=quarantined)
    if not verdict.ok:
        return verdict
    problem = await store.deployable(version)
    if problem is not None:
        return Verdict(False, Reason.NOT_DEPLOYABLE, problem)
    return verdict


async def attested(store: ModelStore, version: ModelVersion, keys: Sequence[Path], *, legacy: bool = False,
                   migrated: bool = False, quarantined: set[str] | None = None) -> Verdict:
    """Whether `version`'s files match its bundle, signed by a trusted key, whose release statement is `version`'s
    name and place (`bound`): only then are its artifact digest and its place in the order facts, not claims."""
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
    if quarantined and verdict.digest and digest_mark(verdict.digest) in quarantined:
        return Verdict(False, Reason.QUARANTINED, f"artifact digest {verdict.digest} is quarantined")
    return bound(version, verdict, legacy, migrated)


async def select(
    store: ModelStore, model: str, keys: Sequence[Path], start: str | None = None, serving: str | None = None,
    *, legacy: bool = False, migrated: bool = False,
) -> Selection:
    """Walk back from `start` (default: the serving version) and return the first version that passes `check`.

    Only versions strictly older than the start, and than the serving version when it is registered, are
    candidates: a start the alert names, newer than what is served, never makes a rollback serve a newer version.
    The walk is refused (`unplaced`) when a registered start is newer than a served version that does not verify
    (its place, its version.json's `created`, is a claim by whoever wrote it), and when an unregistered start names
    neither what is served nor a registered version; when the start is the unregistered version served, every
    registered version is a candidate. `serving`, when the caller has just read it, saves reading it again.
    """
    versions = await store.versions(model)
    serving = serving or await store.serving(model)
    origin = start or serving
    names = [v.version for v in versions]
    limit, by = (names.index(origin), origin) if origin in names else (len(versions), None)
    if serving in names and serving != origin and names.index(serving) < limit:
        if origin in names and not (await attested(store, versions[names.index(serving)], keys, legacy=legacy,
                                                   migrated=migrated)).ok:
            return Selection(model, serving, origin, None, None, unplaced=(
                f"{serving} (served) does not verify, so its place before {origin} is only what its version.json "
                f"claims: refusing rather than walk back from either (from {origin} could serve a version newer "
                f"than {serving}, never deployed; from {serving} could leave none)"))
        limit, by = names.index(serving), serving
    if by is None and origin != serving:  # an alert's unregistered start, and nothing registered is served
        return Selection(model, serving, origin, None, None, unplaced=(
            f"{origin} is not a registered version of {model} and the version served ({serving or 'none'}) is not "
            "registered either: refusing rather than serve the newest signed version, which may never have been "
            "deployed"))
    older = versions[:limit]
    # read from the start's bundle unverified, on purpose: it only ever rejects candidates (see docs/models.md)
    bad = versions[names.index(origin)].digest if origin in names else None
    quarantined = await store.quarantined(model)
    rejected: list[Rejection] = []
    for candidate in reversed(older):
        verdict = await check(store, candidate, keys, quarantined, legacy=legacy, migrated=migrated)
        if bad and bad in (candidate.digest, verdict.digest):  # the artifact rolled away from, published twice
            verdict = Verdict(False, Reason.SAME_ARTIFACT, f"the same signed artifact ({bad}) as {origin}")
        if verdict.ok:
            return Selection(model, serving, origin, candidate, verdict, tuple(rejected), by)
        reason = verdict.reason.value if verdict.reason else "rejected"
        rejected.append(Rejection(candidate.version, reason, verdict.detail))
        log.warning("model_version_rejected", model=model, version=candidate.version, reason=reason)
    return Selection(model, serving, origin, None, None, tuple(rejected), by)
