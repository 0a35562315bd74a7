"""`responder events normalise|publish|formats`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from responder.auth import signed_headers
from responder.cli.options import BootstrapOpt, JsonOpt, kafka_server, readable
from responder.cli.output import EXIT_CONFIG, EXIT_USAGE, console, emit_json, print_error
from responder.errors import EventRejected, PartlyRejected
from responder.escapes import plain
from responder.models.event import Event
from responder.settings import Settings

app = typer.Typer(help="Decode, inspect and publish alert records.", no_args_is_help=True)
Paths = Annotated[list[Path], typer.Argument(help="JSON object, JSON array or JSON Lines files",
                                             callback=readable("event file"))]


def summary(event: Event) -> dict[str, Any]:
    """The fields `--json` prints for one event."""
    return {
        "id": event.id, "source": event.source, "type": event.type, "severity": event.severity.score,
        "severity_label": event.severity.label.value, "time": event.time.isoformat(), "account": event.account,
        "region": event.region, "actor": event.actor,
        "resources": [{"kind": r.kind.value, "id": r.id} for r in event.resources],
        "incident_key": event.incident_key,
    }


@app.command("normalise")
def normalise_cmd(
    paths: Paths,
    json: JsonOpt = False,
    fmt: Annotated[str | None, typer.Option("--format", help="force a format or family (see `events formats`)")]
    = None,
) -> None:
    """Decode files into normalised events; exit 3 naming the file and the reason if one cannot be decoded.

    As the service does, each document of a JSON Lines file and each part of a record of many is decoded on its own:
    the good ones are printed, each bad one is listed (`document [i] of n`, the record's own `... [i] of n`)."""
    from responder.normalise import decode_doc, known, parse_documents

    if fmt is not None and not known(fmt):
        print_error(f"unknown format {fmt!r}; see `responder events formats`")
        raise typer.Exit(EXIT_USAGE)
    failed = 0
    doc: dict[str, list[dict[str, Any]]] = {"events": [], "errors": []}
    for path in paths:
        events: list[Event] = []
        errors: list[tuple[str, str]] = []
        try:
            found = parse_documents(path.read_bytes())
        except (EventRejected, OSError) as exc:
            errors.append((getattr(exc, "reason_code", "unreadable"), str(exc)))
            found = []
        for n, each in enumerate(found):
            try:
                events += decode_doc(each, fmt)
            except PartlyRejected as exc:  # the good parts are printed, as the service acts on them
                events += exc.kept
                errors.append((exc.reason_code, _document(n, len(found)) + exc.detail))
            except EventRejected as exc:
                errors.append((exc.reason_code, _document(n, len(found)) + exc.detail))
        failed += bool(errors)
        for reason, detail in errors:
            if json:
                doc["errors"].append({"path": str(path), "reason": reason, "detail": detail})
            print_error(f"{path}: cannot decode ({reason}): {detail}")
        for event in events:
            if json:
                doc["events"].append({"path": str(path), **summary(event)})
            else:
                keys = ", ".join(f"{r.kind.value}:{r.id}" for r in event.resources) or "-"
                console.print(plain(f"{path.name}: {event.source} {event.type} "  # an alert's: no markup, no escapes
                                    f"[{event.severity.label.value} {event.severity.score:g}] "
                                    f"{event.time.isoformat()} key={event.incident_key} resources={keys}"),
                              markup=False, highlight=False)
    if json:
        emit_json({"ok": not failed, **doc})
    if failed:
        raise typer.Exit(EXIT_CONFIG)


def _document(n: int, of: int) -> str:
    """`document [n] of m: ` for a file of several documents (JSON Lines), else nothing."""
    return f"document [{n}] of {of}: " if of > 1 else ""


@app.command("formats")
def formats_cmd(json: JsonOpt = False) -> None:
    """List the registered formats in detection order."""
    from responder.normalise import formats

    rows = []
    for name, fmt in formats().items():
        doc = (fmt.decode.__doc__ or "").strip().splitlines()[0] if fmt.decode.__doc__ else ""
        rows.append({"format": name, "family": fmt.family, "description": doc})
        if not json:
            console.print(f"{name:28} {doc}", highlight=False)
    if json:
        emit_json({"formats": rows})


def _record_values(path: Path, split_lines: bool) -> list[bytes]:
    data = path.read_bytes()
    if split_lines:
        return [line for line in data.splitlines() if line.strip()]
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return [line for line in data.splitlines() if line.strip()]
    return [data]


@app.command("publish")
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
    from responder.ingest.clients import CONNECT_TIMEOUT
    from responder.ingest.kafka import publish
    from responder.ingest.security import kafka_client_options

    settings = Settings()
    server = kafka_server(settings, bootstrap)
    secret = None
    if sign_key_id is not None:
        found = settings.event_signing_keys.get(sign_key_id)
        if found is None:
            print_error(f"no signing key {sign_key_id!r} in RESPONDER_EVENT_SIGNING_KEYS")
            raise typer.Exit(EXIT_CONFIG)
        secret = found.get_secret_value().encode()

    async def main() -> int:
        sent = 0
        options = kafka_client_options(settings)
        for path in paths:
            for value in _record_values(path, lines):
                headers = signed_headers(sign_key_id, secret, value) if sign_key_id and secret else []
                await publish(server, topic, [value], key=key.encode() if key else None, headers=headers,
                              options=options, connect_timeout=settings.kafka_connect_timeout,
                              wait_set_by=CONNECT_TIMEOUT)
                sent += 1
        return sent

    count = asyncio.run(main())  # a TLS / SASL failure, an unreadable secret file, no broker: one line, exit 3
    console.print(f"✓ published {count} record(s) to {topic}" + (f", signed by {sign_key_id}" if sign_key_id else ""))
