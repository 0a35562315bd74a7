"""TLS and SASL against real Apache Kafka: listeners with mutual TLS, SASL_SSL and SASL_PLAINTEXT (SCRAM, PLAIN)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from typer.testing import CliRunner

from responder.cli.app import app
from responder.ingest.kafka import ensure_topics, publish
from responder.ingest.security import kafka_client_options
from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from responder.sandbox.fixtures import apache_available
from responder.sandbox.kafka_jvm import KafkaCluster
from responder.service import Service
from responder.settings import Settings
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for
from tests.tlskit import SCRAM_PASSWORD, SCRAM_USER, Pki, make_pki, scram_credentials, secure_listeners

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate, made for this module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure_kafka(pki: Pki) -> Iterator[KafkaCluster]:
    """One Apache Kafka node with SSL (client cert required), SASL_SSL and SASL_PLAINTEXT listeners."""
    if not apache_available():
        pytest.skip("TLS/SASL listeners need real Apache Kafka: Java 17+ and Maven (or cached jars)")
    with KafkaCluster(1, listeners=secure_listeners(pki), scram=scram_credentials()) as cluster:
        yield cluster


def _mtls(pki: Pki, tmp_path: Path) -> dict[str, Any]:
    password_file = tmp_path / "key-password"
    password_file.write_text(pki.client_key_password + "\n")
    return {"protocol": "SSL", "ssl_cafile": pki.ca, "ssl_certfile": pki.client_cert, "ssl_keyfile": pki.client_key,
            "ssl_key_password_file": password_file}


def _scram(pki: Pki, tmp_path: Path, password: str = SCRAM_PASSWORD) -> dict[str, Any]:
    password_file = tmp_path / "sasl-password"
    password_file.write_text(password)
    return {"protocol": "SASL_SSL", "ssl_cafile": pki.ca, "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": SCRAM_USER, "sasl_password_file": password_file}


async def _topics(bootstrap: str, options: dict[str, Any], unique: str) -> dict[str, str]:
    names = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}", "mirror": f"mirror-{unique}"}
    await ensure_topics(bootstrap, list(names.values()), partitions=3, options=options)
    return names


async def _read(bootstrap: str, topic: str, options: dict[str, Any], count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                **options)
    await consumer.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=300)
                got += [m for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    return got


async def _seed(aws: Any) -> str:
    await aws.call("iam", "create_user", UserName="ml-training")
    created = await aws.call("iam", "create_access_key", UserName="ml-training")
    return str(created["AccessKey"]["AccessKeyId"])


async def _status(aws: Any, key_id: str) -> str:
    listed = await aws.call("iam", "list_access_keys", UserName="ml-training")
    return str(next(k["Status"] for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key_id))


async def test_service_over_mutual_tls_acts_on_a_finding(secure_kafka, pki, aws, unique, tmp_path, runbooks_dir):
    """Over SSL with a client certificate (encrypted key, password from a file) the service consumes and acts."""
    bootstrap = secure_kafka.bootstrap("SSL")
    settings = make_settings(bootstrap, aws, {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}, unique,
                             tmp_path / "t.jsonl", runbooks_dir, kafka_security=_mtls(pki, tmp_path))
    options = kafka_client_options(settings)
    topics = await _topics(bootstrap, options, unique)
    key = await _seed(aws)
    service = Service(settings)
    async with running(service):
        await publish(bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode(),
                      options=options)
        await wait_for(lambda: bool(service.engine.state.results()))
    assert await _status(aws, key) == "Inactive"


async def test_service_over_sasl_ssl_scram_acts_deadletters_and_mirrors(secure_kafka, pki, aws, unique, tmp_path,
                                                                       runbooks_dir):
    """Over SASL_SSL with SCRAM-SHA-512 every client works: ingest acts, the dead-letter producer and mirror send."""
    bootstrap = secure_kafka.bootstrap("SASL_SSL")
    names = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    settings = make_settings(bootstrap, aws, names, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_security=_scram(pki, tmp_path), timeline_mirror_topic=f"mirror-{unique}")
    options = kafka_client_options(settings)
    topics = await _topics(bootstrap, options, unique)
    key = await _seed(aws)
    service = Service(settings)
    async with running(service):
        await publish(bootstrap, topics["alerts"], [b"{not json", envelope_bytes(guardduty_finding(key))],
                      key=key.encode(), options=options)
        await wait_for(lambda: bool(service.engine.state.results()))
    assert await _status(aws, key) == "Inactive"
    [dead] = await _read(bootstrap, topics["deadletter"], options, 1)
    assert dead.value == b"{not json"
    assert await _read(bootstrap, topics["mirror"], options, 4)


async def test_events_publish_over_sasl_plaintext_plain(secure_kafka, unique):
    """`responder events publish` authenticates with SASL PLAIN from the environment."""
    bootstrap = secure_kafka.bootstrap("SASL_PLAINTEXT")
    env = {"RESPONDER_KAFKA_SECURITY__PROTOCOL": "SASL_PLAINTEXT", "RESPONDER_KAFKA_SECURITY__SASL_MECHANISM": "PLAIN",
           "RESPONDER_KAFKA_SECURITY__SASL_USERNAME": SCRAM_USER,
           "RESPONDER_KAFKA_SECURITY__SASL_PASSWORD": SCRAM_PASSWORD}
    event = ROOT / "tests" / "fixtures" / "events" / "drift_detected.json"
    args = ["events", "publish", "--topic", f"plain-{unique}", "--bootstrap", bootstrap, str(event)]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    options = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
               "sasl_plain_username": SCRAM_USER, "sasl_plain_password": SCRAM_PASSWORD}
    [record] = await _read(bootstrap, f"plain-{unique}", options, 1)
    assert json.loads(record.value) == json.loads(event.read_bytes())


def _run(env: dict[str, str], tmp_path: Path, moto_url: str) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")}
    full = {**base, "RESPONDER_TIMELINE_PATH": str(tmp_path / "t.jsonl"), "RESPONDER_AWS_ENDPOINT_URL": moto_url,
            "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
            "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
            "RESPONDER_LOG_LEVEL": "error", **env}
    return lifeline.run([sys.executable, "-m", "responder", "run"], cwd=ROOT, env=full, capture_output=True,
                        timeout=90, check=False)


def _one_line_exit_3(proc: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """The process exited 3 and printed exactly one line, containing every needle; returns it."""
    lines = [line for line in (proc.stdout + proc.stderr).decode().splitlines() if line.strip()]
    assert proc.returncode == 3, lines
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_wrong_password_is_one_line_and_exit_3(secure_kafka, pki, moto_server, tmp_path):
    """A wrong SCRAM password stops `responder run` with exit 3 and one line naming the cause, not the password."""
    env = {"RESPONDER_KAFKA_BOOTSTRAP": secure_kafka.bootstrap("SASL_SSL"),
           "RESPONDER_KAFKA_SECURITY__PROTOCOL": "SASL_SSL", "RESPONDER_KAFKA_SECURITY__SSL_CAFILE": str(pki.ca),
           "RESPONDER_KAFKA_SECURITY__SASL_MECHANISM": "SCRAM-SHA-512",
           "RESPONDER_KAFKA_SECURITY__SASL_USERNAME": SCRAM_USER,
           "RESPONDER_KAFKA_SECURITY__SASL_PASSWORD": "not-the-password"}
    line = _one_line_exit_3(_run(env, tmp_path, moto_server.endpoint_url), "authentication failed", "SCRAM-SHA-512")
    assert "not-the-password" not in line


def test_untrusted_ca_is_one_line_and_exit_3(secure_kafka, pki, moto_server, tmp_path):
    """A broker certificate not signed by ssl_cafile stops `responder run` with exit 3 and one line."""
    env = {"RESPONDER_KAFKA_BOOTSTRAP": secure_kafka.bootstrap("SSL"),
           "RESPONDER_KAFKA_SECURITY": Settings(kafka_security={**_mtls(pki, tmp_path), "ssl_cafile": pki.rogue_ca})
           .kafka_security.model_dump_json()}
    _one_line_exit_3(_run(env, tmp_path, moto_server.endpoint_url), "not trusted", "ssl_cafile")
