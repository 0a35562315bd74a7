"""A tolerant reader of Kafka record batches (format v2), for the fetches aiokafka cannot parse.

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
from aiokafka.record.util import calc_crc32c, decode_varint

_HEADER = struct.Struct(">qiibIhiqqqhii")  # 61 bytes, no padding
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


def read_fetched(topic: str, partition: int, buf: bytes, position: int,
                 most: int) -> tuple[list[Read | Unreadable], int]:
    """The records of `buf` (a fetch response's bytes for one partition) from `position`, whole batches, until at
    least `most` are read; and the offset after the last batch read (`position` when none was whole)."""
    out: list[Read | Unreadable] = []
    pos, after = 0, position
    while len(out) < most and pos + _HEADER.size <= len(buf):
        base, length, _epoch, magic = _HEADER.unpack_from(buf, pos)[:4]
        end = pos + 12 + length
        if length < _HEADER.size - 12 or end > len(buf):
            break  # the fetch cut the last batch short: it is fetched again from `after`
        batch = bytes(buf[pos:end])
        pos = end
        if magic != 2:  # a v0/v1 message: aiokafka reads those without headers; one here is passed on whole
            out.append(Unreadable(topic, partition, max(base, position), max(base, position), None, None, batch, (),
                                  f"a message in the legacy format (magic {magic}), not read here"))
            after = max(base, position) + 1
            continue
        last = base + _HEADER.unpack_from(batch)[6]
        if last < position:
            continue  # before the position (a compressed batch the fetch started inside of)
        out += _batch(topic, partition, batch, max(base, position), last)
        after = last + 1
    return out, after


def _batch(topic: str, partition: int, batch: bytes, start: int, last: int) -> list[Read | Unreadable]:
    """The records of one v2 batch from offset `start`, or one `Unreadable` for what cannot be read."""
    (base, _len, _epoch, _magic, crc, attributes, _delta, base_ts, max_ts, _pid, _pepoch, _seq,
     count) = _HEADER.unpack_from(batch)

    def whole(why: str, first: int = start) -> list[Read | Unreadable]:
        return [Unreadable(topic, partition, last, first, None, None, batch, (),
                           f"record batch at offsets {base}-{last}, from {first}: {why}")]

    if calc_crc32c(batch[_CRC_FROM:]) != crc:
        return whole("its CRC-32C does not match (corrupted): none of its records can be trusted")
    if attributes & _CONTROL:
        return []  # a transaction marker, never handed out
    payload = batch[_HEADER.size:]
    kind = attributes & _CODEC
    if kind:
        name, decode, available = _DECODERS.get(kind, (f"codec {kind}", _unknown, lambda: False))
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
        except (_Malformed, ValueError, IndexError) as exc:
            first = max(start, out[-1].offset + 1) if out else start
            return [*out, *whole(f"a record from offset {first} on is malformed ({exc})", first)]
        if offset < start:
            continue
        stamp = max_ts if attributes & _LOG_APPEND_TIME else ts
        out.append(_checked(topic, partition, offset, stamp, key, value, raw_headers))
    return out


def _unknown(payload: bytes) -> bytes:
    raise ValueError("unknown codec")


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


def _bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    """A varint-length-prefixed field (-1: null), bounded by the record's end."""
    size, pos = decode_varint(buf, pos)
    if size < 0:
        return None, pos
    if pos + size > end:
        raise _Malformed(f"a field of {size} bytes runs past its record")
    return buf[pos:pos + size], pos + size


def _record(buf: bytes, pos: int, base: int, base_ts: int,
            ) -> tuple[int, int, int, bytes | None, bytes | None, list[tuple[bytes, bytes]]]:
    """(position after it, offset, timestamp, key, value, raw headers) of the record at `pos`."""
    length, pos = decode_varint(buf, pos)
    end = pos + length
    if length < 1 or end > len(buf):
        raise _Malformed(f"a record of {length} bytes in {len(buf) - pos} left")
    pos += 1  # attributes: unused in v2
    ts_delta, pos = decode_varint(buf, pos)
    offset_delta, pos = decode_varint(buf, pos)
    key, pos = _bytes(buf, pos, end)
    value, pos = _bytes(buf, pos, end)
    n, pos = decode_varint(buf, pos)
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
