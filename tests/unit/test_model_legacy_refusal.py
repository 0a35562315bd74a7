"""model_refuse_legacy_signatures: after `models resign`, integrity checks fail on a legacy signature."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.versions import ModelConfig
from responder.cli.app import app
from responder.errors import ConfigError, PermanentActuationError
from responder.settings import Settings
from tests.modelkit import Keys, NoAws, legacy_sign, make_model, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")


async def _migrated_with_legacy_served(tmp_path: Path, keys: Keys) -> LocalStore:
    """v1 and v2 signed with statements, v2 served; then an old legacy-signed artifact written over v2's files."""
    store = LocalStore(tmp_path / "registry")
    for v in ("v1", "v2"):
        await publish(store, tmp_path / "w", "fraud", v, keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])
    old = make_model(tmp_path / "old", "fraud-v0-weights")
    legacy_sign(old, keys.private, old.with_name("model.sig"))
    served = store.root / "fraud" / "versions" / "v2"
    shutil.rmtree(served / "model")
    shutil.copytree(old, served / "model")
    shutil.copyfile(old.with_name("model.sig"), served / "model.sig")
    return store


@pytest.fixture(name="env")
def _env(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings for the CLI: the local registry under tmp_path, trusting keys.public."""
    monkeypatch.setenv("RESPONDER_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("RESPONDER_MODEL_TRUSTED_KEYS", json.dumps([str(keys.public)]))


def test_models_check_fails_on_a_legacy_artifact_under_the_served_version_with_the_setting(
        tmp_path, keys, env, monkeypatch):
    """With model_refuse_legacy_signatures, a legacy artifact planted under the served version exits 1 as legacy."""
    asyncio.run(_migrated_with_legacy_served(tmp_path, keys))
    monkeypatch.setenv("RESPONDER_MODEL_REFUSE_LEGACY_SIGNATURES", "true")
    out = CliRunner().invoke(app, ["models", "check", "fraud", "--json"])
    assert out.exit_code == 1, out.output
    body = json.loads(out.stdout)
    assert (body["ok"], body["reason"], body["serving"]) == (False, "legacy_signature", "v2")
    assert "find where this artifact came from" in body["detail"]


def test_models_check_accepts_the_same_legacy_artifact_with_a_warning_without_the_setting(tmp_path, keys, env):
    """Without the setting the same planted legacy artifact passes `models check` (exit 0), reported as legacy."""
    asyncio.run(_migrated_with_legacy_served(tmp_path, keys))
    out = CliRunner().invoke(app, ["models", "check", "fraud", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert (body["ok"], body["reason"]) == (True, "legacy_signature")


@pytest.mark.parametrize(("refuse", "corroborated", "served"), [(True, True, "v1"), (False, False, "v2")])
async def test_an_integrity_alert_about_a_legacy_served_version_is_corroborated_only_with_the_setting(
        tmp_path, keys, refuse, corroborated, served):
    """only_if_unverified: refuse corroborates the alert and rolls back to v1; the default leaves v2 served."""
    store = await _migrated_with_legacy_served(tmp_path, keys)
    config = ModelConfig(registry=str(store.root), trusted_keys=(keys.public,), refuse_legacy=refuse)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", only_if_unverified=True),
                                  ActuationContext(aws=NoAws(), models=config))
    assert result.outputs["corroborated"] is corroborated
    assert await store.serving("fraud") == served


@pytest.mark.parametrize("from_version", [None, "v2"])
async def test_an_uncorroborated_integrity_alert_verifies_as_settled(tmp_path, keys, from_version):
    """An uncorroborated integrity alert under only_if_unverified verifies as settled, so it is not escalated."""
    store = await _migrated_with_legacy_served(tmp_path, keys)
    ctx = ActuationContext(aws=NoAws(), models=ModelConfig(registry=str(store.root), trusted_keys=(keys.public,)))
    p = RollbackParams(model="fraud", only_if_unverified=True, from_version=from_version)
    result = await ROLLBACK.apply(p, ctx)
    assert result.outputs["corroborated"] is False
    assert await ROLLBACK.verify(p, ctx) is True


async def test_a_corroborated_alert_with_nothing_switched_yet_does_not_verify(tmp_path, keys):
    """With model_refuse_legacy_signatures the same alert is corroborated: before the rollback, verify() is false."""
    store = await _migrated_with_legacy_served(tmp_path, keys)
    config = ModelConfig(registry=str(store.root), trusted_keys=(keys.public,), refuse_legacy=True)
    p = RollbackParams(model="fraud", only_if_unverified=True, from_version="v2")
    assert await ROLLBACK.verify(p, ActuationContext(aws=NoAws(), models=config)) is False


def test_refusing_and_accepting_legacy_signatures_at_once_is_one_line_config_error():
    """Both model_accept_ and model_refuse_legacy_signatures set: a ConfigError of one line naming the setting."""
    with pytest.raises(ConfigError) as caught:
        Settings(model_accept_legacy_signatures=True, model_refuse_legacy_signatures=True)
    text = str(caught.value)
    assert "model_refuse_legacy_signatures" in text.lower() or "MODEL_REFUSE" in text
    assert len(text.strip().splitlines()) == 1


def test_refuse_legacy_signatures_reaches_the_model_config():
    """The setting is carried into ModelConfig (what `models check` and the actuators read)."""
    from responder.actuators.model import config_from

    assert config_from(Settings(model_refuse_legacy_signatures=True)).refuse_legacy is True
    assert config_from(Settings()).refuse_legacy is False


def test_both_legacy_settings_make_a_command_exit_3_with_one_line(monkeypatch):
    """`models check` with accept and refuse both set: exit 3, one stderr line naming the refuse setting."""
    monkeypatch.setenv("RESPONDER_MODEL_ACCEPT_LEGACY_SIGNATURES", "true")
    monkeypatch.setenv("RESPONDER_MODEL_REFUSE_LEGACY_SIGNATURES", "true")
    out = CliRunner().invoke(app, ["models", "check", "fraud"])
    assert out.exit_code == 3
    [line] = out.stderr.strip().splitlines()
    assert "RESPONDER_MODEL_REFUSE_LEGACY_SIGNATURES" in line


@pytest.mark.parametrize(("refuse", "hint"), [(True, "find where this artifact came from"),
                                              (False, "model_accept_legacy_signatures while migrating")])
async def test_a_refused_legacy_version_names_the_hint_that_fits_the_settings(tmp_path, keys, refuse, hint):
    """After the migration (refuse) a legacy refusal no longer suggests the accept setting the config would reject."""
    store = await _migrated_with_legacy_served(tmp_path, keys)
    config = ModelConfig(registry=str(store.root), trusted_keys=(keys.public,), refuse_legacy=refuse)
    switch = registry.get("model.switch_version")
    with pytest.raises(PermanentActuationError, match="legacy_signature") as caught:
        await switch.apply(switch.params.model_validate({"model": "fraud", "version": "v2", "reason": "operator"}),
                           ActuationContext(aws=NoAws(), models=config))
    assert hint in str(caught.value)
    assert refuse is ("model_accept_legacy_signatures" not in str(caught.value))
