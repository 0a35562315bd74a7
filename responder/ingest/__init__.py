"""Ingest: bytes in from Kafka, poison out to the dead-letter topic."""
