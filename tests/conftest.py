"""Shared fixtures: a real broker (embedded Tansu, testcontainers' Kafka, or external) and a moto server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.actuators.aws.session import AwsSession
from responder.sandbox import SANDBOX_CREDENTIALS, AwsSandbox, Broker

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"


def _docker_kafka() -> Iterator[str] | None:
    try:
        import docker.errors
        from testcontainers.kafka import KafkaContainer
    except ImportError:
        return None
    try:
        container = KafkaContainer()  # raises at once when no Docker daemon answers
    except docker.errors.DockerException:
        return None

    def gen() -> Iterator[str]:
        with container:
            yield container.get_bootstrap_server()

    return gen()


@pytest.fixture(scope="session", name="kafka_bootstrap")
def _kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """External Kafka when RESPONDER_KAFKA_BOOTSTRAP is set, Docker Kafka when a daemon answers, else Tansu."""
    external = os.environ.get("RESPONDER_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    docker_gen = _docker_kafka()
    if docker_gen is not None:
        yield from docker_gen
        return
    broker = Broker(log_path=tmp_path_factory.mktemp("tansu") / "broker.log")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session", name="moto_server")
def _moto_server() -> Iterator[AwsSandbox]:
    """One moto server for the session, on a free 127.0.0.1 port."""
    sandbox = AwsSandbox()
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(name="aws")
def _aws(moto_server: AwsSandbox) -> AwsSession:
    """A boto3-backed AwsSession on a freshly reset moto server."""
    moto_server.reset()
    return AwsSession(endpoint_url=moto_server.endpoint_url, credentials=SANDBOX_CREDENTIALS)


@pytest.fixture(name="unique")
def _unique() -> str:
    """A short unique suffix for topic and group names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(name="runbooks_dir")
def _runbooks_dir() -> Path:
    """The repository's runbooks/."""
    return ROOT / "runbooks"


@pytest.fixture
async def topics(kafka_bootstrap: str, unique: str) -> dict[str, str]:
    """Fresh alert and dead-letter topics for one test."""
    from responder.ingest.kafka import ensure_topics

    names = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    await ensure_topics(kafka_bootstrap, list(names.values()), partitions=3)
    return names
