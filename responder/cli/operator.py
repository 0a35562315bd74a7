"""`--via kafka`: an operator command sent as a signed request to the running service that owns the timeline.

The service executes it through the engine's step runner, records it on its own timeline with the
operator's identity, and answers on the replies topic; the command waits for that answer and prints it.
"""

from __future__ import annotations

import asyncio
import getpass
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from responder.cli.output import EXIT_CONFIG, EXIT_FAILED, err_console, print_error
from responder.errors import ConfigError
from responder.models.operator import Action, OperatorReply, OperatorRequest
from responder.models.signed import first_problem
from responder.settings import Settings
from responder.timeline.checkpoint import Checker

if TYPE_CHECKING:
    from responder.timeline.recorder import Recorder


class Via(StrEnum):
    """Where an operator command runs."""

    OFFLINE = "offline"
    KAFKA = "kafka"


ViaOpt = Annotated[Via, typer.Option(
    "--via", help="offline: act on a stopped service's timeline file; kafka: ask the running service to act")]
ByOpt = Annotated[str | None, typer.Option("--by", help="who asks (recorded; default: your user name)")]
UNVERIFIABLE = ("--via kafka checks that the answer comes from the service: set RESPONDER_TIMELINE_VERIFY_KEY to the "
                "public key of the replicas' RESPONDER_TIMELINE_SIGNING_KEY (`responder timeline keygen`), or "
                "RESPONDER_OPERATOR_UNVERIFIED_REPLIES=true to accept an answer that cannot be verified")
OFFLINE_HINT = "if the service is running, use --via kafka so that it acts and records on its own timeline"


def note_unsigned(recorder: Recorder, path: Path) -> None:
    """One line when an offline command added entries to a signed timeline without the key to checkpoint them."""
    if added := recorder.unsigned():
        run, cadence = recorder.unsigned_run(), recorder.tail_cadence
        past = (f"; that makes {run} unsigned entries in a row, more than the cadence ({cadence}): `timeline verify "
                "--public-key` reports an unsigned offline tail (exit 4, unproven) and further offline commands "
                f"are refused until they are signed: `responder timeline sign --force {path}` where the key is set, "
                "once checked against the archive or an anchor"
                if run > cadence else "")
        err_console.print(f"! the {added} entries added to {path} are unsigned until the service's next checkpoint "
                          "(RESPONDER_TIMELINE_SIGNING_KEY is not set here); `timeline verify` counts them in its "
                          f"unsigned tail{past}", style="yellow", markup=False, soft_wrap=True)


def open_offline(path: Path, settings: Settings) -> Recorder:
    """An offline command's recorder on `path`, under the file's lock; ConfigError (exit 3, one line) when another
    writer holds it (the service: `--via kafka`) or the file cannot be opened for writing, before anything is done."""
    from responder.errors import TimelineError
    from responder.timeline.recorder import Recorder

    try:
        return Recorder.offline(path, settings)
    except TimelineError as exc:
        raise ConfigError(f"{exc}; {OFFLINE_HINT}") from exc
    except OSError as exc:
        raise ConfigError(f"timeline {path} cannot be opened for writing ({exc.strerror or exc}): point --timeline "
                          "(RESPONDER_TIMELINE_PATH) at the service's timeline file") from exc


def refuse_past_cadence(recorder: Recorder, path: Path) -> None:
    """ConfigError, the recorder closed with nothing written, when an offline command without the signing key would
    add to a signed timeline whose unsigned run is already longer than the cadence (see `verify_lines`)."""
    if recorder.past_cadence():
        recorder.close()
        raise ConfigError(f"{path} already holds {recorder.unsigned_run()} unsigned entries after its last "
                          f"checkpoint, more than the cadence ({recorder.tail_cadence}), and "
                          "RESPONDER_TIMELINE_SIGNING_KEY is not set here: check them against the archive or an "
                          f"anchor, then sign them with `responder timeline sign --force {path}` where the key is set "
                          "(starting the service signs them too, but `verify` reports them unproven until that "
                          "acknowledges them); nothing was written")


def decision_ttl(settings: Settings) -> float:
    """How long a decision or operator request the CLI signs stays valid: `approval_decision_ttl`, at most
    `approval_decision_max_lifetime` less a margin for clock skew (a minute, or a tenth of the maximum when less), as
    the service refuses one living longer than the maximum from its own now. Set above it: ConfigError naming both;
    left at its default: lowered to it (since 2026-12-07)."""
    most = settings.approval_decision_max_lifetime
    ttl, bound = settings.approval_decision_ttl, most - min(60.0, most / 10)
    if ttl <= bound:
        return ttl
    if "approval_decision_ttl" not in settings.model_fields_set:
        return bound
    raise ConfigError(f"RESPONDER_APPROVAL_DECISION_TTL={ttl:g} is above RESPONDER_APPROVAL_DECISION_MAX_LIFETIME="
                      f"{most:g} less a margin for clock skew: set it at most {bound:g}")


def ask(settings: Settings, action: Action, args: dict[str, Any], *, incident: str | None = None,
        by: str | None = None) -> OperatorReply:
    """Send a signed request and wait for the service's reply; ConfigError / typer.Exit on failure."""
    from responder.ingest.operator import request_and_wait
    from responder.ingest.security import kafka_client_options

    key_id = settings.approval_key_id or next(iter(sorted(settings.approval_keys)), None)
    if not settings.kafka_bootstrap or key_id is None or key_id not in settings.approval_keys:
        raise ConfigError("--via kafka needs RESPONDER_KAFKA_BOOTSTRAP, RESPONDER_APPROVAL_KEYS='{\"id\": \"secret\"}'"
                          " and RESPONDER_APPROVAL_KEY_ID to sign the request")
    checker = Checker.from_setting(settings.timeline_verify_key)  # ConfigError on a key that is not one
    if checker is None and not settings.operator_unverified_replies:
        raise ConfigError(UNVERIFIABLE)
    now = datetime.now(UTC)
    try:
        request = OperatorRequest(id=uuid.uuid4().hex, action=action, by=by or getpass.getuser(), incident=incident,
                                  args=args, issued_at=now, expires_at=now + timedelta(seconds=decision_ttl(settings)))
    except ValidationError as exc:  # args over ARGS_MAX_BYTES, a `by` over 200 characters: the service would refuse
        raise ConfigError(f"not an operator request: {first_problem(exc, OperatorRequest)}") from None
    secret = settings.approval_keys[key_id].get_secret_value().encode()
    heard = asyncio.run(request_and_wait(settings.kafka_bootstrap, settings.operator_requests_topic,
                                         settings.operator_replies_topic, request, key_id, secret,
                                         settings.operator_reply_timeout, kafka_client_options(settings), checker))
    reply = heard.reply
    if reply is None:
        refused = f"; refused {heard.refused_count} forged or mismatched replies " \
            f"({'; '.join(heard.refused[:3])})" if heard.refused else ""  # anyone's text: print_error escapes it
        print_error(f"no {'verified ' if checker else ''}answer from the service within "
                    f"{settings.operator_reply_timeout:g}s on {settings.operator_replies_topic}{refused}: is "
                    f"`responder run` consuming {settings.operator_requests_topic}? (request {request.id})")
        raise typer.Exit(EXIT_FAILED)
    if not heard.verified:
        err_console.print(f"⚠ UNVERIFIED reply to request {request.id}: no RESPONDER_TIMELINE_VERIFY_KEY, so it may "
                          "not come from the service (operator_unverified_replies is on)", markup=False, soft_wrap=True)
    if not reply.ok and not reply.outcomes:
        print_error(f"the service refused request {reply.id}: {reply.error}")  # unverified, anyone's text
        raise typer.Exit(EXIT_CONFIG if reply.error and "invalid" in reply.error else EXIT_FAILED)
    return reply
