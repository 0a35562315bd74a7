"""pytest fixtures for the embedded sandbox: `pytest_plugins = ["responder.sandbox.fixtures"]`.

* `kafka_bootstrap` (session): the broker chosen by `RESPONDER_TEST_KAFKA` (see `broker_choice`); by default
  real Apache Kafka from its Maven jars (`kafka_jvm`) when Java is present, else the embedded Tansu broker;
  `external` uses `RESPONDER_KAFKA_BOOTSTRAP`, `docker` testcontainers. The run says which one once, when it starts
  (under pytest-xdist: the controller, at the end, for every worker that started one).
* `apache_kafka_bootstrap` (session): always real Apache Kafka when Java is present (the same broker as
  `kafka_bootstrap` when that is Apache Kafka), else whatever `kafka_bootstrap` is.
* `own_apache_kafka(nodes=1, name="cluster")`: a module's own Apache Kafka node(s), for a test that kills one.
* `kafka_cluster3` (module): three Apache Kafka nodes (replication 3, min.insync.replicas 2); skipped without Java.
* `moto_server` (session): a moto server on a free 127.0.0.1 port.
* `aws`: an AwsSession (boto3, botocore retries off) on that server, reset before each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from responder.actuators.aws.session import AwsSession
from responder.sandbox.aws import SANDBOX_CREDENTIALS, AwsSandbox
from responder.sandbox.broker import Broker
from responder.sandbox.kafka_jars import KAFKA_VERSION, cache_dir, jars_cached, java_binary
from responder.sandbox.kafka_jvm import KafkaCluster

log = structlog.get_logger(__name__)
CHOICES = ("auto", "apache", "tansu", "external", "docker")
DEFAULT_AUTO = "apache"  # `auto` when Java is present (measured faster than Tansu here: docs/kafka.md)


def apache_available() -> bool:
    """Java is present and the jars are cached or Maven can fetch them."""
    return java_binary() is not None and (jars_cached() or shutil.which("mvn") is not None)


def broker_choice() -> str:
    """`RESPONDER_TEST_KAFKA` (auto|apache|tansu|external|docker); auto = external when
    `RESPONDER_KAFKA_BOOTSTRAP` is set, else the suite default (`DEFAULT_AUTO`), Tansu when Java is missing."""
    choice = os.environ.get("RESPONDER_TEST_KAFKA", "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise pytest.UsageError(f"RESPONDER_TEST_KAFKA={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "auto":
        if os.environ.get("RESPONDER_KAFKA_BOOTSTRAP"):
            return "external"
        return DEFAULT_AUTO if DEFAULT_AUTO != "apache" or apache_available() else "tansu"
    if choice == "external" and not os.environ.get("RESPONDER_KAFKA_BOOTSTRAP"):
        raise pytest.UsageError("RESPONDER_TEST_KAFKA=external needs RESPONDER_KAFKA_BOOTSTRAP=host:port")
    return choice


def describe(choice: str) -> str:
    """One line naming the broker the tests run on."""
    apache = f"Apache Kafka {KAFKA_VERSION} (KRaft, jars in {cache_dir()})"
    names = {
        "apache": apache,
        "tansu": "embedded Tansu broker",
        "external": f"external Kafka at {os.environ.get('RESPONDER_KAFKA_BOOTSTRAP')}",
        "docker": "Apache Kafka in Docker (testcontainers)",
    }
    also = f"; Apache Kafka tests: {apache}" if apache_available() else "; no Java: Apache Kafka tests use it too"
    extra = "" if choice == "apache" else also
    return f"kafka broker: {names[choice]}{extra} (RESPONDER_TEST_KAFKA=tansu|apache|external|docker)"


def announce(config: pytest.Config, choice: str) -> None:
    """Say once which broker the tests use: on the terminal (also under -q) and in the log. A pytest-xdist worker's
    terminal is not shown: it hands the line to the controller, which prints it at the end (`pytest_testnodedown`)."""
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["kafka_broker"] = describe(choice)
    else:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"\n{describe(choice)}")
    log.info("test_kafka_broker", choice=choice)


_BROKER_LINES = pytest.StashKey[set[str]]()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, on the controller as each worker finishes
def pytest_testnodedown(node: Any, error: object) -> None:
    """Keep the broker line a finished worker used (`announce`), for the controller's terminal summary."""
    line = getattr(node, "workeroutput", {}).get("kafka_broker")
    if line:
        node.config.stash.setdefault(_BROKER_LINES, set()).add(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Under pytest-xdist, the controller says which broker the workers' tests used."""
    lines: set[str] = terminalreporter.config.stash.get(_BROKER_LINES, set())
    for line in sorted(lines):
        terminalreporter.write_line(line)


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


@pytest.fixture(scope="session", name="apache_kafka")
def _apache_kafka() -> Iterator[KafkaCluster | None]:
    """One single-node Apache Kafka for the session when Java is present (started on first use), else None."""
    if broker_choice() == "external" or not apache_available():
        yield None
        return
    with KafkaCluster(1) as cluster:
        yield cluster


@pytest.fixture(scope="session", name="chosen_kafka_bootstrap")
def _chosen_kafka_bootstrap(request: pytest.FixtureRequest,
                            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker `broker_choice()` names; says which when it starts."""
    choice = broker_choice()
    announce(request.config, choice)
    if choice == "external":
        yield os.environ["RESPONDER_KAFKA_BOOTSTRAP"]
        return
    if choice == "apache":
        cluster: KafkaCluster | None = request.getfixturevalue("apache_kafka")
        if cluster is None:
            raise pytest.UsageError("RESPONDER_TEST_KAFKA=apache needs Java 17+ and Maven (or cached jars)")
        yield cluster.bootstrap()
        return
    if choice == "docker":
        docker_gen = docker_kafka()
        if docker_gen is None:
            raise pytest.UsageError("RESPONDER_TEST_KAFKA=docker: no Docker daemon answers")
        yield from docker_gen
        return
    broker = Broker(log_path=tmp_path_factory.mktemp("tansu") / "broker.log")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session", name="kafka_bootstrap")
def _kafka_bootstrap(chosen_kafka_bootstrap: str) -> str:
    """The suite's broker (`broker_choice()`); a test module can move itself to Apache Kafka with
    `kafka_bootstrap = on_apache_kafka()`."""
    return chosen_kafka_bootstrap


@pytest.fixture(scope="session", name="apache_kafka_bootstrap")
def _apache_kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """Real Apache Kafka when Java is present; otherwise (or for an external cluster) the suite's broker."""
    if broker_choice() in ("tansu", "docker"):
        cluster: KafkaCluster | None = request.getfixturevalue("apache_kafka")
        if cluster is not None:
            return cluster.bootstrap()
    value: str = request.getfixturevalue("chosen_kafka_bootstrap")
    return value


def on_apache_kafka() -> Any:
    """A module-scoped `kafka_bootstrap` on Apache Kafka (when Java is present), whatever the suite default:
    `kafka_bootstrap = on_apache_kafka()` in a test module moves it and every fixture built on it (`topics`)."""

    @pytest.fixture(scope="module", name="kafka_bootstrap")
    def _on_apache(apache_kafka_bootstrap: str) -> str:
        """This module's broker: Apache Kafka."""
        return apache_kafka_bootstrap

    return _on_apache


def own_apache_kafka(nodes: int = 1, name: str = "cluster") -> Any:
    """A module-scoped fixture `name`: Apache Kafka nodes of the requesting module's own, so that killing or stopping
    one stops no other test's broker; skipped when Java is missing. `cluster = own_apache_kafka()` in a test module."""

    @pytest.fixture(scope="module", name=name)
    def _cluster() -> Iterator[KafkaCluster]:
        """This module's own Apache Kafka nodes."""
        if not apache_available():
            pytest.skip(f"{nodes} Apache Kafka node(s) need Java 17+ and Maven (or cached jars)")
        with KafkaCluster(nodes) as cluster:
            yield cluster

    return _cluster


_kafka_cluster3 = own_apache_kafka(3, "kafka_cluster3")
"""`kafka_cluster3` (module): three Apache Kafka nodes (replication factor 3, min.insync.replicas=2)."""


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
