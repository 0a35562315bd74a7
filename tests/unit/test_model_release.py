"""Release statements: what a signature names, legacy signatures, the digest without the statement, `models resign`."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.actuators.model.local import LocalStore
from responder.actuators.model.release import RELEASE_NAME, release_for
from responder.actuators.model.selection import bound, check
from responder.actuators.model.signing import Reason, sign, verify
from responder.actuators.model.versions import ModelVersion
from responder.cli.app import app
from responder.cli.output import EXIT_CONFIG
from responder.errors import ConfigError
from tests.modelkit import Keys, legacy_sign, make_model

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def _entry(model: str, version: str, created: datetime = WHEN) -> ModelVersion:
    return ModelVersion(model=model, version=version, location="x", signature="x.sig", digest=None, created=created)


def test_signing_writes_and_verification_returns_the_release(tmp_path, keys):
    """sign() writes the statement into the directory; a verified bundle returns it, with model, version, created."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="fraud", version="v8", created=WHEN)
    verdict = verify(model, tmp_path / "m.sig", [keys.public])
    assert verdict.ok
    assert verdict.release == release_for("fraud", "v8", WHEN)
    assert json.loads((model / RELEASE_NAME).read_text())["schema"] == "responder.model-release/v1"


def test_artifact_digest_leaves_the_statement_out(tmp_path, keys):
    """The same files signed as two versions, or without a statement, have one artifact digest."""
    model = make_model(tmp_path, "m")
    first = sign(model, keys.private, tmp_path / "a.sig", model="fraud", version="v2-rc1")
    second = sign(model, keys.private, tmp_path / "b.sig", model="fraud", version="v2")
    (model / RELEASE_NAME).unlink()
    legacy_sign(model, keys.private, tmp_path / "c.sig")
    assert first == second == verify(model, tmp_path / "c.sig", [keys.public]).digest


def test_a_statement_swapped_after_signing_is_tampering(tmp_path, keys):
    """Rewriting the signed statement (to claim another version) fails verification as tampered."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="fraud", version="v1", created=WHEN)
    (model / RELEASE_NAME).write_bytes(release_for("fraud", "v9", WHEN).encode())
    assert verify(model, tmp_path / "m.sig", [keys.public]).reason is Reason.TAMPERED


def test_bad_model_or_version_names_are_refused_at_signing(tmp_path, keys):
    """A name that could never be a registry entry is a ConfigError, before anything is signed."""
    with pytest.raises(ConfigError, match="invalid model name or version"):
        sign(make_model(tmp_path, "m"), keys.private, tmp_path / "m.sig", model="../x", version="v1")


def test_a_legacy_signature_is_refused_by_default_and_accepted_only_when_set(tmp_path, keys):
    """No statement: legacy_signature naming the migration; with the setting it verifies (logged as a warning)."""
    model = make_model(tmp_path, "m")
    legacy_sign(model, keys.private, tmp_path / "m.sig")
    verdict = verify(model, tmp_path / "m.sig", [keys.public])
    assert verdict.ok
    assert verdict.release is None
    refused = bound(_entry("fraud", "v1"), verdict)
    assert refused.reason is Reason.LEGACY_SIGNATURE
    assert "responder models resign" in refused.detail
    assert bound(_entry("fraud", "v1"), verdict, legacy=True).ok


@pytest.mark.parametrize(("entry", "reason"), [
    (_entry("churn", "v1"), Reason.OTHER_MODEL),
    (_entry("fraud", "v2"), Reason.OTHER_VERSION),
    (_entry("fraud", "v1", WHEN + timedelta(days=30)), Reason.ORDER_MISMATCH),
])
def test_a_release_that_is_not_the_registry_entry_is_refused(tmp_path, keys, entry, reason):
    """Signed as fraud v1 at WHEN: under another model, version, or order position it does not verify."""
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="fraud", version="v1", created=WHEN)
    verdict = bound(entry, verify(model, tmp_path / "m.sig", [keys.public]))
    assert verdict.reason is reason
    assert not verdict.ok
    assert bound(_entry("fraud", "v1"), verify(model, tmp_path / "m.sig", [keys.public])).ok


def _legacy_registry(tmp_path: Path, keys: Keys, *, tamper: bool = False) -> LocalStore:
    store = LocalStore(tmp_path / "registry")
    src = make_model(tmp_path / "w", "fraud-v1")
    legacy_sign(src, keys.private, src.with_name("model.sig"))
    asyncio.run(store.publish("fraud", "v1", src, src.with_name("model.sig")))
    if tamper:
        (store.root / "fraud" / "versions" / "v1" / "model" / "config.json").write_text("{}")
    return store


@pytest.fixture(name="env")
def _env(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings for the CLI: the local registry under tmp_path, trusting keys.public."""
    monkeypatch.setenv("RESPONDER_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("RESPONDER_MODEL_TRUSTED_KEYS", json.dumps([str(keys.public)]))


def test_resign_migrates_a_legacy_version_in_place(tmp_path, keys, env):
    """`models resign` gives a verified legacy version its statement; it then passes every check, same digest."""
    store = _legacy_registry(tmp_path, keys)
    before = asyncio.run(store.versions("fraud"))[0]
    assert asyncio.run(check(store, before, [keys.public], set())).reason is Reason.LEGACY_SIGNATURE
    out = CliRunner().invoke(app, ["models", "resign", "fraud", "v1", "--key", str(keys.private)])
    assert out.exit_code == 0, out.output
    after = asyncio.run(store.versions("fraud"))[0]
    verdict = asyncio.run(check(store, after, [keys.public], set()))
    assert verdict.ok
    assert verdict.release == release_for("fraud", "v1", before.created)
    assert after.digest == before.digest


def test_resign_refuses_a_legacy_version_that_does_not_verify(tmp_path, keys, env):
    """A tampered legacy version is never re-signed: a config error naming why, and its bundle is left as it was."""
    store = _legacy_registry(tmp_path, keys, tamper=True)
    bundle = store.root / "fraud" / "versions" / "v1" / "model.sig"
    original = bundle.read_bytes()
    out = CliRunner().invoke(app, ["models", "resign", "fraud", "v1", "--key", str(keys.private)])
    assert out.exit_code == EXIT_CONFIG
    assert "tampered" in out.output
    assert bundle.read_bytes() == original


def test_publish_refuses_an_artifact_signed_as_another_version(tmp_path, keys, env):
    """`models publish --version v2` of a directory signed as v1 fails, saying how to sign it, and publishes nothing."""
    src = make_model(tmp_path / "w", "m")
    sign(src, keys.private, src.with_name("model.sig"), model="fraud", version="v1")
    out = CliRunner().invoke(app, ["models", "publish", str(src), "--model", "fraud", "--version", "v2"])
    assert out.exit_code == EXIT_CONFIG
    assert "signed as fraud v1" in out.output
    assert asyncio.run(LocalStore(tmp_path / "registry").versions("fraud")) == []


def test_models_check_passes_a_legacy_served_version_with_a_warning(tmp_path, keys, env):
    """An intact legacy version is not an integrity failure: `models check` exits 0 and says to migrate it."""
    store = _legacy_registry(tmp_path, keys)
    asyncio.run(store.set_serving("fraud", asyncio.run(store.versions("fraud"))[0]))
    out = CliRunner().invoke(app, ["models", "check", "fraud", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["ok"] is True
    assert body["reason"] == "legacy_signature"


async def test_an_integrity_alert_about_an_intact_legacy_version_is_not_corroborated(tmp_path, keys):
    """only_if_unverified: the served legacy version's files verify, so nothing is rolled back or switched."""
    from responder.actuators import registry
    from responder.actuators.model.params import RollbackParams
    from tests.modelkit import NoAws, context, publish

    store = await asyncio.to_thread(_legacy_registry, tmp_path, keys)
    await publish(store, tmp_path / "w", "fraud", "v0", keys.private)  # an older-looking, newly signed version
    await store.set_serving("fraud", next(v for v in await store.versions("fraud") if v.version == "v1"))
    rollback = registry.get("model.rollback_to_last_signed")
    result = await rollback.apply(RollbackParams(model="fraud", only_if_unverified=True),
                                  context(NoAws(), str(store.root), keys))
    assert result.outputs["corroborated"] is False
    assert await store.serving("fraud") == "v1"


def test_models_list_reports_legacy_versions_whatever_the_setting(tmp_path, keys, env, monkeypatch):
    """`models list --verify` names legacy_signature even while model_accept_legacy_signatures serves them."""
    _legacy_registry(tmp_path, keys)
    monkeypatch.setenv("RESPONDER_MODEL_ACCEPT_LEGACY_SIGNATURES", "true")
    out = CliRunner().invoke(app, ["models", "list", "fraud", "--verify", "--json"])
    assert out.exit_code == 0, out.output
    assert [r["reason"] for r in json.loads(out.stdout)["versions"]] == ["legacy_signature"]


def test_resign_interrupted_after_writing_the_statement_can_be_run_again(tmp_path, keys, env):
    """A resign that wrote the statement but not the bundle (crash, S3 error) is completed by running it again."""
    store = _legacy_registry(tmp_path, keys)
    before = asyncio.run(store.versions("fraud"))[0]
    live = store.root / "fraud" / "versions" / "v1" / "model" / RELEASE_NAME
    live.write_bytes(release_for("fraud", "v1", before.created).encode())  # the first of resign's two writes
    out = CliRunner().invoke(app, ["models", "resign", "fraud", "v1", "--key", str(keys.private)])
    assert out.exit_code == 0, out.output
    after = asyncio.run(store.versions("fraud"))[0]
    assert asyncio.run(check(store, after, [keys.public], set())).ok
    assert after.digest == before.digest


def test_resign_does_not_sign_a_statement_planted_in_a_legacy_version(tmp_path, keys, env):
    """A statement planted beside a legacy bundle (claiming another version and time) is replaced, never signed."""
    store = _legacy_registry(tmp_path, keys)
    before = asyncio.run(store.versions("fraud"))[0]
    live = store.root / "fraud" / "versions" / "v1" / "model" / RELEASE_NAME
    live.write_bytes(release_for("fraud", "v9", WHEN + timedelta(days=365)).encode())
    out = CliRunner().invoke(app, ["models", "resign", "fraud", "v1", "--key", str(keys.private)])
    assert out.exit_code == 0, out.output
    verdict = asyncio.run(check(store, asyncio.run(store.versions("fraud"))[0], [keys.public], set()))
    assert verdict.release is not None
    assert (verdict.release.version, verdict.release.created) == ("v1", before.created)


def test_a_deeply_nested_bundle_is_a_bad_signature_not_a_crash(tmp_path, keys):
    """A model.sig of deeply nested JSON (or a payload of it) lists with no digest and is refused as bad_signature."""
    store = _legacy_registry(tmp_path, keys)
    deep = b"[" * 100_000 + b"]" * 100_000
    sig = store.root / "fraud" / "versions" / "v1" / "model.sig"
    for bundle in (deep, json.dumps({"dsseEnvelope": {"payload": base64.b64encode(deep).decode()}}).encode()):
        sig.write_bytes(bundle)
        [entry] = asyncio.run(store.versions("fraud"))
        assert entry.digest is None
        assert asyncio.run(check(store, entry, [keys.public], set())).reason is Reason.BAD_SIGNATURE
