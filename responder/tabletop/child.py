"""`python -m responder.tabletop.child`: one scenario's service in its own process, for real SIGKILLs.

The runner starts this process ahead of need and drives it over stdin/stdout, one JSON line each way:
`start` (with its responder.tabletop.host.ChildConfig), `at` (move the virtual clock), `status`, `stop`
(drain and exit). End of input before `start` is a spare that was not needed: it exits.
The service is the same `Service` as `responder run`, on the virtual clock, with the scenario's AWS
faults; a kill point parks the AWS call's thread and shows in `status` until the runner SIGKILLs us.
Logs go to stderr (the runner keeps them in the scenario's work directory as child.log).
"""

from __future__ import annotations

import asyncio
import os
import sys

import orjson

from responder import log
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.service import Service
from responder.tabletop.faults import FaultyAws, VirtualClock, armed
from responder.tabletop.host import ChildConfig, Tracked


async def serve(replies: int) -> None:
    """Wait for `start`, run the service and answer the runner until it says stop (or closes our stdin)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line = await reader.readline()
    if not line:
        return  # a spare that was not needed
    config = ChildConfig.model_validate(orjson.loads(line)["config"])
    settings = config.service_settings()
    clock = VirtualClock(config.start)
    clock.now = config.now
    faults = armed(config.faults, config.handled)
    aws = FaultyAws(endpoint_url=str(settings.aws_endpoint_url), credentials=SANDBOX_CREDENTIALS, clock=clock,
                    faults=faults, loop=loop)
    service = Service(settings, aws=aws, clock=clock)
    tracked = Tracked(service, aws)
    task = asyncio.create_task(service.run())
    os.write(replies, tracked.status(task).model_dump_json().encode() + b"\n")
    while line := await reader.readline():
        request = orjson.loads(line)
        if request["op"] == "at":
            clock.at(float(request["offset"]))
        elif request["op"] == "stop":
            service.request_stop()
            await asyncio.wait({task}, timeout=30)
        os.write(replies, tracked.status(task).model_dump_json().encode() + b"\n")
        if request["op"] == "stop":
            return
    service.request_stop()
    await asyncio.wait({task}, timeout=30)


def main() -> None:
    """Replies on the original stdout; anything else printed goes to stderr."""
    replies = os.dup(1)
    os.dup2(2, 1)
    log.configure("json", os.environ.get("RESPONDER_TABLETOP_CHILD_LOG", "warning"))
    asyncio.run(serve(replies))


if __name__ == "__main__":
    main()
