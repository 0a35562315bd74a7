"""The embedded sandbox: a Kafka-compatible broker and a local AWS API, started by responder itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType

from responder.sandbox.aws import SANDBOX_ACCOUNT, SANDBOX_CREDENTIALS, AwsSandbox, sandbox_account
from responder.sandbox.broker import Broker, free_port, tansu_binary

DEFAULT_TOPICS = ("security.alerts", "ml.drift", "responder.deadletter", "responder.approvals",
                  "responder.approvals.requests", "responder.notifications")

__all__ = ["DEFAULT_TOPICS", "SANDBOX_ACCOUNT", "SANDBOX_CREDENTIALS", "AwsSandbox", "Broker", "Sandbox", "free_port",
           "sandbox_account", "tansu_binary"]


@dataclass
class Sandbox:
    """Broker + moto server with the default topics; a context manager."""

    topics: tuple[str, ...] = DEFAULT_TOPICS
    partitions: int = 3
    broker: Broker = field(default_factory=Broker)
    aws: AwsSandbox = field(default_factory=AwsSandbox)

    def start(self) -> Sandbox:
        """Start both and create the topics."""
        self.aws.start()
        try:
            self.broker.start()
            self.broker.create_topics(self.topics, self.partitions)
        except Exception:  # whatever failed to start, stop what did start, then re-raise
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both."""
        self.broker.stop()
        self.aws.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
