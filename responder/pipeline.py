"""The pipeline: raw record → events → matches → engine. The only module that sees every stage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from responder.acting import Acting, Counters
from responder.acting import Prepared as Prepared  # importable here, as before
from responder.engine.executor import Engine
from responder.engine.incidents import Incident
from responder.errors import AuthenticationFailed, PartlyRejected, TooLarge, UnreadableRecord
from responder.ingest.authn import RecordAuthenticator
from responder.metrics import Metrics
from responder.models.event import Event, RawRecord
from responder.models.runbook import Runbook
from responder.normalise import decode_doc, head, keyed, parse
from responder.rules.matcher import ACCEPTED, Match, Matcher
from responder.tracing import active, extract, span, trace_id_of

_UNPARSED: Any = object()  # `prepare`'s record value is still bytes
_UNCHECKED: Any = object()  # `prepare` has not yet asked the heads whether the record can match


class Pipeline(Acting):
    """Handles one raw record at a time; raises EventRejected for poison (the caller dead-letters it).

    `handle` = `prepare` (authenticate, decode, normalise, match: synchronous, no side effects) then `act`
    (timeline entries and the engine: `responder.acting`, mixed in). The service prepares a whole batch inline and
    only starts tasks for the records that matched, so an alert nobody acts on costs no task, no await and no
    timeline entry.
    """

    def __init__(self, runbooks: Sequence[Runbook], engine: Engine, *, max_record_bytes: int = 1024 * 1024,
                 topic_formats: Mapping[str, str] | None = None, authenticator: RecordAuthenticator | None = None,
                 metrics: Metrics | None = None) -> None:
        self.matcher = Matcher(runbooks)
        self.signed_only = any(rb.require_signature for rb in runbooks)  # a runbook that acts on signed records only
        self.engine = engine
        engine.use_runbooks(runbooks)
        self.max_record_bytes = max_record_bytes
        self.counters = Counters()
        self.topic_formats = dict(topic_formats or {})
        self.authenticator = authenticator or RecordAuthenticator()
        self.metrics = metrics or Metrics()
        self._children: dict[tuple[str, ...], Any] = {}  # labelled metric children (labels() costs ~5 us)
        self._pending: dict[tuple[str, ...], int] = {}  # counts not yet added to the metrics (publish_counts)

    def _count(self, metric: str, *labels: str) -> None:
        """Count one occurrence; the labelled Prometheus children are incremented by `publish_counts`."""
        key = (metric, *labels)
        self._pending[key] = self._pending.get(key, 0) + 1

    def publish_counts(self) -> None:
        """Add the counts gathered since the last call to the Prometheus metrics (once per batch, not per event)."""
        pending, self._pending = self._pending, {}
        for key, amount in pending.items():
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = getattr(self.metrics, key[0]).labels(*key[1:])
            child.inc(amount)

    async def handle(self, record: RawRecord) -> list[Incident]:
        """Normalise, match and execute; timeline entries are appended (flushed by the caller). A record some parts
        of which could not be decoded raises their PartlyRejected after the other parts are acted on."""
        trace = trace_id_of(record.headers) if record.header("traceparent") else None
        with span("responder.record", extract(record.headers) if trace else None,
                  attributes={"messaging.destination.name": record.topic, "messaging.kafka.offset": record.offset}):
            try:
                prepared = self.prepare(record)
            finally:
                self.publish_counts()
            try:
                incidents = await self.act(prepared)
            finally:
                self.publish_matched()
            if prepared.rejected is not None:
                raise prepared.rejected
            return incidents

    def prepare(self, record: RawRecord, doc: Any = _UNPARSED, ruled: Event | None = _UNCHECKED) -> Prepared:
        """Authenticate, decode and match one record; raises EventRejected for poison.

        Counts are gathered, not published: the caller calls `publish_counts` after the batch. The `decode` and
        `match` spans exist only while a tracer provider is installed (no context manager per event otherwise).
        `doc` is the record's value already parsed (by `prepare_batch`), when it was, and `ruled` what the heads
        said of it (`_ruled_out`: the partial event no runbook can match, or None), when they were asked.
        """
        trace = trace_id_of(record.headers) if record.header("traceparent") else None
        self.counters.records += 1
        self._count("records", record.topic)
        if record.unreadable is not None:  # the Kafka client could not parse it (responder/ingest/recordbatch.py)
            raise UnreadableRecord(f"the Kafka client could not parse this record: {record.unreadable}")
        if len(record.value) > self.max_record_bytes:  # before hashing or parsing anything
            raise TooLarge(f"record of {len(record.value)} bytes exceeds the limit of {self.max_record_bytes}")
        signed_by = self.authenticator.verify(record)
        traced = active()
        if traced:
            with span("decode"):
                events, ruled_out, rejected, stamped = self._decode(record, doc, ruled)
        else:
            events, ruled_out, rejected, stamped = self._decode(record, doc, ruled)
        self.authenticator.check_sources(events, signed_by)
        if signed_by is not None:
            self._count("authenticated", signed_by)
        matched: list[tuple[Event, list[Match]]] = []
        for event in events:
            if ruled_out:
                matches = []
            elif traced:
                with span("match", attributes={"responder.event_id": event.id}):
                    matches = self.matcher.match(event)
            else:
                matches = self.matcher.match(event)
            matched.append((event, matches))
        if signed_by is None and self.signed_only:
            refuse_unsigned(matched)
        found: list[tuple[Event, list[Match]]] = []
        for event, matches in matched:
            self.counters.events += 1
            self._count("events", event.source)
            self._count("event_outcomes", event.source, "matched" if matches else "unmatched")
            if matches:
                found.append((event, matches))
        return Prepared(record, trace, found, rejected, stamped)

    def prepare_batch(self, records: Iterable[RawRecord]) -> tuple[list[Prepared], list[tuple[RawRecord, Exception]]]:
        """`prepare` over a batch: the records some runbook accepts, and those that raised (with the error), or some
        parts of which were rejected while none of the others matched (a Prepared that matched carries its parts'
        rejection in `rejected`: the caller dead-letters it after acting, as `handle` raises it).

        The common record, unsigned and not required to be, ruled out by its head (no match), takes a tight path:
        no Prepared, no per-record counter call; it is counted once per (topic, source) for the batch, exactly as
        `prepare` counts it. Every other record (and any record while tracing) goes through `prepare` itself.
        """
        found: list[Prepared] = []
        failed: list[tuple[RawRecord, Exception]] = []
        ruled: dict[tuple[str, str], int] = {}  # (topic, source) → records ruled out by their head
        quick, limit, auth = not active(), self.max_record_bytes, self.authenticator
        formats, required, verdict, by_head = self.topic_formats, auth.require, self.matcher.verdict, self._by_head
        for record in records:
            doc, partial = _UNPARSED, _UNCHECKED
            value = record.value
            if quick and len(value) <= limit and record.unreadable is None and (
                    (not required and not record.headers) or auth.unsigned(record)):
                try:
                    doc = orjson.loads(value)  # `parse`'s errors are raised again by `prepare`, below
                    fmt = formats.get(record.topic)
                    by_key = keyed(doc, fmt)  # `_ruled_out`, inlined
                    partial = verdict(*by_key) if by_key is not None else None
                    if partial is None:
                        partial = by_head(doc, fmt)
                    elif partial is ACCEPTED:  # a candidate reading only the key's fields accepts it: no head
                        partial = None  # can rule it out, so the whole head is not built (`Matcher.verdict`)
                    if partial is not None and partial.source not in required:
                        key = (record.topic, partial.source)
                        ruled[key] = ruled.get(key, 0) + 1
                        continue
                except Exception:  # noqa: BLE001 - poison (or a bug): `prepare` raises it again, counted as usual
                    doc, partial = _UNPARSED, _UNCHECKED
            try:
                prepared = self.prepare(record, doc, partial)  # the heads are not asked twice
            except Exception as exc:  # noqa: BLE001 - poison or a bug: the caller dead-letters it
                failed.append((record, exc))
                continue
            if prepared.found:  # a rejection of some parts (`rejected`) is raised after the others acted, as `handle`
                found.append(prepared)
            elif prepared.rejected is not None:  # some parts rejected, and none of the others matched
                failed.append((record, prepared.rejected))
        for (topic, source), n in ruled.items():
            self.counters.records += n
            self.counters.events += n
            keys: tuple[tuple[str, ...], ...] = (("records", topic), ("events", source),
                                                 ("event_outcomes", source, "unmatched"))
            for counted in keys:
                self._pending[counted] = self._pending.get(counted, 0) + n
        return found, failed

    def _ruled_out(self, doc: Any, fmt: str | None) -> Event | None:
        """The partial event of a document no runbook can match, by its format's keyed head (the verdict remembered
        per key) or else its head; None when only the full decode can tell (see docs/development.md)."""
        found = keyed(doc, fmt)
        partial = self.matcher.verdict(*found) if found is not None else None
        if partial is ACCEPTED:  # the whole head cannot rule it out either
            return None
        return partial if partial is not None else self._by_head(doc, fmt)

    def _by_head(self, doc: Any, fmt: str | None) -> Event | None:
        """The partial event of the document's whole head when no runbook can match it, else None."""
        whole = head(doc, fmt)
        return whole[0] if whole is not None and self.matcher.rejects(*whole) else None

    def _decode(self, record: RawRecord, doc: Any = _UNPARSED, ruled: Event | None = _UNCHECKED,
                ) -> tuple[list[Event], bool, PartlyRejected | None, datetime | None]:
        """The record's events, whether they were ruled out by their head alone (no runbook can match them: the
        list then holds only that partial event, for counting and the source check; see docs/development.md), and
        the rejection of its parts that could not be decoded (the list then holds the others' events), and the
        record's `stamped()` time when it was decoded (read once: `act` reuses it)."""
        if doc is _UNPARSED:
            doc = parse(record.value, self.max_record_bytes)
        fmt = self.topic_formats.get(record.topic)
        partial = self._ruled_out(doc, fmt) if ruled is _UNCHECKED else ruled
        if partial is not None:
            return [partial], True, None, None
        stamped = record.stamped()
        try:
            return decode_doc(doc, fmt, received=stamped), False, None, stamped
        except PartlyRejected as exc:
            return exc.kept, False, exc, stamped


def refuse_unsigned(matched: Iterable[tuple[Event, list[Match]]]) -> None:
    """AuthenticationFailed when a runbook that acts on signed records only (`require_signature: true`) matches an
    event of this unsigned record: the record is dead-lettered (`authentication`), nothing of it acts."""
    for event, matches in matched:
        for match in matches:
            if match.runbook.require_signature:
                raise AuthenticationFailed(f"runbook {match.runbook.id} acts on signed records only; the record is "
                                           f"unsigned (source {event.source})")
