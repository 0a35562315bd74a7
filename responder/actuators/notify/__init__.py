"""Notification actuators: tell people and systems what responder did (webhook, Kafka topic)."""

from responder.actuators.notify import kafka, webhook

__all__ = ["kafka", "webhook"]
