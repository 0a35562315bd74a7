"""Run the intake under uvicorn (no access log: a url-token source carries its secret in the query string)."""

from __future__ import annotations

import uvicorn

from responder.intake.app import Intake, create_app


def server(intake: Intake, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for `intake` (call `await server.serve()`; set `should_exit` to stop)."""
    config = uvicorn.Config(create_app(intake), host=host, port=port, access_log=False, log_config=None,
                            server_header=False, timeout_keep_alive=5, timeout_graceful_shutdown=10,
                            lifespan="on")
    return uvicorn.Server(config)
