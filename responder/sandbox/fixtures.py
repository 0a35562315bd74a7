"""pytest fixtures for the embedded sandbox: `pytest_plugins = ["responder.sandbox.fixtures"]`.

* `kafka_bootstrap` (session): `RESPONDER_KAFKA_BOOTSTRAP` when set (an external cluster), else
  Apache Kafka in Docker via testcontainers when a Docker daemon answers, else the embedded Tansu broker.
* `moto_server` (session): a moto server on a free 127.0.0.1 port.
* `aws`: an AwsSession (boto3, botocore retries off) on that server, reset before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from responder.actuators.aws.session import AwsSession
from responder.sandbox.aws import SANDBOX_CREDENTIALS, AwsSandbox
from responder.sandbox.broker import Broker


def docker_kafka() -> Iterator[str] | None:
    """A generator yielding a testcontainers Kafka bootstrap, or None when no Docker daemon answers."""
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
    docker_gen = docker_kafka()
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
