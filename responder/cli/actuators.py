"""`responder actuators list|iam-policy`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from responder.actuators import registry
from responder.actuators.contract import examples
from responder.actuators.policy import PolicyScope, actuators_used, minimal_policy
from responder.catalog import load_runbooks
from responder.cli.options import JsonOpt
from responder.cli.output import EXIT_CONFIG, console, emit_json, print_error
from responder.errors import ConfigError
from responder.settings import Settings

app = typer.Typer(help="The registered actuators and the IAM policy they need.", no_args_is_help=True)


@app.command("list")
def list_actuators(json: JsonOpt = False) -> None:
    """Every registered actuator with its parameters (* = required), permissions, destructiveness and reverse."""
    rows: list[dict[str, Any]] = []
    for a in registry:
        row = {"name": a.name, "permissions": list(a.permissions), "destructive": a.destructive,
               "notifies": a.notifies,
               "reverse": a.reverse, "irreversible": a.irreversible or None,
               "params": a.params.model_json_schema(), "examples": examples(a)}
        rows.append(row)
        if not json:
            flag = " [red]destructive[/red]" if a.destructive else ""
            console.print(f"{a.name}{flag}  reverse={a.reverse or '-'}  "
                          f"permissions={', '.join(a.permissions) or '-'}")
            console.print(f"  params: {parameters(a.params.model_json_schema())}", markup=False, highlight=False)
    if json:
        emit_json({"actuators": rows})


def parameters(schema: dict[str, Any]) -> str:
    """`name*: type` for each parameter of a JSON Schema, required ones starred."""
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        kinds = [p.get("type") for p in prop.get("anyOf", [prop])]
        kind = "|".join(str(k) for k in kinds if k and k != "null") or "object"
        out.append(f"{name}{'*' if name in required else ''}: {kind}")
    return ", ".join(out) or "-"


def _bucket(url: str | None) -> tuple[str | None, str]:
    """`s3://bucket/prefix` (or `sagemaker+s3://…`) → (bucket, prefix); (None, "") for anything else."""
    if not url:
        return None, ""
    url = url.removeprefix("sagemaker+")
    if not url.startswith("s3://"):
        return None, ""
    bucket, _, prefix = url[5:].partition("/")
    return bucket or None, prefix


def scope_from(settings: Settings) -> PolicyScope:
    """What the generated policy is scoped to, and what it protects, from the settings."""
    model_bucket, model_prefix = _bucket(settings.model_registry)
    return PolicyScope(
        account=settings.aws_account_id or "*", region=settings.aws_region, ssm_prefix=settings.model_ssm_prefix,
        model_bucket=model_bucket, model_prefix=model_prefix, self_principals=settings.self_principal_arns,
        self_policies=settings.self_policy_arns, timeline_bucket=_bucket(settings.timeline_archive)[0],
        self_kms_keys=settings.self_kms_key_arns,
    )


@app.command("iam-policy")
def iam_policy(
    directory: Annotated[Path, typer.Argument(help="runbook directory")] = Path("runbooks"),
    no_undo: Annotated[bool, typer.Option("--no-undo", help="leave out the reverse actuators' permissions")] = False,
) -> None:
    """Print the least-privilege IAM policy (JSON) for the actuators the runbooks use; no wildcard actions."""
    try:
        books = load_runbooks(directory, registry)
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_CONFIG) from exc
    scope = scope_from(Settings())  # invalid settings: one line each, exit 3 (cli/app.py)
    doc = minimal_policy(actuators_used(books, registry, with_reverse=not no_undo), registry, scope)
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
