"""Protected-id matching over every identifier form of a step's target.

A protected id is a glob over a name, an id, a path form (`role/admins/X`) or an ARN. A target is known by many
forms: the actuator's target string, its parameters (but its `Actuator.not_identifiers`: `identifying`), and every
form of the event resources those name (id, name, ARN, unique id such as AIDA…/AROA…/AKIA…, path). IAM names are
case-insensitive in AWS, so all matching is case-insensitive (for other ids that can only protect more). An ARN
pattern is matched part by part against ARN forms (`formmatch`), including the ARN an IAM path form implies, so
`arn:aws:iam::*:role/ResponderRole` protects a role a finding names only as `ResponderRole`.

A finding's account does not decide where responder acts: the actuators act in the account of its own
credentials (no actuator assumes a role elsewhere). IAM ARN forms are therefore built in responder's own account
(`Home`, from `aws_account_id`; any account, `*`, while unknown) as well as in the account the event or a target
ARN claims, with the partition left open. `arn:aws:iam::123456789012:user/ml-training` thus protects the user
`ml-training` however a finding names it, claiming account 999999999999 included, while a pattern pinned to
another account protects nothing here once responder's own is known. Outside IAM the same holds through
`arnforms`: a Lambda function, KMS key, secret, trail, bucket, instance or SageMaker endpoint ARN expands to its
name, and a name given to the parameter that takes one (`function_name`, an `aws.kms.*` step's `key_id`,
`secret_id`, `secret_name`, `bucket`, `trail`, `instance_id`, `endpoint_name`) or carried by an event resource of
that kind yields its ARN where responder acts; a pattern also matches as what else it protects
(`pattern_variants`: a qualified function's function, an object's bucket, an exact IAM path form's name, a session
form's unique id: `AROA…:*` matches the form `aroa…:` a unique id also has). Every item of `role_names` is a role name,
and IAM's character set is checked on every IAM name parameter whatever the actuator.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from responder.engine.arnforms import (
    ANYWHERE,
    KIND_SERVICE,
    NAME_PARAMS,
    SECRETS,
    Home,
    arn_forms,
    name_forms,
    suffix_known,
)
from responder.models.event import Event, Resource, ResourceKind

IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")  # IAM's own character set, ASCII only
IAM_NAME_PARAMS = ("user_name", "role_name", "group_name", "principal_name", "policy_name", "role_names")
IAM_KINDS = ("user", "role", "group", "policy", "instance-profile")
_PATH_FORM = re.compile(r"(user|role|group|policy|instance-profile)/(?:[^/]+/)*([^/]+)", re.IGNORECASE)
_KIND_OF_PARAM = {"user_name": "user", "role_name": "role", "group_name": "group", "role_names": "role"}
_RESOURCE_KIND = {ResourceKind.IAM_USER: "user", ResourceKind.IAM_ROLE: "role"}
_KEY_OWNER = {"IAMUser": "user", "AssumedRole": "role"}  # an access key's `user_type` → what its `user_name` names
_UNIQUE_ID = re.compile(r"(A[A-Z]{3}[A-Z0-9]{12,})(?::.*)?")  # AIDA…, AROA…, AKIA…, ASIA… (`AROA…:session`)
NAMING_PARAMS = frozenset({*NAME_PARAMS, *_KIND_OF_PARAM, "principal_type", "principal_name", "model", "registry",
                           "access_key_id", "api_key_id", "version", "from_version", "version_id", "groups_by_eni"})


def identifying(params: Mapping[str, Any], not_identifiers: Collection[str]) -> Mapping[str, Any]:
    """The parameters read as forms of a step's target: all but its actuator's `not_identifiers`, save one that names
    or picks what a step acts on whatever is declared (`NAMING_PARAMS`)."""
    if not not_identifiers:  # most actuators declare none: no copy
        return params
    return {k: v for k, v in params.items() if k not in not_identifiers or k in NAMING_PARAMS}


def strings_of(value: Any) -> Iterator[str]:
    """Every string in a parameter's value, nested in mappings and lists included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings_of(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings_of(v)


def _listed(value: Any) -> list[str]:
    """A parameter's string, or the strings of its list (`role_names`)."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def invalid_iam_name(params: Mapping[str, Any]) -> str | None:
    """Why an IAM name parameter, of any actuator, is not an IAM name (a look-alike letter, a space…), or None."""
    for name in IAM_NAME_PARAMS:
        given = params.get(name)
        if given is None:  # the common step names none: no list built
            continue
        for value in _listed(given):
            if not IAM_NAME.fullmatch(value):
                return f"{name} {value!r} is outside IAM's character set [A-Za-z0-9_+=,.@-]"
    return None


def _iam_forms(kind: str, path_form: str, accounts: set[str]) -> Iterator[str]:
    """`role/a/b/X` → `X`, `role/X`, `role/a/b/X` and their ARNs in `accounts` (`Home.accounts`; partition open)."""
    name = path_form.rsplit("/", 1)[-1]
    for form in {f"{kind}/{name}", path_form}:
        yield form
        for acct in accounts:
            yield f"arn:*:iam::{acct}:{form}"
    yield name


def _resource_values(res: Resource) -> Iterator[str]:
    """What an event resource gives of itself (expanded by `_expand`): id, name, ARN, ids and names in attributes."""
    yield res.id
    if res.name:
        yield res.name
    if res.arn:
        yield res.arn
    for key in ("principal_id", "unique_id", "role_id", "user_id", "path", "user_name"):
        value = res.attributes.get(key)
        if isinstance(value, str) and value:
            yield value


def _resource_derived(res: Resource, account: str | None, home: Home) -> Iterator[str]:
    """The forms an event resource's kind implies (complete as they are: `_expand` would add nothing)."""
    service = KIND_SERVICE.get(res.kind)
    # a function, key, secret, trail or bucket named by name: its ARN where responder acts (not a secret whose complete
    # ARN the finding gives: a name would lose its known suffix, and the step names what it acts on by its own forms)
    if service is not None and not (service == SECRETS and any(suffix_known(v or "") for v in (res.arn, res.id))):
        for value in (res.id, res.name):
            yield from name_forms(service, value or "", home)
    kind = _RESOURCE_KIND.get(res.kind)
    if kind is not None:
        path = res.attributes.get("path")
        prefix = path.strip("/") + "/" if isinstance(path, str) and path.strip("/") else ""
        yield from _iam_forms(kind, f"{kind}/{prefix}{res.name or res.id}", home.accounts(account))
    user = res.attributes.get("user_name")
    if res.kind is ResourceKind.ACCESS_KEY and isinstance(user, str) and user:
        kind = "role" if res.attributes.get("user_type") == "AssumedRole" else "user"
        yield from _iam_forms(kind, f"{kind}/{user}", home.accounts(account))


def _expand(raw: str, account: str | None, home: Home) -> Iterator[str]:
    yield raw
    path = _PATH_FORM.fullmatch(raw)
    if path:
        yield from _iam_forms(path.group(1).lower(), raw, home.accounts(account))
    if raw.startswith("arn:"):
        parts = raw.split(":", 5)
        if len(parts) == 6:
            service, resource = parts[2], parts[5]
            if service == "sts" and resource.startswith("assumed-role/"):  # the session's role
                yield from _iam_forms("role", "role/" + resource.split("/")[1], home.accounts(parts[4] or account))
            elif service == "iam" and _PATH_FORM.fullmatch(resource):
                yield from _iam_forms(resource.split("/", 1)[0], resource, home.accounts(parts[4] or account))
            else:  # lambda, kms, secretsmanager, cloudtrail, s3: the names the ARN carries
                yield from arn_forms(service, resource)
    unique = _UNIQUE_ID.fullmatch(raw)
    if unique:  # the id, and as the start of its sessions' principal ids (`pattern_variants`: `AROA…:*` protects it)
        yield from (unique.group(1), unique.group(1) + ":")


def resource_forms(res: Resource, account: str | None, home: Home) -> set[str]:
    """Every form, lower-cased, under which an event resource is known."""
    forms = {f.casefold() for value in _resource_values(res) for f in _expand(value, account, home)}
    forms.update(f.casefold() for f in _resource_derived(res, account, home))
    return forms


def _given(target: str, params: Mapping[str, Any]) -> set[str]:
    """What a step gives of its target: the target, its parameters' strings, `kind/name` of its IAM name parameters."""
    raw = {target, *strings_of(params)}
    for key, kind in _KIND_OF_PARAM.items():
        raw.update(f"{kind}/{value}" for value in _listed(params.get(key)))
    if isinstance(params.get("principal_type"), str) and isinstance(params.get("principal_name"), str):
        raw.add(f"{params['principal_type']}/{params['principal_name']}")
    return raw


def principals(target: str, params: Mapping[str, Any], named: Iterable[Resource]) -> set[str]:
    """The IAM roles and users a step names (`role/NAME`, `user/NAME`, in the case given), by name, path form, IAM ARN
    or `sts` assumed-role ARN, itself or through the event resources it names (an access key's by `user_type`)."""
    raw = _given(target, params)
    for res in named:
        key = res.kind is ResourceKind.ACCESS_KEY
        kind = _KEY_OWNER.get(str(res.attributes.get("user_type"))) if key else _RESOURCE_KIND.get(res.kind)
        name = res.attributes.get("user_name") if key else res.name or res.id
        if kind is not None and isinstance(name, str) and name:
            raw.update((f"{kind}/{name}", *(v for v in (res.id, res.arn) if v and v.startswith("arn:"))))
    found = set()
    for value in raw:
        parts = value.split(":", 5) if value.startswith("arn:") else []
        if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
            value = "role/" + parts[5].split("/")[1]  # the session's role
        elif parts:
            value = parts[5] if len(parts) == 6 and parts[2] == "iam" else ""
        path = _PATH_FORM.fullmatch(value)
        if path and path.group(1).lower() in ("role", "user"):
            found.add(f"{path.group(1).lower()}/{path.group(2)}")
    return found


def identifier_forms(target: str, params: Mapping[str, Any], event: Event, actuator: str = "",
                     home: Home = ANYWHERE) -> tuple[set[str], list[Resource]]:
    """Every form, lower-cased, under which the step's target (and what its parameters name) is known, and the event
    resources it names (each brings all its forms)."""
    account = event.account
    raw = _given(target, params)
    for key, service in NAME_PARAMS.items():
        if key == "key_id" and actuator.startswith("notify."):  # a signing key id, not a KMS key
            continue
        raw.update(f for value in _listed(params.get(key)) for f in name_forms(service, value, home))
    if actuator.startswith("model.") and isinstance(params.get("model"), str):  # the SageMaker registry serves a
        raw.update(name_forms("sagemaker", params["model"], home))  # model from the endpoint named after it
    forms = {f.casefold() for r in raw for f in _expand(r, account, home)}
    named: list[Resource] = []
    for res in event.resources:  # a resource the step names brings all its other names
        own = resource_forms(res, account, home)
        if own & forms:
            forms |= own
            named.append(res)
    return forms, named
