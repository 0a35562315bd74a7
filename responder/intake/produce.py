"""Producing an accepted request's records: signing headers, the format checks, and the send loop.

Every record is sent even when one of them is too large for Kafka (a retry cannot succeed for that one, so
the rest must not wait on it): the answer is then `413` naming the records refused, the others acknowledged.
A broker failure stops at once with `503`: the retry sends only what was not acknowledged.
"""

from __future__ import annotations

from typing import Protocol

import orjson

from responder.auth import signed_headers
from responder.errors import BrokerUnavailable, RecordTooLarge
from responder.intake.auth import Caller
from responder.intake.deliveries import Deliveries
from responder.intake.metrics import IntakeMetrics
from responder.intake.problems import Problem
from responder.intake.records import Record
from responder.models.event import Event
from responder.normalise import decoders
from responder.settings import Settings

RETRY_AFTER_S = 5
SOURCE_HEADER = "responder-intake-source"
AUTH_KEY_HEADER = "responder-intake-auth-key"


class Sender(Protocol):
    """What the intake needs from a producer (responder.ingest.producer.AckedProducer in production)."""

    @property
    def connected(self) -> bool: ...

    async def start(self) -> None: ...

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]: ...

    async def stop(self) -> None: ...


def check_pinned(settings: Settings, caller: Caller, events: list[Event]) -> None:
    """403 when the intake would sign what an authenticated source without `format` sent, and it matters.

    The intake signs what any authenticated source sends with one key: without this, a Datadog token could
    have a forged GuardDuty finding signed (hole 5). A source whose `format` is set decodes with that decoder
    only, here and (`check_decoders` refuses any record it would not) in `responder run`. When `require_signature`
    holds `*` or the source's target topic, every signed record counts, so every authenticated source must pin
    `format`; otherwise only the event sources it names are guarded.
    """
    source = settings.intake_sources[caller.source]
    if caller.key_id is None or source.format is not None:
        return
    require = set(settings.require_signature)
    topic = source.topic or settings.intake_topic
    fix = f"set intake_sources.{caller.source}.format"
    if "*" in require or topic in require:
        what = "'*'" if "*" in require else f"topic {topic!r}"
        raise Problem(403, "format-not-pinned", f"require_signature holds {what}: the intake signs records "
                      f"there only from a source that pins its format: {fix}")
    guarded = sorted({e.source for e in events} & require)
    if guarded:
        raise Problem(403, "format-not-pinned", f"{', '.join(guarded)} requires a signature (require_signature); "
                      f"the intake signs it only from a source that pins it: {fix}")


def check_decoders(settings: Settings, source: str, records: list[Record]) -> None:
    """422 format-mismatch unless every reader of a record's bytes decodes them with the decoder the intake used.

    The signature covers the value bytes only, not the topic or a format: `responder run` decodes them with its
    topic's `topic_formats`, else by shape, and so does anything reading a copy (another topic, `deadletter replay
    --topic`, a consumer without the pin). A body two shape tests accept (a GuardDuty finding with Splunk's `sid` and
    `search_name` added) would be Splunk here and a signed GuardDuty finding there. So each record, on the bytes
    produced (each element of an array on its own, as `responder run` decodes it), must decode by shape (no format
    given) with the intake's decoder and, when `topic_formats` pins the target topic, with that pin too; a decoder
    the pin only forced (its shape test failing) never matches by shape. Otherwise nothing is produced.
    """
    pinned = settings.intake_sources[source].format
    topic = settings.intake_sources[source].topic or settings.intake_topic
    downstream = settings.topic_formats.get(topic)
    how = f"intake_sources.{source}.format = {pinned!r}" if pinned is not None else "by shape"
    for n, record in enumerate(records, 1):
        doc = orjson.loads(record.value)
        ours = decoders(doc, pinned)
        readers = [("by shape (no format)", decoders(doc) if pinned is not None else ours)]
        if downstream is not None:
            readers.append((f"with topic_formats[{topic!r}] = {downstream!r}", decoders(doc, downstream)))
        for run, theirs in readers:
            if ours == theirs:
                continue
            i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
            part = f" (element {i + 1} of {len(ours)})" if isinstance(doc, list) else ""
            raise Problem(422, "format-mismatch", f"record {n}{part} decodes here as {_named(ours[i])} ({how}), but "
                          f"a reader {run} would decode it as {_named(theirs[i])}: refused, nothing produced "
                          "(the intake signs only bytes every reader decodes as it did)")


def _named(fmt: str | None) -> str:
    return repr(fmt) if fmt is not None else "no format (unknown shape)"


class RecordProducer:
    """Sends records with their headers (signed for an authenticated caller), each delivery key once."""

    def __init__(self, settings: Settings, sender: Sender, deliveries: Deliveries, metrics: IntakeMetrics,
                 signing: tuple[str, bytes] | None) -> None:
        self.settings = settings
        self.sender = sender
        self.deliveries = deliveries
        self.metrics = metrics
        self.signing = signing

    def headers(self, record: Record, caller: Caller, trace: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """The record's Kafka headers: the intake source, the trace context, the auth key and the signature."""
        headers = [(SOURCE_HEADER, caller.source.encode()), *trace]
        if caller.key_id is not None:
            headers.append((AUTH_KEY_HEADER, caller.key_id.encode()))
            if self.signing is not None:
                headers += signed_headers(self.signing[0], self.signing[1], record.value)
        return headers

    async def produce(self, caller: Caller, trace: list[tuple[str, bytes]], records: list[Record]) -> tuple[int, int]:
        """(produced, duplicates); 503 on a broker failure, 413 naming the records too large after the others; 422
        before anything is sent when `responder run` would decode a record otherwise (`check_decoders`)."""
        check_decoders(self.settings, caller.source, records)
        topic = self.settings.intake_sources[caller.source].topic or self.settings.intake_topic
        produced = duplicates = 0
        too_large: list[str] = []
        try:
            for n, record in enumerate(records, 1):
                if not await self.deliveries.claim(record.delivery, record.digest):
                    duplicates += 1
                    continue
                ok = False
                try:
                    await self.sender.send(topic, record.value, key=record.key,
                                           headers=self.headers(record, caller, trace))
                    ok = True
                except BrokerUnavailable as exc:
                    raise Problem(503, "broker-unavailable", str(exc), {"Retry-After": str(RETRY_AFTER_S)}) from None
                except RecordTooLarge as exc:  # a retry cannot succeed for this one: send the others
                    too_large.append(f"record {n} (incident key {record.key.decode(errors='replace')[:200]!r}): "
                                     f"{exc}"[:300])
                    continue
                finally:
                    self.deliveries.done(record.delivery, record.digest, ok)
                produced += 1
        finally:
            self.metrics.produced.labels(caller.source).inc(produced)
            self.metrics.duplicates.labels(caller.source).inc(duplicates)
        if too_large:
            raise Problem(413, "too-large", f"{len(too_large)} of {len(records)} records too large for Kafka, the "
                          f"others acknowledged ({produced} produced, {duplicates} duplicates): "
                          + "; ".join(too_large))
        return produced, duplicates
