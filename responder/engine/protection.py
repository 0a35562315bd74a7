"""Protected-id matching over every identifier form of a step's target.

A protected id is a glob over a name, an id, a path form (`role/admins/X`) or an ARN. A target is
known by many forms: the actuator's target string, its parameters, and every form of the event
resources those name (id, name, ARN, unique id such as AIDA…/AROA…/AKIA…, path). IAM names are
case-insensitive in AWS, so all matching is case-insensitive (for other ids that can only protect
more). An ARN pattern is matched part by part against ARN forms, including the ARN an IAM path form
implies in the event's account (any account when the event names none), so
`arn:aws:iam::*:role/ResponderRole` protects a role a finding names only as `ResponderRole`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from responder.models.event import Event, Resource, ResourceKind

IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")  # IAM's own character set, ASCII only
IAM_NAME_PARAMS = ("user_name", "role_name", "group_name", "principal_name", "policy_name")
IAM_KINDS = ("user", "role", "group", "policy", "instance-profile")
_PATH_FORM = re.compile(r"(user|role|group|policy|instance-profile)/(?:[^/]+/)*([^/]+)", re.IGNORECASE)
_KIND_OF_PARAM = {"user_name": "user", "role_name": "role", "group_name": "group"}
_RESOURCE_KIND = {ResourceKind.IAM_USER: "user", ResourceKind.IAM_ROLE: "role"}
_UNIQUE_ID = re.compile(r"(A[A-Z]{3}[A-Z0-9]{12,})(?::.*)?")  # AIDA…, AROA…, AKIA…, ASIA… (`AROA…:session`)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def invalid_iam_name(actuator: str, params: Mapping[str, Any]) -> str | None:
    """Why an IAM actuator's name parameter is not an IAM name (a look-alike letter, a space…), or None."""
    if not actuator.startswith("aws.iam."):
        return None
    for name in IAM_NAME_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and not IAM_NAME.fullmatch(value):
            return f"{name} {value!r} is outside IAM's character set [A-Za-z0-9_+=,.@-]"
    return None


def _iam_forms(kind: str, path_form: str, account: str | None) -> Iterator[str]:
    """`role/a/b/X` → `X`, `role/X`, `role/a/b/X` and their ARNs."""
    name = path_form.rsplit("/", 1)[-1]
    acct = account or "*"
    for form in {f"{kind}/{name}", path_form}:
        yield form
        yield f"arn:aws:iam::{acct}:{form}"
    yield name


def _resource_forms(res: Resource, account: str | None) -> Iterator[str]:
    yield res.id
    if res.name:
        yield res.name
    if res.arn:
        yield res.arn
    for key in ("principal_id", "unique_id", "role_id", "user_id", "path", "user_name"):
        value = res.attributes.get(key)
        if isinstance(value, str) and value:
            yield value
            unique = _UNIQUE_ID.fullmatch(value)
            if unique:
                yield unique.group(1)
    kind = _RESOURCE_KIND.get(res.kind)
    if kind is not None:
        path = res.attributes.get("path")
        prefix = path.strip("/") + "/" if isinstance(path, str) and path.strip("/") else ""
        yield from _iam_forms(kind, f"{kind}/{prefix}{res.name or res.id}", account)
    user = res.attributes.get("user_name")
    if res.kind is ResourceKind.ACCESS_KEY and isinstance(user, str) and user:
        kind = "role" if res.attributes.get("user_type") == "AssumedRole" else "user"
        yield from _iam_forms(kind, f"{kind}/{user}", account)


def _expand(raw: str, account: str | None) -> Iterator[str]:
    yield raw
    path = _PATH_FORM.fullmatch(raw)
    if path:
        yield from _iam_forms(path.group(1).lower(), raw, account)
    if raw.startswith("arn:"):
        parts = raw.split(":", 5)
        if len(parts) == 6:
            service, resource = parts[2], parts[5]
            if service == "sts" and resource.startswith("assumed-role/"):  # the session's role
                yield from _iam_forms("role", "role/" + resource.split("/")[1], parts[4] or account)
            elif service == "iam" and _PATH_FORM.fullmatch(resource):
                yield from _iam_forms(resource.split("/", 1)[0], resource, parts[4] or account)
    unique = _UNIQUE_ID.fullmatch(raw)
    if unique:
        yield unique.group(1)


def identifier_forms(target: str, params: Mapping[str, Any], event: Event) -> set[str]:
    """Every form, lower-cased, under which the step's target (and what its parameters name) is known."""
    account = event.account
    raw = {target, *_strings(params)}
    for key, kind in _KIND_OF_PARAM.items():
        value = params.get(key)
        if isinstance(value, str):
            raw.add(f"{kind}/{value}")
    if isinstance(params.get("principal_type"), str) and isinstance(params.get("principal_name"), str):
        raw.add(f"{params['principal_type']}/{params['principal_name']}")
    forms = {f.casefold() for r in raw for f in _expand(r, account)}
    for res in event.resources:  # a resource the step names brings all its other names
        own = {f.casefold() for f in _resource_forms(res, account)}
        if own & forms:
            forms |= {f for o in own for f in _expand(o, account)}
    return forms


def _arn_match(pattern: str, form: str) -> bool:
    want, have = pattern.split(":", 5), form.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False
    return all(fnmatchcase(h, w) or (i == 4 and h == "*") for i, (w, h) in enumerate(zip(want, have, strict=True)))


def matching_form(pattern: str, forms: Iterable[str]) -> str | None:
    """The first form `pattern` protects (case-insensitive; ARN patterns part by part), or None."""
    want = pattern.casefold()
    for form in sorted(forms):
        if fnmatchcase(form, want):
            return form
        if want.startswith("arn:") and form.startswith("arn:") and _arn_match(want, form):
            return form
    return None
