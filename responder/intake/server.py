"""Run the intake under uvicorn (no access log: a url-token source carries its secret in the query string).

The HTTP protocol is uvicorn's httptools one with a request-head deadline and size cap and a bound on open
connections (`responder.intake.connections`), its refusals counted in the intake's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from responder.errors import ConfigError
from responder.intake.app import Intake, create_app
from responder.intake.connections import guarded_protocol


def server(intake: Intake, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for `intake` (call `await server.serve()`; set `should_exit` to stop)."""
    s = intake.settings
    config = uvicorn.Config(create_app(intake), host=host, port=port, access_log=False, log_config=None,
                            server_header=False, timeout_keep_alive=5, timeout_graceful_shutdown=10,
                            lifespan="on", http=guarded_protocol(s.intake_read_timeout_s, s.intake_max_connections,
                                                                 intake.metrics.refused))
    return uvicorn.Server(config)


@contextlib.asynccontextmanager
async def serving(intake: Intake, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Run the intake in this event loop (demo, tests); yields the bound port, stops it on exit."""
    srv = server(intake, host, port)
    task = asyncio.create_task(srv.serve())
    try:
        while not srv.started:
            if task.done():
                await task  # raises what prevented the start
                raise ConfigError(f"intake could not listen on {host}:{port}")
            await asyncio.sleep(0.02)
        yield int(srv.servers[0].sockets[0].getsockname()[1])
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 15)
