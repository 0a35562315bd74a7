"""Bad settings are one line each naming the variable, the problem and an example, with exit 3."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.sandbox import lifeline
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("RESPONDER_DRY_RUN", "maybe", "valid boolean"),
    ("RESPONDER_METRICS_PORT", "abc", "valid integer"),
    ("RESPONDER_GUARD_QUOTAS", "max=5", "valid dictionary"),
    ("RESPONDER_APPROVAL_KEYS", "not-json", "not a JSON object"),
    ("RESPONDER_LOG_FORMAT", "xml", "'json' or 'console'"),
    ("RESPONDER_KAFKA_COMMIT_INTERVAL_MS", "-5", "greater than or equal to 0"),
    ("RESPONDER_MAX_BATCH", "0", "greater than or equal to 1"),
    ("RESPONDER_AWS_ACCOUNT_ID", "123456789012 ", "should match pattern"),
])
def test_a_bad_value_is_one_line_with_an_example_and_exit_3(monkeypatch, variable, value, says):
    """The CLI prints one stderr line naming the variable, why the value is wrong and an example; exit 3."""
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"✗ {variable}=")
    assert says in lines[0]
    assert f"(example: {variable}=" in lines[0]
    assert "Traceback" not in result.output


def test_secrets_are_not_echoed(monkeypatch):
    """A bad secret value is named by its variable but never printed."""
    monkeypatch.setenv("RESPONDER_APPROVAL_KEYS", "hunter2")
    with pytest.raises(SettingsInvalid) as caught:
        Settings()
    assert "hunter2" not in str(caught.value)


def test_a_list_setting_takes_comma_separated_values(monkeypatch):
    """RESPONDER_TOPICS=security.alerts (not a JSON list) is a one-topic list; a,b is two; JSON still works."""
    monkeypatch.setenv("RESPONDER_TOPICS", "security.alerts")
    assert Settings().topics == ["security.alerts"]
    monkeypatch.setenv("RESPONDER_TOPICS", "security.alerts, ml.drift")
    assert Settings().topics == ["security.alerts", "ml.drift"]
    monkeypatch.setenv("RESPONDER_TOPICS", '["a"]')
    assert Settings().topics == ["a"]


def test_a_missing_config_file_is_an_error(monkeypatch, tmp_path):
    """RESPONDER_CONFIG naming a file that does not exist is an error, not silently ignored."""
    monkeypatch.setenv("RESPONDER_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsInvalid, match=r"RESPONDER_CONFIG=.*nope\.yaml.*no such file"):
        Settings()


def test_a_bad_key_in_the_config_file_names_the_file(monkeypatch, tmp_path):
    """A wrong value in the YAML file is reported as FILE: key, not as an environment variable."""
    config = tmp_path / "responder.yaml"
    config.write_text("topics: 5\n")
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))
    with pytest.raises(SettingsInvalid, match=rf"^{config}: topics='5': input should be a valid list"):
        Settings()


def test_run_with_a_bad_setting_exits_3_without_a_traceback(tmp_path):
    """`responder run` as a process: exit 3, one line on stderr, no pydantic traceback."""
    env = {"PATH": "/usr/bin:/bin", "RESPONDER_METRICS_PORT": "abc", "RESPONDER_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    proc = lifeline.run([sys.executable, "-m", "responder", "run"], cwd=ROOT, env=env, capture_output=True,
                        timeout=60, check=False)
    assert proc.returncode == 3
    assert proc.stderr.decode().strip().splitlines() == [
        "✗ RESPONDER_METRICS_PORT='abc': input should be a valid integer, unable to parse string as an integer "
        "(example: RESPONDER_METRICS_PORT=9102)"]


def test_a_nested_model_set_by_its_field_variables_is_named_by_them_not_the_config_file(monkeypatch, tmp_path):
    """A kafka_security error set through RESPONDER_KAFKA_SECURITY__* names those variables, not RESPONDER_CONFIG."""
    config = tmp_path / "responder.yaml"
    config.write_text("kafka_bootstrap: kafka:9092\n")
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))
    monkeypatch.setenv("RESPONDER_KAFKA_SECURITY__PROTOCOL", "SASL_SSL")
    with pytest.raises(SettingsInvalid, match=r"^RESPONDER_KAFKA_SECURITY__PROTOCOL: kafka_security=<hidden>: "
                                              r"value error, kafka_security\.sasl_mechanism is required") as caught:
        Settings()
    assert str(config) not in str(caught.value)
    monkeypatch.setenv("responder_kafka_security__sasl_mechanism", "SCRAM-SHA-256")  # lower case: both named
    with pytest.raises(SettingsInvalid, match=r"^RESPONDER_KAFKA_SECURITY__PROTOCOL, "
                                              r"RESPONDER_KAFKA_SECURITY__SASL_MECHANISM: kafka_security"):
        Settings()


@pytest.mark.parametrize(("args", "code"), [
    (["runbooks", "validate"], 3), (["iam-policy"], 3),
    (["actuators", "list"], 0), (["events", "formats"], 0), (["timeline", "keygen"], 0), (["docs", "--check"], 0),
])
def test_configuration_md_says_which_commands_a_bad_setting_stops(monkeypatch, args, code):
    """configuration.md lists a command as stopped (exit 3) by a bad setting only if it reads settings, else as not."""
    text = " ".join((ROOT / "docs" / "configuration.md").read_text().split())
    paragraph = text[text.index("A bad setting stops"):]
    reads, reads_none = paragraph.split("Commands that read no setting", 1)
    named = f"`{' '.join(a for a in args if not a.startswith('-'))}`"
    assert named in (reads if code == 3 else reads_none[:reads_none.index(".")])
    monkeypatch.setenv("RESPONDER_METRICS_PORT", "70000")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output


def test_a_nested_model_merged_from_the_config_file_and_its_field_variables_names_both(monkeypatch, tmp_path):
    """kafka_security merged from RESPONDER_CONFIG and RESPONDER_KAFKA_SECURITY__* variables: an error names both."""
    config = tmp_path / "responder.yaml"
    config.write_text("kafka_bootstrap: kafka:9092\nkafka_security: {protocol: SSL}\n")
    monkeypatch.setenv("RESPONDER_CONFIG", str(config))
    monkeypatch.setenv("RESPONDER_KAFKA_SECURITY__SASL_MECHANISM", "PLAIN")
    with pytest.raises(SettingsInvalid) as caught:
        Settings()
    assert str(caught.value).startswith(
        f"RESPONDER_KAFKA_SECURITY__SASL_MECHANISM; {config}: kafka_security=<hidden>: value error, "
        "kafka_security.sasl_mechanism=PLAIN needs protocol SASL_SSL or SASL_PLAINTEXT, not SSL"), caught.value
