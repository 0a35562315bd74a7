"""Produce records whose header key is not UTF-8, as any client may (run with AIOKAFKA_NO_EXTENSIONS=1: the
pure-Python record builder asks the key to encode itself, and this one encodes to bytes that do not decode).

    python -m tests.integration.unreadable_producer BOOTSTRAP TOPIC KEY VALUE_FILE... [--partition N] [--gzip]
                                                    [--sign KEY_ID:SECRET]

Each value file is sent in turn, in one batch on KEY's partition (or partition N); a file named `*.bad` gets the
bad header key; `--gzip` compresses the batch; `--sign` adds the two headers that sign each value
(responder.auth.signed_headers), as the approvals CLI does. Tests call it through `produce`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer

from responder.auth import signed_headers
from responder.sandbox import lifeline


class BadKey(str):
    """A header key whose UTF-8 encoding is not UTF-8."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfe-not-utf-8"


async def main(bootstrap: str, topic: str, key: str, values: list[tuple[bytes, bool]], partition: int | None,
               gzip: bool, signer: tuple[str, bytes] | None) -> None:
    """Send the values as one batch, in order (True: with the bad header key), signed when `signer` is given."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=200, acks="all",
                                compression_type="gzip" if gzip else None)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key.encode(), partition=partition,
                                    headers=[*(signed_headers(*signer, value) if signer else []),
                                             *([(BadKey("k"), b"v")] if bad else [])])
                for value, bad in values]
        await producer.flush()
        for fut in sent:
            await fut
    finally:
        await producer.stop()


ROOT = Path(__file__).resolve().parents[2]
_SENT = itertools.count()  # value files' names


async def produce(bootstrap: str, topic: str, tmp: Path, values: list[tuple[bytes, bool]], *extra: str) -> None:
    """Send `values` in one batch; those marked True carry a header key that is not UTF-8."""
    files = []
    for value, bad in values:
        path = tmp / f"v{next(_SENT)}{'.bad' if bad else '.ok'}"
        path.write_bytes(value)
        files.append(str(path))
    env = dict(os.environ, AIOKAFKA_NO_EXTENSIONS="1", PYTHONPATH=str(ROOT))
    await asyncio.to_thread(lifeline.run, [sys.executable, "-m", "tests.integration.unreadable_producer",
                                           bootstrap, topic, "k", *files, *extra], check=True, env=env, cwd=ROOT,
                            timeout=60)


if __name__ == "__main__":
    args = sys.argv[4:]
    part = int(args[args.index("--partition") + 1]) if "--partition" in args else None
    key_id, _, secret = args[args.index("--sign") + 1].partition(":") if "--sign" in args else ("", "", "")
    files = [a for i, a in enumerate(args)
             if not a.startswith("--") and (i == 0 or args[i - 1] not in ("--partition", "--sign"))]
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], [(Path(f).read_bytes(), f.endswith(".bad")) for f in files],
                     part, "--gzip" in args, (key_id, secret.encode()) if key_id else None))
