"""Real Apache Kafka for tests: the broker's Maven jars, run with `java` in KRaft combined mode.

The jars come from `kafka_jars.ensure_jars()` (Maven, cached once per machine).
`KafkaCluster(nodes=1|3)` formats storage and starts each node (broker + controller) on free
127.0.0.1 ports, waits until every node is serving, and stops them (SIGTERM, then SIGKILL).
No Kafka client library is used here: readiness is read from the broker's own log.
A node's configuration (`server.properties`, listeners, the cluster id) is built in `kafka_node`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess  # nosec B404 # its types, constants and errors; lifeline starts the processes
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import structlog

from responder.errors import SandboxError
from responder.sandbox import leftovers, lifeline
from responder.sandbox.broker import free_port
from responder.sandbox.kafka_jars import KAFKA_VERSION, ensure_jars, java_binary
from responder.sandbox.kafka_node import LOG4J, KafkaNode, Listener, cluster_id, server_properties

log = structlog.get_logger(__name__)

JAVA_OPTS = ("-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
             "-Djava.awt.headless=true")
READY_LINE = "Kafka Server started"


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
        keep = bool(os.environ.get("RESPONDER_KAFKA_KEEP"))  # a kept workdir is not swept by a run that keeps too
        self.workdir = workdir or leftovers.make(leftovers.KAFKA_WORKDIR, sweep_first=not keep)
        names = ["PLAINTEXT", "CONTROLLER", *(lst.name for lst in self.listeners)]
        self.nodes = [KafkaNode(i + 1, self.workdir / f"node{i + 1}", {n: free_port() for n in names})
                      for i in range(nodes)]

    def bootstrap(self, listener: str = "PLAINTEXT") -> str:
        """host:port,… of the running nodes for one listener."""
        return ",".join(f"127.0.0.1:{n.ports[listener]}" for n in self.nodes if n.alive()) or \
            ",".join(f"127.0.0.1:{n.ports[listener]}" for n in self.nodes)

    def _properties(self, node: KafkaNode) -> str:
        return server_properties(node, self.nodes, self.listeners, self.config)

    def _java(self, lib: Path, main: str, *args: str) -> list[str]:
        java = java_binary()
        if java is None:
            raise SandboxError("Apache Kafka needs Java 17+: no `java` on PATH or in $JAVA_HOME")
        extra = os.environ.get("RESPONDER_KAFKA_JAVA_OPTS", "").split()
        return [java, *JAVA_OPTS, *extra, f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                "-cp", f"{lib}/*", main, *args]

    def start(self, timeout: float = 120.0) -> str:
        """Fetch the jars when needed, format every node, start them and wait until all serve; on any failure,
        stop what started (and remove a workdir of its own)."""
        try:
            lib = ensure_jars(self.version)
            self._format(lib)
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

    def _format(self, lib: Path) -> None:
        """Write the configuration and format every node's storage (one cluster id)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j.properties").write_text(LOG4J)
        cid = cluster_id()
        for node in self.nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            (node.workdir / "server.properties").write_text(self._properties(node))
            scram = [a for s in self.scram for a in ("--add-scram", s)]
            fmt = lifeline.run(
                self._java(lib, "kafka.tools.StorageTool", "format", "-t", cid, "-c",
                           str(node.workdir / "server.properties"), *scram),
                capture_output=True, timeout=120, check=False,
            )
            if fmt.returncode != 0:
                out = (fmt.stdout + fmt.stderr).decode(errors="replace").strip()[-800:]
                raise SandboxError(f"kafka storage format failed for node {node.node_id}: {out}")

    def start_node(self, node: KafkaNode, *, wait: bool = True, lib: Path | None = None,
                   timeout: float = 120.0) -> None:
        """(Re)start one node on its ports and data (after `kill_node`)."""
        lib = lib or ensure_jars(self.version)
        node.log_from = node.log_path.stat().st_size if node.log_path.exists() else 0
        node.log_file = node.log_path.open("ab")
        node.proc = lifeline.popen(  # dies with this process, from whichever thread (re)starts it
            self._java(lib, "kafka.Kafka", str(node.workdir / "server.properties")),
            stdout=node.log_file, stderr=subprocess.STDOUT,
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

