"""Deployment files, checked without Docker or Kubernetes: compose, Dockerfile, Helm chart, rules, dashboard."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import typer
import yaml

from responder.cli import app
from responder.settings import Settings
from tests.deploy_kit import CHART, COMPOSE, ROOT, VALUES, helm_template
from tests.metrics_kit import OTHERS, exported_series, series_read, unknown_reads

INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
NOT_SETTINGS = {"RESPONDER_CONFIG"}  # the pointer to the settings file, read before Settings


def _commands() -> set[str]:
    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def _field(env_name: str) -> str:
    return env_name.removeprefix("RESPONDER_").lower()


def _interpolate(value: Any) -> str:
    return INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def _responder_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("image") == "responder:local"}


def test_compose_runs_kafka_kraft_two_replicas_intake_and_profiles() -> None:
    """The compose file has KRaft Kafka, the topic job, moto as sandbox, two replicas, the intake, observability."""
    services = COMPOSE["services"]
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["aws"]["profiles"] == ["sandbox"]
    assert {services[s]["profiles"][0] for s in ("prometheus", "grafana")} == {"observability"}
    assert sorted(_responder_services()) == ["intake", "responder-1", "responder-2"]
    for name, svc in _responder_services().items():
        assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert svc["healthcheck"]["test"], name
        assert svc["read_only"] is True
        volume = svc["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"], name
    timelines = [svc["volumes"][0] for name, svc in _responder_services().items() if name != "intake"]
    assert len(set(timelines)) == 2  # one timeline volume per writer


@pytest.mark.parametrize("service", ["intake", "responder-1", "responder-2"])
def test_compose_environment_is_settings_the_code_defines(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every RESPONDER_* variable names a Settings field, and together they load (and build the intake)."""
    env = {k: _interpolate(v) for k, v in _responder_services()[service]["environment"].items()
           if k.startswith("RESPONDER_")}
    unknown = sorted(k for k in env if _field(k) not in Settings.model_fields)
    assert unknown == []
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    if service == "intake":
        from responder.intake import Intake
        from tests.intake_kit import FakeSender

        assert set(Intake(settings, FakeSender()).auth) >= {"splunk", "datadog", "alertmanager", "sentinel"}


def test_compose_and_docker_commands_are_real_cli_commands() -> None:
    """Compose commands, the Dockerfile's CMD and the Helm args are `responder` subcommands."""
    commands = _commands()
    for svc in _responder_services().values():
        assert svc["command"][0] in commands
    for template in (CHART / "templates").glob("*.yaml"):
        for arg in re.findall(r'args: \["(\w+)"\]', template.read_text()):
            assert arg in commands, template.name


def test_dockerfile_entrypoint_exists_and_runs_as_non_root() -> None:
    """ENTRYPOINT is the installed `responder` script, CMD a subcommand; multi-stage, non-root, HEALTHCHECK."""
    text = (ROOT / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["responder"]
    assert entry[0] in scripts
    assert cmd[0] in _commands()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.search(r"^USER (\S+)", text, re.M).group(1)  # type: ignore[union-attr]
    assert not user.startswith(("0", "root"))
    assert "HEALTHCHECK" in text
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source
    for name in re.findall(r"\b(RESPONDER_\w+)=", text):
        assert name in NOT_SETTINGS or _field(name) in Settings.model_fields, name


def test_topic_list_covers_the_default_topics() -> None:
    """deploy/topics.txt creates every topic the settings name (operator topics too); changelog and ledger compacted."""
    rows = [line.split() for line in (ROOT / "deploy" / "topics.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    topics = {name: (int(parts), config) for name, parts, config in rows}
    s = Settings()
    for name in [*s.topics, s.deadletter_topic, s.approvals_topic, s.approval_requests_topic, s.intake_topic,
                 s.operator_requests_topic, s.operator_replies_topic]:
        assert name in topics, name
    partitions, config = topics["responder.changelog"]
    assert "cleanup.policy=compact" in config
    assert "cleanup.policy=compact" in topics[f"{s.deadletter_topic}.replayed"][1]
    assert all(topics[t][0] == partitions for t in s.topics)


# ---- Helm ----------------------------------------------------------------------------------------------
ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)


def _poor_render(text: str) -> str:
    """Template actions removed (block actions) or replaced by a scalar (inline ones), for a YAML parse."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and ACTION.fullmatch(stripped):
            continue
        lines.append(ACTION.sub("x", line))
    return "\n".join(lines)


def test_helm_templates_render() -> None:
    """`helm template` renders the chart (or, without helm, every template parses once actions are elided)."""
    docs = helm_template("--set", "serviceMonitor.enabled=true", "--set", "runbooks.x\\.yaml=id: x")
    if docs is not None:
        kinds = {d["kind"] for d in docs}
        assert {"StatefulSet", "Deployment", "ConfigMap", "ServiceAccount", "PodDisruptionBudget",
                "ServiceMonitor", "NetworkPolicy", "Service"} <= kinds
        return
    for template in sorted((CHART / "templates").glob("*.yaml")):
        text = template.read_text()
        opened = len(re.findall(r"{{-?\s*(?:if|range|with|define)\b", text))
        closed = len(re.findall(r"{{-?\s*end\s*-?}}", text))
        assert opened == closed, template.name
        for doc in yaml.safe_load_all(_poor_render(text)):
            assert doc is None or "kind" in doc, template.name


def test_helm_values_referenced_exist_and_settings_are_valid() -> None:
    """Every `.Values.x.y` a template uses is in values.yaml (or a setting); `settings` load; env names are settings."""
    for template in (CHART / "templates").glob("*"):
        text = template.read_text()
        for path in re.findall(r"\.Values((?:\.\w+)+)", text):
            if path.startswith(".settings."):  # a setting the operator may give: a Settings field, maybe unset
                assert path.split(".")[2] in Settings.model_fields, f"{template.name}: .Values{path}"
                continue
            node: Any = VALUES
            for part in path.strip(".").split("."):
                assert isinstance(node, dict), f"{template.name}: .Values{path}"
                assert part in node, f"{template.name}: .Values{path}"
                node = node[part]
        for name in re.findall(r"name: (RESPONDER_\w+)", text):
            assert name in NOT_SETTINGS or _field(name) in Settings.model_fields, name
    Settings(**VALUES["settings"])


def test_helm_chart_has_probes_irsa_and_read_only_root() -> None:
    """Probes map to /healthz and /readyz, the service account carries the IRSA annotation, root is read-only."""
    text = "\n".join(t.read_text() for t in (CHART / "templates").glob("*.yaml"))
    assert "path: /healthz" in text
    assert "path: /readyz" in text
    assert "eks.amazonaws.com/role-arn" in text
    assert "volumeClaimTemplates" in text
    assert VALUES["securityContext"]["readOnlyRootFilesystem"] is True
    assert VALUES["podSecurityContext"]["runAsNonRoot"] is True


# ---- Prometheus rules and the Grafana dashboard ----------------------------------------------------------
def _rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
            for r in g["rules"]]


def test_alert_rules_read_exported_series_by_labels_they_have() -> None:
    """Each rule reads series a scrape of responder shows (or up, kube-state-metrics') by labels they have."""
    known = {**exported_series(), **OTHERS}
    used: set[str] = set()
    for rule in _rules():
        assert series_read(rule["expr"]), rule["alert"]
        assert unknown_reads(rule["expr"], known) == [], rule["alert"]
        used |= set(series_read(rule["expr"]))
    assert {"responder_consumer_lag", "responder_deadlettered_total", "responder_steps_total",
            "responder_records_total", "up", "kube_pod_container_status_restarts_total",
            "responder_approval_requests_unsent", "responder_changelog_partitions_missing",
            "responder_consumer_rebuilds_total", "responder_timeline_mirror_pending",
            "responder_timeline_mirror_overflowed", "responder_group_shared_without_fleet"} <= used


def test_dashboard_parses_and_names_exported_metrics() -> None:
    """The Grafana dashboard is JSON and every panel query reads series a scrape of responder shows, by their labels."""
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/responder.json").read_text())
    exported = exported_series()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        assert series_read(expr), expr
        assert unknown_reads(expr, exported) == [], expr


def test_compose_passes_an_empty_aws_endpoint_through() -> None:
    """RESPONDER_AWS_ENDPOINT_URL= (empty: real AWS) reaches the replicas; only an unset one means the sandbox."""
    text = (ROOT / "docker-compose.yml").read_text()
    [use] = re.findall(r"\$\{RESPONDER_AWS_ENDPOINT_URL[^}]*\}", text)
    assert use == "${RESPONDER_AWS_ENDPOINT_URL-http://aws:5000}"  # `:-` would turn an empty value into the sandbox


def test_dockerfile_installs_the_extras_the_image_needs() -> None:
    """The image installs signing (model rollback), tracing (OTLP) and msk (MSK IAM), extras pyproject defines."""
    text = (ROOT / "Dockerfile").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [installed] = re.findall(r"pip install ['\"]?\.\[([\w,]+)\]", text)
    assert {"signing", "tracing", "msk"} <= set(installed.split(","))
    assert set(installed.split(",")) <= set(extras)


def test_more_than_one_replica_runs_as_a_fleet() -> None:
    """The chart (replicas > 1) and compose (two replicas in a group) set changelog_topic, a topic topics.txt makes."""
    topics = (ROOT / "deploy" / "topics.txt").read_text().split()
    assert VALUES["replicas"] > 1
    assert VALUES["settings"]["changelog_topic"] in topics
    replicas = [svc for name, svc in _responder_services().items() if svc["command"] == ["run"]]
    assert len(replicas) > 1
    for svc in replicas:
        assert svc["environment"]["RESPONDER_CHANGELOG_TOPIC"] in topics
    statefulset = (CHART / "templates" / "statefulset.yaml").read_text()
    assert re.search(r"gt \(int \.Values\.replicas\) 1\).*changelog_topic.*\n.*fail", statefulset)  # helm refuses it
