"""Real Apache Kafka for tests: the broker's Maven jars, run with `java` in KRaft combined mode.

The jars come from `kafka_jars.ensure_jars()` (Maven, cached once per machine).
`KafkaCluster(nodes=1|3)` formats storage and starts each node (broker + controller) on free
127.0.0.1 ports, waits until every node is serving, and stops them (SIGTERM, then SIGKILL).
No Kafka client library is used here: readiness is read from the broker's own log.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess  # nosec B404 # starts java/mvn with a fixed argv, never a shell
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import structlog

from responder.errors import SandboxError
from responder.sandbox.broker import _die_with_parent, free_port
from responder.sandbox.kafka_jars import KAFKA_VERSION, ensure_jars, java_binary

log = structlog.get_logger(__name__)

JAVA_OPTS = ("-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
             "-Djava.awt.headless=true")
READY_LINE = "Kafka Server started"
LOG4J = """log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.kafka.coordinator=WARN
log4j.logger.org.apache.kafka.coordinator=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.kafka.server.metadata=WARN
log4j.logger.org.apache.kafka.image=WARN
"""


def cluster_id() -> str:
    """A Kafka Uuid string (22 url-safe base64 characters, not starting with '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class Listener:
    """An extra client listener: its name, security protocol and `listener.name.<name>.*` settings."""

    name: str
    protocol: str
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass
class KafkaNode:
    """One JVM: a broker and a controller (combined mode) with its own ports and log dir."""

    node_id: int
    workdir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    log_from: int = 0  # where the current run's output starts in the log

    @property
    def log_path(self) -> Path:
        """The node's stdout/stderr (its log4j output)."""
        return self.workdir / "server.log"

    def alive(self) -> bool:
        """Whether the JVM is running."""
        return self.proc is not None and self.proc.poll() is None


class KafkaCluster:
    """`nodes` KRaft nodes in combined mode on 127.0.0.1; a context manager. Replication follows the size."""

    def __init__(
        self,
        nodes: int = 1,
        *,
        listeners: Sequence[Listener] = (),
        config: Mapping[str, str] | None = None,
        scram: Sequence[str] = (),
        workdir: Path | None = None,
        version: str = KAFKA_VERSION,
    ) -> None:
        self.size = nodes
        self.listeners = list(listeners)
        self.config = dict(config or {})
        self.scram = list(scram)  # e.g. "SCRAM-SHA-512=[name=alice,password=secret]", written at format time
        self.version = version
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="kafka-"))
        names = ["PLAINTEXT", "CONTROLLER", *(lst.name for lst in self.listeners)]
        self.nodes = [KafkaNode(i + 1, self.workdir / f"node{i + 1}", {n: free_port() for n in names})
                      for i in range(nodes)]

    def bootstrap(self, listener: str = "PLAINTEXT") -> str:
        """host:port,… of the running nodes for one listener."""
        return ",".join(f"127.0.0.1:{n.ports[listener]}" for n in self.nodes if n.alive()) or \
            ",".join(f"127.0.0.1:{n.ports[listener]}" for n in self.nodes)

    def _properties(self, node: KafkaNode) -> str:
        replicas = min(3, self.size)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.ports['CONTROLLER']}" for n in self.nodes)
        protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"} | {x.name: x.protocol for x in self.listeners}
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in node.ports.items()),
            "advertised.listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in node.ports.items()
                                             if n != "CONTROLLER"),
            "listener.security.protocol.map": ",".join(f"{n}:{p}" for n, p in protocols.items()),
            "log.dirs": str(node.workdir / "data"),
            "num.partitions": "3",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(max(1, replicas - 1)),
            "offsets.topic.replication.factor": str(replicas),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(max(1, replicas - 1)),
            "transaction.state.log.num.partitions": "5",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "500",
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "controlled.shutdown.enable": "true",
            "unclean.leader.election.enable": "false",
        }
        for lst in self.listeners:
            props |= {f"listener.name.{lst.name.lower()}.{k}": v for k, v in lst.config.items()}
        props |= self.config
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self, lib: Path, main: str, *args: str) -> list[str]:
        java = java_binary()
        if java is None:
            raise SandboxError("Apache Kafka needs Java 17+: no `java` on PATH or in $JAVA_HOME")
        extra = os.environ.get("RESPONDER_KAFKA_JAVA_OPTS", "").split()
        return [java, *JAVA_OPTS, *extra, f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                "-cp", f"{lib}/*", main, *args]

    def start(self, timeout: float = 120.0) -> str:
        """Fetch the jars when needed, format every node, start them and wait until all serve."""
        lib = ensure_jars(self.version)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j.properties").write_text(LOG4J)
        cid = cluster_id()
        for node in self.nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            (node.workdir / "server.properties").write_text(self._properties(node))
            scram = [a for s in self.scram for a in ("--add-scram", s)]
            fmt = subprocess.run(  # noqa: S603  # nosec B603 # fixed argv, no shell
                self._java(lib, "kafka.tools.StorageTool", "format", "-t", cid, "-c",
                           str(node.workdir / "server.properties"), *scram),
                capture_output=True, timeout=120, check=False,
            )
            if fmt.returncode != 0:
                out = (fmt.stdout + fmt.stderr).decode(errors="replace").strip()[-800:]
                raise SandboxError(f"kafka storage format failed for node {node.node_id}: {out}")
        try:
            for node in self.nodes:
                self.start_node(node, wait=False, lib=lib)
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                self._wait_ready(node, deadline)
        except BaseException:
            self.stop()
            raise
        log.info("apache_kafka_started", version=self.version, nodes=self.size, bootstrap=self.bootstrap())
        return self.bootstrap()

    def start_node(self, node: KafkaNode, *, wait: bool = True, lib: Path | None = None,
                   timeout: float = 120.0) -> None:
        """(Re)start one node on its ports and data (after `kill_node`)."""
        lib = lib or ensure_jars(self.version)
        node.log_from = node.log_path.stat().st_size if node.log_path.exists() else 0
        node.log_file = node.log_path.open("ab")
        node.proc = subprocess.Popen(  # noqa: S603  # nosec B603 # fixed argv, no shell
            self._java(lib, "kafka.Kafka", str(node.workdir / "server.properties")),
            stdout=node.log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        if wait:
            self._wait_ready(node, time.monotonic() + timeout)

    def _wait_ready(self, node: KafkaNode, deadline: float) -> None:
        """Until the node logs that it is serving (broker unfenced); a dead JVM is reported with its log tail."""
        while True:
            text = node.log_path.read_bytes()[node.log_from:].decode(errors="replace")
            if READY_LINE in text:
                return
            if node.proc is None or node.proc.poll() is not None:
                raise SandboxError(f"Apache Kafka node {node.node_id} exited: {text.strip()[-800:]}")
            if time.monotonic() > deadline:
                raise SandboxError(f"Apache Kafka node {node.node_id} was not ready in time: {text.strip()[-400:]}")
            time.sleep(0.1)

    def kill_node(self, node: KafkaNode) -> None:
        """SIGKILL one node (broker-failure tests)."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)
        self._close_log(node)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every node at once, SIGKILL what is still running after `timeout` s (the last nodes of a
        cluster can wait for a controller quorum that is already gone; their data is thrown away)."""
        running = [n for n in self.nodes if n.alive()]
        for started in [n.proc for n in running if n.proc is not None]:
            started.terminate()
        deadline = time.monotonic() + timeout
        for node in running:
            proc = node.proc
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.info("kafka_node_killed", node=node.node_id, after_seconds=timeout)
                proc.kill()
                proc.wait(10)
        for node in self.nodes:
            self._close_log(node)
        if self._own_workdir and not os.environ.get("RESPONDER_KAFKA_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _close_log(node: KafkaNode) -> None:
        if node.log_file is not None:
            with contextlib.suppress(OSError):
                node.log_file.close()
            node.log_file = None

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

