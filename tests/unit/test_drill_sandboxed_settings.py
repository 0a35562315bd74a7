"""A drill's service and intake take no setting from a production shell: only the runner's, the rest defaults."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from responder.sandbox import Sandbox
from responder.tabletop.host import ChildConfig, revealed
from responder.tabletop.models import Playbook
from responder.tabletop.runner import Scenario
from responder.tabletop.sandboxed import SandboxSettings
from responder.tabletop.webhook import intake_settings, webhook_settings
from tests.drill_kit import PAGE, drill

PRODUCTION = {
    "RESPONDER_NOTIFY_KEYS": json.dumps({"oncall": "production-secret"}),
    "RESPONDER_METRICS_PORT": "9102", "RESPONDER_METRICS_HOST": "0.0.0.0",
    "RESPONDER_FLEET_GUARD_TABLE": "responder-fleet", "RESPONDER_CHANGELOG_TOPIC": "responder.changelog",
    "RESPONDER_TIMELINE_MIRROR_TOPIC": "responder.timeline", "RESPONDER_KAFKA_SECURITY__PROTOCOL": "SSL",
    "RESPONDER_KILL_SWITCH_FILE": "/etc/responder/stop", "RESPONDER_OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
    "RESPONDER_DEFAULT_ON_FAILURE": "[]",
}


def _production_shell(tmp_path: Path, monkeypatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "responder.yaml"
    config.write_text(yaml.safe_dump({"timeline_archive": "s3://prod-audit/timeline/", "intake_port": 443,
                                      "approver_identities": {"ops": "alice"}}))
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))


def _untouched(settings: SandboxSettings) -> None:
    assert settings.notify_keys == {}
    assert (settings.metrics_port, settings.metrics_host) == (None, "127.0.0.1")
    assert (settings.fleet_guard_table, settings.changelog_topic, settings.timeline_mirror_topic) == (None,) * 3
    assert settings.kafka_security.protocol == "PLAINTEXT"
    assert (settings.kill_switch_file, settings.otel_exporter_otlp_endpoint, settings.timeline_archive) == (None,) * 3
    assert settings.approver_identities == {}


def test_a_scenarios_service_reads_nothing_from_a_production_shell(tmp_path, monkeypatch):
    """RESPONDER_* variables and RESPONDER_CONFIG do not reach the drill's service; its default is the one handed."""
    runbooks, playbook = drill(tmp_path)
    _production_shell(tmp_path, monkeypatch)
    pb = Playbook.model_validate(yaml.safe_load(playbook.read_text()))
    settings = Scenario(pb, playbook, Sandbox(), [], runbooks, tmp_path, "", default_on_failure=PAGE).settings()
    assert isinstance(settings, SandboxSettings)
    _untouched(settings)
    assert settings.default_on_failure == PAGE


def test_a_killable_scenarios_child_rebuilds_the_same_settings(tmp_path, monkeypatch):
    """The child process rebuilds the runner's settings as they were sent, not completed from its environment."""
    runbooks, playbook = drill(tmp_path)
    pb = Playbook.model_validate(yaml.safe_load(playbook.read_text()))
    sent = revealed(Scenario(pb, playbook, Sandbox(), [], runbooks, tmp_path, "").settings())
    _production_shell(tmp_path, monkeypatch)
    rebuilt = ChildConfig(settings=sent, faults=[], start=0.0, now=0.0).service_settings()
    assert isinstance(rebuilt, SandboxSettings)
    _untouched(rebuilt)


def test_a_drills_intake_reads_nothing_from_a_production_shell(tmp_path, monkeypatch):
    """The scenario's webhook intake is configured by the runner alone."""
    _production_shell(tmp_path, monkeypatch)
    settings = webhook_settings("127.0.0.1:1", "tabletop.x.alerts")
    assert isinstance(settings, SandboxSettings)
    _untouched(settings)
    assert settings.intake_port == 8080
    assert settings.intake_topic == intake_settings("127.0.0.1:1", "tabletop.x.alerts")["intake_topic"]
