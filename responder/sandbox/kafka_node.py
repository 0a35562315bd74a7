"""One Apache Kafka node of the test cluster and its configuration: the cluster id, the extra client listeners,
each node's `server.properties` (KRaft combined mode on 127.0.0.1) and the log4j settings every node shares.

`responder.sandbox.kafka_jvm.KafkaCluster` formats, starts and stops the nodes.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess  # nosec B404 # the type of a node's JVM process only; kafka_jvm starts it

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


def server_properties(node: KafkaNode, nodes: Sequence[KafkaNode], listeners: Sequence[Listener],
                      config: Mapping[str, str]) -> str:
    """`node`'s server.properties in a cluster of `nodes`: replication follows the size, `config` wins."""
    replicas = min(3, len(nodes))
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.ports['CONTROLLER']}" for n in nodes)
    protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT"} | {x.name: x.protocol for x in listeners}
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
    for lst in listeners:
        props |= {f"listener.name.{lst.name.lower()}.{k}": v for k, v in lst.config.items()}
    props |= config
    return "".join(f"{k}={v}\n" for k, v in props.items())
