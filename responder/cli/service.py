"""`responder run` and `responder demo`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from responder import log, tracing
from responder.cli.options import JsonOpt
from responder.cli.output import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    console,
    emit_json,
    print_error,
    print_ok,
    timeline_table,
)
from responder.errors import ConfigError
from responder.errors_kafka import ConsumerRebuildsExhausted, ReplicaFenced, TransactionFailed
from responder.models.runbook import Runbook
from responder.settings import Settings

app = typer.Typer()


KafkaPortOpt = Annotated[int | None, typer.Option(help="port for the embedded broker (default: a free one)")]
AwsPortOpt = Annotated[int | None, typer.Option(help="port for the local AWS API (default: a free one)")]


def _sandbox(kafka_port: int | None, aws_port: int | None) -> Any:
    from responder.sandbox import AwsSandbox, Broker, Sandbox

    return Sandbox(broker=Broker(port=kafka_port), aws=AwsSandbox(port=aws_port))


def _serve_sandbox(box: Any, json: bool, extra: dict[str, str] | None = None, hint: str = "",
                   summary: dict[str, Any] | None = None) -> None:
    """Print the settings that point at `box` (JSON or `export` lines), then wait for Ctrl-C or SIGTERM.

    With --json, one document: the settings, the topics, and the demo's `summary` when there is one.
    """
    import signal
    import threading

    from responder.sandbox import SANDBOX_CREDENTIALS

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    env = {
        "RESPONDER_KAFKA_BOOTSTRAP": box.broker.bootstrap,
        "RESPONDER_AWS_ENDPOINT_URL": box.aws.endpoint_url,
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
        "RESPONDER_AWS_ACCOUNT_ID": box.aws.account,  # the account guard's: the sandbox's, not a production one
        **(extra or {}),
    }
    if json:
        emit_json({**env, "topics": list(box.topics), "broker_pid": box.broker.pid,
                   **({"demo": summary} if summary is not None else {})})
    else:
        console.print("sandbox running; in another shell:")
        for k, v in env.items():
            console.print(f"  export {k}={v}", soft_wrap=True)
        console.print(f"{hint}topics: {', '.join(box.topics)}\nCtrl-C stops it.")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@app.command("sandbox")
def sandbox_cmd(kafka_port: KafkaPortOpt = None, aws_port: AwsPortOpt = None, json: JsonOpt = False) -> None:
    """Start the embedded broker and a local AWS API until Ctrl-C; prints the settings to point at them."""
    log.configure("console", "warning")
    with _sandbox(kafka_port, aws_port) as box:
        _serve_sandbox(box, json)


def _runbooks_checked(settings: Settings) -> list[Runbook]:
    """The runbooks `run` serves, read once; ConfigError when one uses an actuator whose extra is not installed (a
    model rollback without `signing`): at start, not at the incident (responder/catalog/extras.py); under `--dry-run`
    too, whose plans verify signatures. `run` only: the demo and tabletops serve without the extras."""
    from responder.actuators.registry import registry
    from responder.catalog import load_runbooks
    from responder.catalog.defaults import with_default_escalation
    from responder.catalog.extras import refuse_missing_extras

    books = load_runbooks(settings.runbooks_dir, registry)
    refuse_missing_extras(with_default_escalation(books, settings.default_on_failure, registry), registry)
    return books


@app.command()
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan every step, call no actuator")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="start the embedded broker and a local AWS API")] = False,
    runbooks: Annotated[Path | None, typer.Option(help="runbook directory")] = None,
    timeline: Annotated[Path | None, typer.Option(help="timeline file")] = None,
) -> None:
    """Run the service: consume alerts, run runbooks, record the timeline, until SIGTERM/SIGINT."""
    from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox, sandbox_account
    from responder.service import health_server, rebuilds, rebuilds_exhausted, serve_rejoining

    overrides: dict[str, object] = {}
    if dry_run:
        overrides["dry_run"] = True
    if runbooks is not None:
        overrides["runbooks_dir"] = runbooks
    if timeline is not None:
        overrides["timeline_path"] = timeline
    box: Sandbox | None = None
    try:
        configured = Settings(**overrides)
        log.configure(configured.log_format, configured.log_level)  # before the sandbox logs anything
        if sandbox:
            box = Sandbox().start()
            overrides |= {
                "kafka_bootstrap": box.broker.bootstrap, "aws_endpoint_url": box.aws.endpoint_url,
                "aws_access_key_id": SANDBOX_CREDENTIALS["aws_access_key_id"],
                "aws_secret_access_key": SANDBOX_CREDENTIALS["aws_secret_access_key"],
                "aws_account_id": sandbox_account(configured.aws_account_id, box.aws.account),
            }
            structlog.get_logger(__name__).info("sandbox_started", kafka=box.broker.bootstrap,
                                                 aws=box.aws.endpoint_url)
        settings = Settings(**overrides)
        books = _runbooks_checked(settings)
        tracing.configure(settings.otel_exporter_otlp_endpoint, "responder")

        async def main() -> None:  # fenced, a failed transaction, Kafka unreachable after: rejoins (rejoin.py)
            health = health_server(settings)  # the process's: it keeps its port while a fenced replica rejoins
            try:
                await serve_rejoining(rebuilds(settings, metrics_server=health, runbooks=books),
                                      rejoins=settings.fenced_rejoins)
            except BaseExceptionGroup as group:  # the loops' task groups: a consumer out of rebuilds is one line
                raise rebuilds_exhausted(group) or group from None

        asyncio.run(main())
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    # too often, for the supervisor (StillUnreachable is a TransactionFailed, not the ConfigError above: exit 75)
    except (ReplicaFenced, TransactionFailed, ConsumerRebuildsExhausted) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_TEMPFAIL) from exc
    finally:
        if box is not None:
            box.stop()


@app.command()
def demo(
    timeline: Annotated[
        Path | None, typer.Option(help="where to write the timeline (default: under .responder/)")
    ] = None,
    runbooks: Annotated[Path | None, typer.Option(
        help="runbook directory (default: ./runbooks, else the runbooks shipped with the package)")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the sandbox running afterwards (until Ctrl-C), to try "
                                                       "`undo` and `timeline show` on it")] = False,
    kafka_port: KafkaPortOpt = None,
    aws_port: AwsPortOpt = None,
    json: JsonOpt = False,
    via: Annotated[str, typer.Option("--via", help="kafka: publish the finding; webhook: POST it to the intake")]
    = "kafka",
) -> None:
    """Leaked key → GuardDuty finding on Kafka → key deactivated in a sandbox AWS → verified timeline."""
    if via not in ("kafka", "webhook"):
        print_error(f"--via {via!r}: valid choices: kafka, webhook")
        raise typer.Exit(EXIT_USAGE)
    from responder.demo import default_runbooks_dir, default_timeline_path, run_demo

    log.configure("console", "warning")
    path = timeline or default_timeline_path()
    if not json:
        console.print("starting the embedded broker and a local AWS API, seeding an IAM user with an access key…")
        if via == "webhook":
            console.print("the finding is POSTed to `responder intake` (bearer token), which produces it signed")
    box = _sandbox(kafka_port, aws_port).start() if keep else None
    try:
        result = asyncio.run(run_demo(path, runbooks or default_runbooks_dir(), sandbox=box, via=via))
        summary = _demo_report(result, path, json, quiet=json and box is not None)
        if box is not None:
            short = (_incident(result) or "…")[:8]
            _serve_sandbox(box, json, {"RESPONDER_TIMELINE_PATH": str(path.resolve())}, summary=summary,
                           hint=f"try: responder timeline show {path} --incident {short}; responder undo {short}\n")
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    finally:
        if box is not None:
            box.stop()
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


def _incident(result: Any) -> str | None:
    return next((e.incident for e in result.entries if e.kind == "incident.opened"
                 and result.key_id in str(e.body.get("group_key"))), None)


def _demo_report(result: Any, path: Path, json: bool, quiet: bool = False) -> dict[str, Any]:
    """Print the demo's outcome (one JSON document with --json; nothing when `quiet`); return it as a dict."""
    incident = _incident(result)
    summary = {"ok": result.ok, "key_id": result.key_id, "key_status": result.key_status,
               "incident": incident, "timeline": str(path), "entries": result.verified,
               "head": result.head, "seconds": round(result.seconds, 2), "broker_pid": result.broker_pid}
    if quiet:
        return summary
    if json:
        emit_json(summary)
    else:
        first = next((e.seq for e in result.entries if e.kind == "event.received"
                      and result.key_id in str(e.body)), 0)
        shown = [e for e in result.entries if e.seq >= first and (e.incident in (None, incident))]
        console.print(timeline_table(shown, title=f"incident {incident}", incident=False))
        console.print(f"access key {result.key_id} is now [bold]{result.key_status}[/bold] in the sandbox AWS")
        print_ok(f"timeline {path}: {result.verified} entries verify; head {result.head[:16]}…")  # --timeline's
        verdict = "[green]PASS[/green]" if result.ok else "[red]FAIL[/red]"
        console.print(f"{verdict} leaked key contained in {result.seconds:.1f}s (sandbox start to stop)")
    return summary
