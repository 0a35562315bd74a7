"""Apache Kafka from Maven jars: the jar cache, the node configuration, the broker choice of the fixtures, and a
failed start leaving no work directory behind."""

from __future__ import annotations

import tempfile

import pytest

from responder.errors import SandboxError
from responder.sandbox import fixtures, kafka_jars, kafka_jvm
from responder.sandbox.kafka_jvm import KafkaCluster, Listener, cluster_id


def test_fetch_without_java_succeeds_and_says_tansu(monkeypatch, capsys):
    """`make kafka-jars` on a machine without Java exits 0 and says the tests use Tansu."""
    monkeypatch.setattr(kafka_jars, "java_binary", lambda: None)
    assert kafka_jars.fetch_main() == 0
    assert "Tansu" in capsys.readouterr().out


def test_empty_cache_without_maven_is_a_clear_error(monkeypatch, tmp_path):
    """With nothing cached and no `mvn`, ensure_jars raises SandboxError naming Maven."""
    monkeypatch.setenv("RESPONDER_KAFKA_CACHE", str(tmp_path))
    monkeypatch.setattr(kafka_jars.shutil, "which", lambda name: None)
    assert not kafka_jars.jars_cached()
    with pytest.raises(SandboxError, match="mvn"):
        kafka_jars.ensure_jars()


def test_cached_jars_are_reused_without_maven(monkeypatch, tmp_path):
    """A complete cache is returned as is; Maven is not needed."""
    monkeypatch.setenv("RESPONDER_KAFKA_CACHE", str(tmp_path))
    lib = tmp_path / f"kafka-{kafka_jars.KAFKA_VERSION}" / "lib"
    lib.mkdir(parents=True)
    (lib / ".complete").write_text("x")
    monkeypatch.setattr(kafka_jars.shutil, "which", lambda name: None)
    assert kafka_jars.ensure_jars() == lib


@pytest.mark.parametrize(("nodes", "replicas", "min_isr"), [(1, "1", "1"), (3, "3", "2")])
def test_replication_follows_the_cluster_size(tmp_path, nodes, replicas, min_isr):
    """A 3-node cluster has replication factor 3 and min.insync.replicas 2; a single node 1 and 1."""
    cluster = KafkaCluster(nodes, workdir=tmp_path, listeners=[Listener("SSL", "SSL", {"ssl.client.auth": "required"})])
    props = dict(line.split("=", 1) for line in cluster._properties(cluster.nodes[0]).splitlines())
    assert props["default.replication.factor"] == replicas
    assert props["min.insync.replicas"] == min_isr
    assert len(props["controller.quorum.voters"].split(",")) == nodes
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert "SSL:SSL" in props["listener.security.protocol.map"]
    assert all(f"127.0.0.1:{port}" in props["listeners"] for port in cluster.nodes[0].ports.values())


def test_cluster_ids_are_kafka_uuids():
    """Cluster ids are 22 url-safe base64 characters that never start with '-'."""
    ids = {cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


@pytest.mark.parametrize(("value", "expected"), [("tansu", "tansu"), ("APACHE", "apache"), ("", fixtures.DEFAULT_AUTO)])
def test_broker_choice_reads_the_environment(monkeypatch, value, expected):
    """RESPONDER_TEST_KAFKA picks the broker (case-insensitive); empty means the suite default."""
    monkeypatch.delenv("RESPONDER_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("RESPONDER_TEST_KAFKA", value)
    assert fixtures.broker_choice() == expected


def test_unknown_broker_choice_is_a_usage_error(monkeypatch):
    """An unknown RESPONDER_TEST_KAFKA value stops the run naming the valid choices."""
    monkeypatch.setenv("RESPONDER_TEST_KAFKA", "redpanda")
    with pytest.raises(pytest.UsageError, match="apache, tansu"):
        fixtures.broker_choice()


def test_failed_format_removes_the_work_directory(monkeypatch, tmp_path):
    """A cluster whose storage format fails raises SandboxError with its output and removes the workdir it made."""
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'format refused'\nexit 1\n")
    java.chmod(0o755)
    monkeypatch.setattr(kafka_jvm, "ensure_jars", lambda version: tmp_path / "lib")
    monkeypatch.setattr(kafka_jvm, "java_binary", lambda: str(java))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cluster = KafkaCluster(1)
    assert cluster.workdir.parent == tmp_path
    with pytest.raises(SandboxError, match="format failed for node 1: format refused"):
        cluster.start()
    assert not cluster.workdir.exists()
