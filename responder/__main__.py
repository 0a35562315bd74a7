"""`python -m responder`."""

from responder.cli import app

app()
