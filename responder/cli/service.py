"""`responder run` and `responder demo`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from responder import log, tracing
from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_USAGE, console, emit_json, err_console, timeline_table
from responder.errors import ConfigError
from responder.settings import Settings


def register(app: typer.Typer) -> None:
    """Add the service commands to `app`."""
    app.command()(run)
    app.command()(demo)
    app.command("sandbox")(sandbox_cmd)


def sandbox_cmd(
    json: Annotated[bool, typer.Option("--json", help="print the endpoints as JSON")] = False,
) -> None:
    """Start the embedded broker and a local AWS API until Ctrl-C; prints the settings to point at them."""
    import signal
    import threading

    from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox

    log.configure("console", "warning")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Sandbox() as box:
        env = {
            "RESPONDER_KAFKA_BOOTSTRAP": box.broker.bootstrap,
            "RESPONDER_AWS_ENDPOINT_URL": box.aws.endpoint_url,
            "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
            "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
        }
        if json:
            emit_json({**env, "topics": list(box.topics), "broker_pid": box.broker.pid})
        else:
            console.print("sandbox running; in another shell:")
            for k, v in env.items():
                console.print(f"  export {k}={v}")
            console.print(f"topics: {', '.join(box.topics)}\nCtrl-C stops it.")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan every step, call no actuator")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="start the embedded broker and a local AWS API")] = False,
    runbooks: Annotated[Path | None, typer.Option(help="runbook directory")] = None,
    timeline: Annotated[Path | None, typer.Option(help="timeline file")] = None,
) -> None:
    """Run the service: consume alerts, run runbooks, record the timeline, until SIGTERM/SIGINT."""
    from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox
    from responder.service import Service, serve

    overrides: dict[str, object] = {}
    if dry_run:
        overrides["dry_run"] = True
    if runbooks is not None:
        overrides["runbooks_dir"] = runbooks
    if timeline is not None:
        overrides["timeline_path"] = timeline
    box: Sandbox | None = None
    try:
        if sandbox:
            box = Sandbox().start()
            overrides |= {
                "kafka_bootstrap": box.broker.bootstrap, "aws_endpoint_url": box.aws.endpoint_url,
                "aws_access_key_id": SANDBOX_CREDENTIALS["aws_access_key_id"],
                "aws_secret_access_key": SANDBOX_CREDENTIALS["aws_secret_access_key"],
            }
            console.print(f"sandbox: Kafka at {box.broker.bootstrap}, AWS at {box.aws.endpoint_url}")
        settings = Settings(**overrides)  # type: ignore[arg-type]
        log.configure(settings.log_format, settings.log_level)
        tracing.configure(settings.otel_exporter_otlp_endpoint, "responder")

        async def main() -> None:
            await serve(Service(settings))

        asyncio.run(main())
    except ConfigError as exc:
        err_console.print(f"✗ {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    finally:
        if box is not None:
            box.stop()


def demo(
    timeline: Annotated[
        Path | None, typer.Option(help="where to write the timeline (default: under .responder/)")
    ] = None,
    runbooks: Annotated[Path, typer.Option(help="runbook directory")] = Path("runbooks"),
    json: Annotated[bool, typer.Option("--json", help="machine-readable summary")] = False,
    via: Annotated[str, typer.Option("--via", help="kafka: publish the finding; webhook: POST it to the intake")]
    = "kafka",
) -> None:
    """Leaked key → GuardDuty finding on Kafka → key deactivated in a sandbox AWS → verified timeline."""
    if via not in ("kafka", "webhook"):
        err_console.print(f"[red]✗ --via {via!r}: valid choices: kafka, webhook")
        raise typer.Exit(EXIT_USAGE)
    from responder.demo import default_timeline_path, run_demo

    log.configure("console", "warning")
    path = timeline or default_timeline_path()
    if not json:
        console.print("starting the embedded broker and a local AWS API, seeding an IAM user with an access key…")
        if via == "webhook":
            console.print("the finding is POSTed to `responder intake` (bearer token), which produces it signed")
    try:
        result = asyncio.run(run_demo(path, runbooks, via=via))
    except ConfigError as exc:
        err_console.print(f"[red]✗ {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    incident = next((e.incident for e in result.entries if e.kind == "incident.opened"
                     and result.key_id in str(e.body.get("group_key"))), None)
    if json:
        emit_json({"ok": result.ok, "key_id": result.key_id, "key_status": result.key_status,
                   "incident": incident, "timeline": str(path), "entries": result.verified,
                   "head": result.head, "seconds": round(result.seconds, 2), "broker_pid": result.broker_pid})
    else:
        first = next((e.seq for e in result.entries if e.kind == "event.received"
                      and result.key_id in str(e.body)), 0)
        shown = [e for e in result.entries if e.seq >= first and (e.incident in (None, incident))]
        console.print(timeline_table(shown, title=f"incident {incident}", incident=False))
        console.print(f"access key {result.key_id} is now [bold]{result.key_status}[/bold] in the sandbox AWS")
        console.print(f"✓ timeline {path}: {result.verified} entries verify; head {result.head[:16]}…")
        verdict = "[green]PASS[/green]" if result.ok else "[red]FAIL[/red]"
        console.print(f"{verdict} leaked key contained in {result.seconds:.1f}s (sandbox start to stop)")
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
