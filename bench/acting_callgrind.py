"""The acting path under callgrind: instructions per acting event (≈ 1 % apart between runs, however busy the machine).

    PYTHONHASHSEED=0 PYTHONPATH=$PWD valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.500 \\
        .venv/bin/python bench/acting_callgrind.py 500
    (the same with 2500 and /tmp/cg.2500)
    instructions per acting event = (totals of /tmp/cg.2500 - totals of /tmp/cg.500) / 2000

Builds 2,500 of `bench/acting.py`'s records (GuardDuty findings, each matching the benchmark runbook and acting on
the no-op actuator) and hands the first HANDLED of them to `Service._handle_batch` in chunks of 500, then flushes:
the imports, the records and the service cost the same in both runs, so the difference is the handling of 2,000
acting events. Each run takes minutes under valgrind; run both trees' pairs side by side.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from acting import _Partition, acting_service, raw_records  # noqa: E402
from pipeline import NoopActuator  # noqa: E402

from responder import collector, log  # noqa: E402
from responder.actuators.registry import registry  # noqa: E402

BUILT, CHUNK = 2_500, 500


async def main(handled: int) -> None:
    log.configure("console", "warning")
    registry.add(NoopActuator())
    raws = raw_records(BUILT, "C", int(time.time() * 1000))
    with tempfile.TemporaryDirectory() as tmp:
        svc = acting_service(CHUNK, Path(tmp) / "timeline.jsonl")
        part = _Partition()
        collector.tune(CHUNK)
        for i in range(0, handled, CHUNK):
            await svc._handle_batch({part: raws[i:i + CHUNK]})
        await svc.recorder.flush()
        assert svc.engine.actions == handled, f"{svc.engine.actions} of {handled} acted"
        await svc.close_unstarted()
        svc.recorder.close()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    if count % CHUNK or not 0 < count <= BUILT:
        sys.exit(f"HANDLED must be a multiple of {CHUNK} up to {BUILT}")
    asyncio.run(main(count))
