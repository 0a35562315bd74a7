"""`responder events normalise|publish|formats` and `responder deadletter replay`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from responder import log
from responder.auth import signed_headers
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_USAGE, console, emit_json, err_console
from responder.errors import ConfigError, EventRejected
from responder.models.event import Event
from responder.settings import Settings

events_app = typer.Typer(help="Decode, inspect and publish alert records.", no_args_is_help=True)
deadletter_app = typer.Typer(help="Inspect and replay the dead-letter topic.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON document per line")]
Paths = Annotated[list[Path], typer.Argument(help="JSON object, JSON array or JSON Lines files", exists=True,
                                             dir_okay=False)]
BootstrapOpt = Annotated[str | None, typer.Option(help="Kafka bootstrap (default: RESPONDER_KAFKA_BOOTSTRAP)")]


def register(app: typer.Typer) -> None:
    """Add the `events` and `deadletter` groups to `app`."""
    app.add_typer(events_app, name="events")
    app.add_typer(deadletter_app, name="deadletter")


def summary(event: Event) -> dict[str, Any]:
    """The fields `--json` prints for one event."""
    return {
        "id": event.id, "source": event.source, "type": event.type, "severity": event.severity.score,
        "severity_label": event.severity.label.value, "time": event.time.isoformat(), "account": event.account,
        "region": event.region, "actor": event.actor,
        "resources": [{"kind": r.kind.value, "id": r.id} for r in event.resources],
        "incident_key": event.incident_key,
    }


def kafka_server(settings: Settings, bootstrap: str | None) -> str:
    """--bootstrap, else the configured Kafka; exit 3 saying how to configure one when neither is set."""
    log.configure(settings.log_format, "warning")
    server = bootstrap or settings.kafka_bootstrap
    if not server:
        err_console.print("[red]✗ no Kafka: pass --bootstrap or set RESPONDER_KAFKA_BOOTSTRAP")
        raise typer.Exit(EXIT_CONFIG)
    return server


@events_app.command("normalise")
def normalise_cmd(
    paths: Paths,
    json: JsonOpt = False,
    fmt: Annotated[str | None, typer.Option("--format", help="force a format or family (see `events formats`)")]
    = None,
) -> None:
    """Decode files into normalised events; exit 1 naming the file and the reason if one cannot be decoded."""
    from responder.normalise import decode_doc, known, parse_documents

    if fmt is not None and not known(fmt):
        err_console.print(f"[red]✗ unknown format {fmt!r}; see `responder events formats`")
        raise typer.Exit(EXIT_USAGE)
    failed = 0
    for path in paths:
        try:
            events = [e for doc in parse_documents(path.read_bytes()) for e in decode_doc(doc, fmt)]
        except (EventRejected, OSError) as exc:
            failed += 1
            reason = getattr(exc, "reason_code", "unreadable")
            if json:
                emit_json({"ok": False, "path": str(path), "reason": reason, "detail": str(exc)})
            err_console.print(f"[red]✗ {path}: cannot decode ({reason}): {exc}")
            continue
        for event in events:
            if json:
                emit_json({"path": str(path), **summary(event)})
            else:
                keys = ", ".join(f"{r.kind.value}:{r.id}" for r in event.resources) or "-"
                console.print(escape(f"{path.name}: {event.source} {event.type} "
                                     f"[{event.severity.label.value} {event.severity.score:g}] "
                                     f"{event.time.isoformat()} key={event.incident_key} resources={keys}"),
                              highlight=False, emoji=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)


@events_app.command("formats")
def formats_cmd(json: JsonOpt = False) -> None:
    """List the registered formats in detection order."""
    from responder.normalise import formats

    for name, fmt in formats().items():
        doc = (fmt.decode.__doc__ or "").strip().splitlines()[0] if fmt.decode.__doc__ else ""
        if json:
            emit_json({"format": name, "family": fmt.family, "description": doc})
        else:
            console.print(f"{name:28} {doc}", highlight=False)


def _record_values(path: Path, split_lines: bool) -> list[bytes]:
    data = path.read_bytes()
    if split_lines:
        return [line for line in data.splitlines() if line.strip()]
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return [line for line in data.splitlines() if line.strip()]
    return [data]


@events_app.command("publish")
def publish_cmd(
    paths: Paths,
    topic: Annotated[str, typer.Option(help="destination topic")] = "security.alerts",
    sign_key_id: Annotated[str | None, typer.Option(help="sign with this key id from RESPONDER_EVENT_SIGNING_KEYS")]
    = None,
    key: Annotated[str | None, typer.Option(help="Kafka record key")] = None,
    lines: Annotated[bool, typer.Option("--lines", help="one record per line (JSON Lines)")] = False,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Publish each file as one record (JSON Lines: one per line), optionally HMAC-signed."""
    from responder.ingest.kafka import publish
    from responder.ingest.security import kafka_client_options

    settings = Settings()
    server = kafka_server(settings, bootstrap)
    secret = None
    if sign_key_id is not None:
        found = settings.event_signing_keys.get(sign_key_id)
        if found is None:
            err_console.print(f"[red]✗ no signing key {sign_key_id!r} in RESPONDER_EVENT_SIGNING_KEYS")
            raise typer.Exit(EXIT_CONFIG)
        secret = found.get_secret_value().encode()

    async def main() -> int:
        sent = 0
        options = kafka_client_options(settings)
        for path in paths:
            for value in _record_values(path, lines):
                headers = signed_headers(sign_key_id, secret, value) if sign_key_id and secret else []
                await publish(server, topic, [value], key=key.encode() if key else None, headers=headers,
                              options=options)
                sent += 1
        return sent

    try:
        count = asyncio.run(main())
    except ConfigError as exc:  # a TLS / SASL failure or an unreadable secret file
        err_console.print(f"[red]✗ {exc}", markup=False)
        raise typer.Exit(EXIT_CONFIG) from exc
    console.print(f"✓ published {count} record(s) to {topic}" + (f", signed by {sign_key_id}" if sign_key_id else ""))


@deadletter_app.command("replay")
def replay_cmd(
    reason: Annotated[str | None, typer.Option(help="only records dead-lettered for this reason")] = None,
    topic: Annotated[str | None, typer.Option(help="publish here instead of each record's original topic")] = None,
    limit: Annotated[int | None, typer.Option(help="stop after this many records")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be replayed, send nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="send again what an earlier replay already sent")] = False,
    bootstrap: BootstrapOpt = None,
    json: JsonOpt = False,
) -> None:
    """Re-publish dead-lettered records (original bytes, key and headers, without the dlq.* headers)."""
    from responder.ingest.deadletter import replay_deadletters
    from responder.ingest.security import kafka_client_options

    settings = Settings()
    server = kafka_server(settings, bootstrap)
    try:
        result = asyncio.run(replay_deadletters(server, settings.deadletter_topic, reason=reason, to_topic=topic,
                                                limit=limit, dry_run=dry_run, options=kafka_client_options(settings),
                                                force=force))
    except ConfigError as exc:
        err_console.print(f"[red]✗ {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    if json:
        emit_json({"scanned": result.scanned, "replayed": result.replayed, "dry_run": dry_run,
                   "already_replayed": result.already, "unreplayable": result.unreplayable,
                   "by_reason": dict(result.by_reason), "targets": dict(result.targets)})
    else:
        verb = "would replay" if dry_run else "replayed"
        console.print(f"✓ {verb} {result.replayed} of {result.scanned} dead-lettered record(s) "
                      f"{dict(result.by_reason)} → {dict(result.targets)}; {result.already} already replayed, "
                      f"{result.unreplayable} cut copies not replayable", highlight=False)
