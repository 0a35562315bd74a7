"""The `responder` command line: human output by default, `--json` for machines."""

from responder.cli.app import app

__all__ = ["app"]
