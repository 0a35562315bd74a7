"""Options and helpers every command group shares: `--json`, `--timeline`, `--bootstrap`, settings, failing."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from responder import log
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, print_error
from responder.errors import ConfigError, TimelineError
from responder.settings import Settings

JSON_HELP = "print one JSON document on stdout (the whole result, never one line per item)"
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
TimelineOpt = Annotated[Path | None, typer.Option(help="timeline file (default: the timeline_path setting)")]
BootstrapOpt = Annotated[str | None, typer.Option(help="Kafka bootstrap (default: RESPONDER_KAFKA_BOOTSTRAP)")]
RegistryOpt = Annotated[str | None, typer.Option("--registry", help="registry: a directory, s3://… or "
                                                  "sagemaker+s3://… (default: the model_registry setting)")]
ModelArg = Annotated[str, typer.Argument(help="model name")]


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print `message` in red on stderr (as it is: it may quote what an alert or Kafka said, so no markup); the
    Exit to raise. Escaped here (`plain`): pass the text as it is."""
    print_error(message)
    return typer.Exit(code)


def unreadable(path: Path, exc: OSError | TimelineError, what: str) -> ConfigError:
    """`cannot read WHAT PATH: why`, the one line (exit 3, at the root) of a path that cannot be read: a timeline file,
    or the argument or option `what` names (`event file`, `--anchor`)."""
    why = "no such file or directory" if isinstance(exc, FileNotFoundError) else \
        (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    return ConfigError(f"cannot read {what} {path}: {why}")


def openable(path: Path, what: str, *, directory: bool = False) -> Path:
    """`path` when this process can open it as a file (`directory`: list it as a directory), else `unreadable`'s
    ConfigError naming `what` and why. A named pipe or a device is not opened to check it (opening a FIFO takes its
    writer's data, and the command's own open would then wait for a writer gone): only that it may be read."""
    try:
        if directory:
            with os.scandir(path):
                return path
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            if not os.access(path, os.R_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return path
        with path.open("rb"):
            return path
    except OSError as exc:
        raise unreadable(path, exc, what) from exc


def readable(what: str, *, directory: bool = False) -> Callable[[Any], Any]:
    """A parameter callback: each path the argument or option names must be `openable`, else its one line and exit 3
    (at the root), as for a timeline path, not click's usage box and exit 2 (`exists=True`); `what` names the
    parameter in that line (`event file`, `--anchor`)."""
    def check(value: Any) -> Any:
        for path in value if isinstance(value, list | tuple) else [] if value is None else [value]:
            openable(Path(path), what, directory=directory)
        return value
    return check


def load_settings() -> Settings:
    """Settings, with console logging at warning level (invalid settings: SettingsInvalid, exit 3 at the root)."""
    log.configure("console", "warning")
    return Settings()


def configured_default_on_failure() -> list[dict[str, Any]]:
    """The service-wide escalation `responder run` gives runbooks without `on_failure` (the `default_on_failure`
    setting, from RESPONDER_DEFAULT_ON_FAILURE or the config file); SettingsInvalid when the settings are not valid."""
    return Settings().default_on_failure


def kafka_server(settings: Settings, bootstrap: str | None) -> str:
    """--bootstrap, else the configured Kafka; exit 3 saying how to configure one when neither is set."""
    log.configure(settings.log_format, "warning")
    server = bootstrap or settings.kafka_bootstrap
    if not server:
        print_error("no Kafka: pass --bootstrap or set RESPONDER_KAFKA_BOOTSTRAP")
        raise typer.Exit(EXIT_CONFIG)
    return server


def incident_ids(timeline: Path) -> list[str]:
    """Every incident id on the timeline, in order of first appearance. An operator request's own entries
    (`operator.*`, under whatever incident it named: a prefix, a typo) make no incident, as for the service's undo
    (responder/engine/undo.py)."""
    import orjson

    seen: dict[str, None] = {}
    for line in timeline.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
            incident, kind = entry.get("incident"), entry.get("kind")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(kind, str) and kind.startswith("operator."):
            continue
        if isinstance(incident, str) and incident:  # "" (an empty id, as recorded before null) is no incident
            seen.setdefault(incident)
    return list(seen)


def resolve_incident(timeline: Path, given: str) -> str:
    """The incident `given` names: itself, or the one id it is a prefix of (as git's short hashes are).

    Unknown or ambiguous: exit 3 listing the candidates. Without a timeline file, `given` is used as is.
    """
    if not timeline.is_file():
        return given
    ids = incident_ids(timeline)
    if given in ids:
        return given
    matches = [i for i in ids if i.startswith(given)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise fail(f"incident {given!r} is ambiguous in {timeline}; candidates: {', '.join(matches)}", EXIT_CONFIG)
    recent = ", ".join(ids[-10:]) or "none"
    raise fail(f"no incident {given!r} in {timeline}; latest incidents: {recent}", EXIT_CONFIG)
