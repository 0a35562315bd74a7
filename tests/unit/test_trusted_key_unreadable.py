"""A trusted model key a replica cannot read stops it at start with one line naming the setting and the file."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import ConfigError
from responder.fleet_digest import fleet_digest
from responder.service import Service
from responder.settings import Settings


def test_the_digest_of_an_unreadable_trusted_key_is_a_config_error_naming_it(tmp_path):
    """It silently digested as `unreadable:PATH`, so the replica was refused as one that "differs"."""
    missing = tmp_path / "gone.pem"
    with pytest.raises(ConfigError, match=rf"RESPONDER_MODEL_TRUSTED_KEYS: cannot read {missing}"):
        fleet_digest([], Settings(model_trusted_keys=[missing]))


def test_a_service_whose_trusted_key_is_a_directory_is_refused_before_it_opens_anything(tmp_path):
    """The check runs without a fleet guard table too: a rollback could verify against no key at all."""
    settings = Settings(kafka_bootstrap="127.0.0.1:9", timeline_path=tmp_path / "t.jsonl",
                        model_trusted_keys=[tmp_path])
    with pytest.raises(ConfigError, match=rf"RESPONDER_MODEL_TRUSTED_KEYS: cannot read {tmp_path}"):
        Service(settings, runbooks=[])
    assert not (tmp_path / "t.jsonl").exists()  # refused before the timeline was opened


def test_run_with_a_missing_trusted_key_exits_3_with_one_line(monkeypatch, tmp_path):
    """`responder run` names the setting and the file in one red line, exit 3, no traceback."""
    missing = tmp_path / "keys" / "model.pem"
    monkeypatch.setenv("RESPONDER_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("RESPONDER_KAFKA_CONNECT_TIMEOUT", "0.2")
    monkeypatch.setenv("RESPONDER_TIMELINE_PATH", str(tmp_path / "t.jsonl"))
    monkeypatch.setenv("RESPONDER_MODEL_TRUSTED_KEYS", f'["{missing}"]')
    result = CliRunner().invoke(app, ["run", "--runbooks", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert f"RESPONDER_MODEL_TRUSTED_KEYS: cannot read {missing}" in result.output
    assert "Traceback" not in result.output
