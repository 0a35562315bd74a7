"""The Helm chart and the image as an operator configures them: `settings:` wins (no RESPONDER_* variable of the
image or the chart overrides it), the intake holds only its own secrets, the NetworkPolicy lets traces and a Kafka
outside the cluster through, and more than one replica needs fleet mode. With helm installed the chart is rendered;
without it the templates are read (tests/deploy_kit.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from responder.settings import Settings
from tests.deploy_kit import CHART, ROOT, VALUES, helm_refusal, helm_template, template_text

STATEFULSET = CHART / "templates" / "statefulset.yaml"
FIXED = {"metrics_host", "metrics_port", "intake_host", "intake_port", "timeline_path"}  # the pods' shape
IMAGE_SETTINGS = yaml.safe_load((ROOT / "deploy" / "image-settings.yaml").read_text())


def _objects(kind: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _settings_file(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [config] = [d for d in _objects("ConfigMap", docs) if d["metadata"]["name"].endswith("-settings")]
    loaded: dict[str, Any] = yaml.safe_load(config["data"]["settings.yaml"])
    return loaded


def _intake_env(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    [deployment] = _objects("Deployment", docs)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return list(container.get("env", [])) + [{"envFrom": e} for e in container.get("envFrom", [])]


def test_the_image_and_the_chart_set_no_setting_as_a_variable() -> None:
    """Only RESPONDER_CONFIG is a variable of the Dockerfile and the chart: no setting beats the settings file."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert set(re.findall(r"\b(RESPONDER_\w+)=", dockerfile)) == {"RESPONDER_CONFIG"}
    assert "COPY deploy/image-settings.yaml /app/settings.yaml" in dockerfile
    assert "!deploy/image-settings.yaml" in (ROOT / ".dockerignore").read_text().splitlines()  # in the build context
    Settings(**IMAGE_SETTINGS)
    for template in (CHART / "templates").glob("*.yaml"):
        plain = re.findall(r"- name: (RESPONDER_\w+)\n\s+value:", template.read_text())
        assert set(plain) <= {"RESPONDER_CONFIG"}, template.name


def test_settings_win_over_the_chart_defaults_and_keep_the_images() -> None:
    """settings: overrides the chart's defaults; the file holds every field the image's own settings file sets."""
    docs = helm_template("--set", "settings.log_format=console", "--set", "settings.model_registry=s3://m/r",
                         "--set", "settings.intake_topic=siem.alerts")
    if docs is None:  # without helm: the helper names every field of the image's file
        helpers = template_text("_helpers.tpl")
        assert all(f'"{field}"' in helpers for field in IMAGE_SETTINGS if field != "log_format"), helpers
        assert re.search(r"merge \$fixed \(deepCopy \.Values\.settings\) \$defaults", helpers)
        return
    written = _settings_file(docs)
    assert (written["log_format"], written["model_registry"], written["intake_topic"]) == \
           ("console", "s3://m/r", "siem.alerts")
    assert set(IMAGE_SETTINGS) - {"log_format"} <= set(written)
    assert {written[f] for f in ("metrics_host", "intake_host")} == {"0.0.0.0"}
    assert written["metrics_port"] == VALUES["metricsPort"]
    Settings(**written)


@pytest.mark.parametrize("field", sorted(FIXED))
def test_a_field_the_chart_fixes_is_refused_in_settings(field: str) -> None:
    """settings.metrics_port (and the other fixed fields) fails the render instead of being silently overridden."""
    helpers = template_text("_helpers.tpl")
    assert f'"{field}"' in helpers
    assert field in (CHART / "values.yaml").read_text()  # listed for the operator
    refused = helm_refusal("--set", f"settings.{field}=1")
    assert refused is None or f"settings.{field} is fixed by the chart" in refused


def test_the_intake_gets_only_its_own_secret_keys() -> None:
    """The intake never mounts the whole Secret: only its keys, so no approval or timeline signing key."""
    intake = template_text("intake.yaml")
    assert ".Values.secrets.existingSecret }}\n" not in intake.split("envFrom:")[-1]
    keys = VALUES["secrets"]["intake"]["keys"]
    assert set(keys) == {"RESPONDER_INTAKE_SOURCES", "RESPONDER_EVENT_SIGNING_KEYS"}
    for name in keys + VALUES["secrets"]["intake"]["optionalKeys"]:
        assert name.removeprefix("RESPONDER_").lower().split("__")[0] in Settings.model_fields, name
    docs = helm_template()
    if docs is None:
        assert "secretKeyRef" in intake
        return
    env = _intake_env(docs)
    assert not [e for e in env if "envFrom" in e]
    named = {e["name"] for e in env}
    assert named <= {"RESPONDER_CONFIG", *keys, *VALUES["secrets"]["intake"]["optionalKeys"]}
    assert not {"RESPONDER_APPROVAL_KEYS", "RESPONDER_TIMELINE_SIGNING_KEY"} & named
    own = _intake_env(helm_template("--set", "secrets.intake.existingSecret=intake-only") or [])
    assert [e["envFrom"]["secretRef"]["name"] for e in own if "envFrom" in e] == ["intake-only"]


def test_network_policy_lets_traces_and_kafka_outside_the_cluster_through() -> None:
    """With an OTLP endpoint the collector's port is allowed; extraEgress adds e.g. an MSK ipBlock on 9098."""
    policy = template_text("networkpolicy.yaml")
    assert ".Values.networkPolicy.otlpPort" in policy
    assert ".Values.networkPolicy.extraEgress" in policy
    assert VALUES["networkPolicy"]["otlpPort"] == 4318
    assert VALUES["networkPolicy"]["extraEgress"] == []
    docs = helm_template("--set", "settings.otel_exporter_otlp_endpoint=http://collector:4318/v1/traces",
                         "--set-json", 'networkPolicy.extraEgress=[{"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], '
                                       '"ports": [{"port": 9098, "protocol": "TCP"}]}]')
    if docs is None:
        return
    [rendered] = _objects("NetworkPolicy", docs)
    ports = {p["port"] for rule in rendered["spec"]["egress"] for p in rule.get("ports", [])}
    assert {4318, 9098} <= ports
    assert {"cidr": "10.20.0.0/16"} in [t.get("ipBlock") for rule in rendered["spec"]["egress"]
                                        for t in rule.get("to", [])]
    [default] = _objects("NetworkPolicy", helm_template() or [])
    assert 4318 not in {p["port"] for rule in default["spec"]["egress"] for p in rule.get("ports", [])}


@pytest.mark.parametrize(("setting", "guard", "said"), [
    ("settings.changelog_topic=null", "(not .Values.settings.changelog_topic)",
     "replicas > 1 needs settings.changelog_topic"),
    ("settings.kafka_manual_assignment=true", ".Values.settings.kafka_manual_assignment }}", "kafka_manual_assignment"),
])
def test_more_than_one_replica_outside_a_group_fleet_fails_the_render(setting: str, guard: str, said: str) -> None:
    """`helm template` with replicas > 1 without a changelog or with manual assignment fails; 1 replica renders."""
    refused = helm_refusal("--set", setting)
    if refused is None:  # no helm here: the guard is in the template, as the render with helm checks
        assert guard in STATEFULSET.read_text()
        return
    assert said in refused
    assert helm_template("--set", setting, "--set", "replicas=1")


def test_the_intake_takes_every_kafka_security_setting_kept_in_the_secret() -> None:
    """The intake's optional Secret keys cover kafka_security as one JSON value and as each of its field variables."""
    from responder.kafka_config import KafkaSecurity

    optional = set(VALUES["secrets"]["intake"]["optionalKeys"])
    fields = {f"RESPONDER_KAFKA_SECURITY__{f.upper()}" for f in KafkaSecurity.model_fields}
    wanted = {"RESPONDER_KAFKA_SECURITY"} | fields
    assert wanted <= optional, sorted(wanted - optional)
