"""`responder deadletter replay`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from responder.cli.options import BootstrapOpt, JsonOpt, kafka_server
from responder.cli.output import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_WITHHELD,
    console,
    emit_json,
    print_error,
    print_ok,
)
from responder.errors import ConfigError
from responder.settings import Settings

if TYPE_CHECKING:
    from responder.ingest.deadletter import ReplayResult

app = typer.Typer(help="Inspect and replay the dead-letter topic.", no_args_is_help=True)


@app.command("replay")
def replay_cmd(
    reason: Annotated[str | None, typer.Option(help="only records dead-lettered for this reason")] = None,
    topic: Annotated[str | None, typer.Option(help="publish here instead of each record's original topic")] = None,
    limit: Annotated[int | None, typer.Option(help="stop after this many records")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be replayed, send nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="send again what an earlier replay sent, and each copy of a "
                                        "record dead-lettered twice (never one too old for its destination)")] = False,
    bootstrap: BootstrapOpt = None,
    json: JsonOpt = False,
) -> None:
    """Re-publish dead-lettered records (original bytes, key and headers, without the dlq.* headers), each original
    record once per destination topic: the copies of a record dead-lettered twice are one (see docs/security.md).
    Exit status: 0 when every chosen record was sent (--dry-run: would be); 5 when none failed but some, older than
    their destination's retention, were withheld (too_old; --dry-run predicts it too); 1 when a send failed."""
    from responder.ingest.deadletter import replay_deadletters
    from responder.ingest.security import kafka_client_options

    settings = Settings()
    server = kafka_server(settings, bootstrap)
    try:
        result = asyncio.run(replay_deadletters(server, settings.deadletter_topic, reason=reason, to_topic=topic,
                                                limit=limit, dry_run=dry_run,
                                                options=kafka_client_options(settings), force=force))
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    if json:
        emit_json({"scanned": result.scanned, "replayed": result.replayed, "dry_run": dry_run,
                   "already_replayed": result.already, "duplicates": result.duplicates,
                   "unreplayable": result.unreplayable, "own_topic": result.own_topic, "too_old": result.too_old,
                   "by_reason": dict(result.by_reason), "targets": dict(result.targets),
                   "published": result.published, "failed": result.failed, "error": result.error,
                   "failed_reached_topic": _reached(result)})
    else:
        verb = "would replay" if dry_run else "replayed"
        console.print(f"✓ {verb} {result.replayed} of {result.scanned} dead-lettered record(s); {result.already} "
                      f"already replayed (--force sends them again), {result.duplicates} more copy(ies) of records "
                      f"this replay sent, skipped, {result.unreplayable} cut copies not replayable, {result.own_topic} "
                      "from the dead-letter topic itself (or its ledger) not sent back there", highlight=False)
        if result.too_old:
            withheld = "would not be replayed" if dry_run else "not replayed"
            print_error(f"{result.too_old} dead letter(s) older than their destination topic's retention {withheld} "
                        "(it would delete them at once or soon after): replay them with --topic to a topic that keeps "
                        "them longer (retention.ms), or one with message.timestamp.type=LogAppendTime", "!", "yellow")
        if result.replayed:
            table = Table("by", "value", "records")
            for reason, n in sorted(result.by_reason.items()):
                table.add_row("reason", reason, str(n))
            for target, n in sorted(result.targets.items()):
                table.add_row("to topic", target, str(n))
            console.print(table)
    if result.failed is not None:
        _say_failed(result, result.failed, listed=not json)
        raise typer.Exit(EXIT_FAILED)
    if result.too_old:  # a script reading the status alone must not take a withheld record for a replayed one
        raise typer.Exit(EXIT_WITHHELD)


def _reached(result: ReplayResult) -> bool | None:
    """Whether the dead letter a replay stopped at reached its topic (None: unknown, its send timed out, or no
    failure: there is no such record)."""
    if result.failed is None or result.uncertain:
        return None
    return result.unnoted


def _say_failed(result: ReplayResult, failed: str, *, listed: bool) -> None:
    """Which dead letters a replay that stopped on a failed send published (listed unless the JSON has them)."""
    if listed:
        for line in result.published:
            print_ok(f"published {line}")
    where = ("it reached its topic but not the ledger: a later replay sends it once more" if result.unnoted else
             "its send timed out, so it may have reached its topic: a later replay sends it once more"
             if result.uncertain else "it was not published")
    print_error(f"replay stopped at dead letter {failed} ({result.error}): {where}, nor any dead letter after it; "
                f"{len(result.published)} published before it. Run the same replay again to send the rest "
                "(without --force, those published are skipped)")
