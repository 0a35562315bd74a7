"""A tolerant reader of Kafka record batches (format v2, and v0/v1 message sets through aiokafka), for the fetches
aiokafka cannot parse.

aiokafka parses a fetched batch while `getmany()` hands its records out. A record it cannot parse (a header key
that is not UTF-8: the broker takes any bytes from any producer), a batch whose CRC fails or one compressed with
a codec it lacks raises from that `getmany()` and from every later one, as the position never moves past it.
This module reads the same fetched bytes itself, batch by batch: the good records of a batch come out as they
are, and each record (or batch) that cannot be read comes out as `Unreadable`, with its bytes and why, in its
place, for the caller to dead-letter. Nothing here is evaluated: lengths are bounded by the buffer, and a
structure that does not hold makes the rest of its batch one `Unreadable`.

Layout (Kafka's DefaultRecordBatch): a 61-byte header (base offset, length, leader epoch, magic, CRC-32C of the
rest, attributes, last offset delta, base and max timestamps, producer id, epoch, base sequence, record count),
then the records, compressed as a whole when the attributes say so; each record is varint-framed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import codec
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

_HEADER = struct.Struct(">qiibIhiqqqhii")  # 61 bytes, no padding
_PREFIX = struct.Struct(">qi4xb")  # base offset, length, magic: where every format agrees (v0/v1 put a CRC there)
_CRC_FROM = 21  # the CRC covers the batch from its attributes on
_CONTROL, _LOG_APPEND_TIME, _CODEC = 0x20, 0x08, 0x07
_DECODERS: dict[int, tuple[str, Callable[[bytes], bytes], Callable[[], bool]]] = {
    1: ("gzip", codec.gzip_decode, codec.has_gzip),
    2: ("snappy", codec.snappy_decode, codec.has_snappy),
    3: ("lz4", codec.lz4_decode, codec.has_lz4),
    4: ("zstd", codec.zstd_decode, codec.has_zstd),
}


@dataclass(frozen=True)
class Read:
    """A record read from a fetch: what `aiokafka.structs.ConsumerRecord` carries, for the fields we use."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Unreadable:
    """A record, or the rest of a batch, that cannot be read: its bytes (a whole batch's when its CRC fails or its
    codec is missing), the offsets it covers (it stands at the last, so committing it commits them all), why."""

    topic: str
    partition: int
    offset: int
    first: int
    timestamp: int | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    error: str


class _Malformed(ValueError):
    """A record's framing does not hold."""


def read_fetched(topic: str, partition: int, buf: bytes, position: int, most: int,
                 high: int | None = None) -> tuple[list[Read | Unreadable], int]:
    """The records of `buf` (a fetch response's bytes for one partition) from `position`, whole batches, until at
    least `most` are read; and the offset after the last batch read (`position` when none was whole). Batches must
    follow each other in offset order and start below `high` (the high watermark): one that does not ends the
    read there. A batch whose CRC fails ends where the batch right after it in `buf` begins, if that one is sound;
    otherwise its extent is unknown and the read ends before it."""
    out: list[Read | Unreadable] = []
    pos, after, expect = 0, position, -1  # expect: the lowest base the next batch may have (read or skipped)
    while len(out) < most and pos + _PREFIX.size <= len(buf):
        base, length, magic = _PREFIX.unpack_from(buf, pos)
        end = pos + 12 + length
        if end > len(buf) or length < _PREFIX.size - 12 or base < expect:
            break  # cut short by the fetch (fetched again from `after`), or not a batch where one should follow
        batch = bytes(buf[pos:end])
        pos = end
        if magic < 2:
            expect = base + 1
            if base >= position:  # a v0/v1 message set entry stands at its last offset
                out += _legacy(topic, partition, batch, position, base)
                after = base + 1
            continue
        if length < _HEADER.size - 12 or (high is not None and base >= high):
            break  # not a batch: its offset is past the end of the log
        crc_ok = _crc_ok(batch)
        last = base + _HEADER.unpack_from(batch)[6]
        if not crc_ok:  # its own header is suspect: it ends where the batch after it begins, if that one is sound
            following = _sound_base(buf, end)  # (its base is outside its CRC too: bounded by the high watermark)
            if following is None or following <= base or (high is not None and following > high):
                break  # its extent cannot be known: the read stalls there, and stops loudly (unreadable.py)
            last = following - 1
        expect = last + 1
        if last < position:
            continue  # before the position (a compressed batch the fetch started inside of)
        out += _batch(topic, partition, batch, max(base, position), last, crc_ok)
        after = last + 1
    return out, after


def _crc_ok(batch: bytes) -> bool:
    """Whether a v2 batch's CRC-32C (over its attributes and all that follows) matches."""
    return bool(calc_crc32c(batch[_CRC_FROM:]) == _HEADER.unpack_from(batch)[4])


def _sound_base(buf: bytes, pos: int) -> int | None:
    """The base offset of the v2 batch at `pos` when it is whole in `buf` and its CRC matches, else None."""
    if pos + _HEADER.size > len(buf):
        return None
    base, length, magic = _PREFIX.unpack_from(buf, pos)
    end = pos + 12 + length
    if magic != 2 or length < _HEADER.size - 12 or end > len(buf) or not _crc_ok(bytes(buf[pos:end])):
        return None
    return int(base)


def _legacy(topic: str, partition: int, entry: bytes, position: int, offset: int) -> list[Read | Unreadable]:
    """A message set entry in the v0/v1 format, read by aiokafka (no headers there), or one `Unreadable`."""
    try:
        batch = MemoryRecords(entry).next_batch()
        if batch is None or not batch.validate_crc():
            raise _Malformed("its CRC does not match")
        return [Read(topic, partition, r.offset, r.timestamp, r.key, r.value, ()) for r in batch
                if r.offset >= position]
    except Exception as exc:  # noqa: BLE001 - whatever aiokafka raises, the verdict is the same
        return [Unreadable(topic, partition, offset, max(position, offset), None, None, entry, (),
                           f"a message in the legacy format (offset {offset}) cannot be read: {exc!r}")]


def _batch(topic: str, partition: int, batch: bytes, start: int, last: int, crc_ok: bool) -> list[Read | Unreadable]:
    """The records of one v2 batch from offset `start`, or one `Unreadable` for what cannot be read."""
    (base, _len, _epoch, _magic, _crc, attributes, _delta, base_ts, max_ts, _pid, _pepoch, _seq,
     count) = _HEADER.unpack_from(batch)

    def whole(why: str, first: int = start) -> list[Read | Unreadable]:
        first = min(first, last)  # a batch whose records outnumber its offsets: it still ends at `last`
        return [Unreadable(topic, partition, last, first, None, None, batch, (),
                           f"record batch at offsets {base}-{last}, from {first}: {why}")]

    if not crc_ok:
        return whole("its CRC-32C does not match (corrupted): none of its records can be trusted")
    if attributes & _CONTROL:
        return []  # a transaction marker, never handed out
    payload = batch[_HEADER.size:]
    kind = attributes & _CODEC
    if kind:
        if kind not in _DECODERS:
            return whole(f"compressed with codec {kind}, which Kafka does not define")
        name, decode, available = _DECODERS[kind]
        if not available():
            return whole(f"compressed with {name}, which this installation cannot decompress")
        try:
            payload = decode(payload)
        except Exception as exc:  # noqa: BLE001 - any codec failure is the same verdict: cannot be read
            return whole(f"{name} decompression failed: {exc!r}")
    out: list[Read | Unreadable] = []
    pos = 0
    for _ in range(count):
        try:
            pos, offset, ts, key, value, raw_headers = _record(payload, pos, base, base_ts)
        except _Malformed as exc:
            first = max(start, out[-1].offset + 1) if out else start
            return [*out, *whole(f"a record from offset {first} on is malformed ({exc})", first)]
        if offset < start:
            continue
        stamp = max_ts if attributes & _LOG_APPEND_TIME else ts
        out.append(_checked(topic, partition, offset, stamp, key, value, raw_headers))
    return out


def _checked(topic: str, partition: int, offset: int, stamp: int, key: bytes | None, value: bytes | None,
             raw_headers: list[tuple[bytes, bytes]]) -> Read | Unreadable:
    """The record, or `Unreadable` when a header key is not UTF-8 (its keys then shown with escapes)."""
    try:
        headers = tuple((k.decode("utf-8"), v) for k, v in raw_headers)
    except UnicodeDecodeError as exc:
        shown = tuple((k.decode("utf-8", "backslashreplace"), v) for k, v in raw_headers)
        return Unreadable(topic, partition, offset, offset, stamp, key, value or b"", shown,
                          f"a header key is not UTF-8 ({exc.reason} at byte {exc.start})")
    return Read(topic, partition, offset, stamp, key, value, headers)


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A zigzag varint at `pos` that must end before `end` (aiokafka's compiled decoder reads past a buffer)."""
    result = shift = 0
    while True:
        if pos >= end:
            raise _Malformed("a varint runs past its record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift >= 64:
            raise _Malformed("a varint longer than 64 bits")


def _bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    """A varint-length-prefixed field (-1: null), bounded by the record's end."""
    size, pos = _varint(buf, pos, end)
    if size < 0:
        return None, pos
    if pos + size > end:
        raise _Malformed(f"a field of {size} bytes runs past its record")
    return buf[pos:pos + size], pos + size


def _record(buf: bytes, pos: int, base: int, base_ts: int,
            ) -> tuple[int, int, int, bytes | None, bytes | None, list[tuple[bytes, bytes]]]:
    """(position after it, offset, timestamp, key, value, raw headers) of the record at `pos`."""
    length, pos = _varint(buf, pos, len(buf))
    end = pos + length
    if length < 1 or end > len(buf):
        raise _Malformed(f"a record of {length} bytes in {len(buf) - pos} left")
    pos += 1  # attributes: unused in v2
    ts_delta, pos = _varint(buf, pos, end)
    offset_delta, pos = _varint(buf, pos, end)
    key, pos = _bytes(buf, pos, end)
    value, pos = _bytes(buf, pos, end)
    n, pos = _varint(buf, pos, end)
    if n < 0 or n > length:
        raise _Malformed(f"{n} headers")
    headers = []
    for _ in range(n):
        k, pos = _bytes(buf, pos, end)
        v, pos = _bytes(buf, pos, end)
        if k is None:
            raise _Malformed("a header without a key")
        headers.append((k, v if v is not None else b""))
    if pos != end:
        raise _Malformed(f"a record's fields end at {pos}, its length says {end}")
    return end, base + offset_delta, base_ts + ts_delta, key, value, headers
