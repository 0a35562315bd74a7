"""Settings that were silently accepted or escaped as a traceback are now one line naming them, exit 3."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No RESPONDER_* variable of the caller's shell leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith("RESPONDER_"):
            monkeypatch.delenv(name)


def _one_line(monkeypatch) -> str:
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize(("variable", "meant"), [
    ("RESPONDER_KILL_SWICH", "RESPONDER_KILL_SWITCH"),
    ("RESPONDER_DRYRUN", "RESPONDER_DRY_RUN"),
    ("RESPONDER_PROTECTED_ID", "RESPONDER_PROTECTED_IDS"),
])
def test_a_misspelt_variable_is_an_error_naming_the_setting(monkeypatch, variable, meant):
    """RESPONDER_KILL_SWICH=true was ignored (the kill switch stayed off); now it is one line naming the setting."""
    monkeypatch.setenv(variable, "true")
    line = _one_line(monkeypatch)
    assert line.startswith(f"✗ {variable}: not a setting")
    assert f"did you mean {meant}?" in line


@pytest.mark.parametrize("variable", [
    "RESPONDER_SERVICE_HOST", "RESPONDER_SERVICE_PORT", "RESPONDER_PORT", "RESPONDER_PORT_9102_TCP_ADDR",
    "RESPONDER_TEST_KAFKA", "RESPONDER_CONFIG_NOTE",
])
def test_variables_that_are_not_typos_are_left_alone(monkeypatch, variable):
    """Kubernetes service links (a Service named responder), the test harness's variables and unrelated names pass."""
    monkeypatch.setenv(variable, "tcp://10.0.0.1:9102")
    assert Settings().kill_switch is False


@pytest.mark.parametrize(("variable", "value"), [
    ("RESPONDER_KAFKA_BOOTSTRAP_PORT", "tcp://10.0.0.7:9092"),  # Strimzi's responder-kafka-bootstrap Service
    ("RESPONDER_TIMELINE_PORT", "tcp://[fd00::7]:8080"),  # a Service named responder-timeline
    ("RESPONDER_METRIC_PORT", "udp://10.0.0.7:9102"),
])
def test_service_links_of_other_responder_services_are_left_alone(monkeypatch, variable, value):
    """Kubernetes links every Service of the namespace: responder-kafka-bootstrap's stopped the replica with exit 3."""
    monkeypatch.setenv(variable, value)
    assert Settings().kill_switch is False


def test_a_misspelt_port_setting_holding_a_number_is_still_an_error(monkeypatch):
    """Only a tcp://host:port value makes a `…_PORT` name a service link: RESPONDER_METRIC_PORT=9102 is a typo."""
    monkeypatch.setenv("RESPONDER_METRIC_PORT", "9102")
    assert "did you mean RESPONDER_METRICS_PORT?" in _one_line(monkeypatch)


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("RESPONDER_METRICS_PORT", "70000", "less than or equal to 65535"),
    ("RESPONDER_METRICS_PORT", "-1", "greater than or equal to 0"),
    ("RESPONDER_SESSION_TIMEOUT_MS", "-5", "greater than or equal to 1000"),
    ("RESPONDER_MAX_RECORD_BYTES", "0", "greater than or equal to 1024"),
    ("RESPONDER_AWS_CALL_TIMEOUT", "0", "greater than 0"),
    ("RESPONDER_TIMELINE_LINGER_MS", "-1", "greater than or equal to 0"),
    ("RESPONDER_MODEL_DEPLOY_POLL_S", "0", "greater than 0"),
    ("RESPONDER_MODEL_DEPLOY_TIMEOUT_S", "-600", "greater than 0"),
])
def test_a_nonsense_number_is_refused(monkeypatch, variable, value, says):
    """A port out of range, a negative timeout or a zero poll interval was accepted; now it is one line, exit 3."""
    monkeypatch.setenv(variable, value)
    line = _one_line(monkeypatch)
    assert line.startswith(f"✗ {variable}=")
    assert says in line


@pytest.mark.parametrize(("text", "says"), [
    ("kill_switch: [\n", "invalid YAML"),
    ("- kill_switch\n", "not a mapping"),
    ("kill_switch: true\nkill_switch: false\n", "duplicate key 'kill_switch'"),
    ("protected_tags:\n  env: prod\n  env: production\n", "duplicate key 'env' at line 3"),  # a protection lost
    ("? [a]\n: 1\n", "invalid YAML at line 1: found unhashable key"),  # was a TypeError traceback
])
def test_a_broken_config_file_is_one_line(monkeypatch, tmp_path, text, says):
    """RESPONDER_CONFIG naming invalid YAML, a list or a file repeating a key was a traceback or silently the last."""
    config = tmp_path / "responder.yaml"
    config.write_text(text)
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))
    line = _one_line(monkeypatch)
    assert line.startswith(f"✗ RESPONDER_CONFIG='{config}'")
    assert says in line


def test_secret_in_a_broken_config_file_is_not_printed(monkeypatch, tmp_path):
    """A YAML syntax error next to a secret names the line, never the secret's text."""
    config = tmp_path / "responder.yaml"
    config.write_text('approval_keys: {"k1": "hunter2"\n')
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))
    with pytest.raises(SettingsInvalid) as caught:
        Settings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_aws_endpoint_means_real_aws(monkeypatch, value):
    """RESPONDER_AWS_ENDPOINT_URL= (empty, as compose passes it) is unset, not an endpoint boto3 refuses as invalid."""
    monkeypatch.setenv("RESPONDER_AWS_ENDPOINT_URL", value)
    assert Settings().aws_endpoint_url is None
    assert Settings(aws_endpoint_url="").aws_endpoint_url is None
