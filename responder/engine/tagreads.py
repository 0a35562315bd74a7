"""The tags of the resources a step acts on, read through AWS, so that a protected tag (`protected_tags`) protects a
resource however an event names it: an alert that leaves the tags out (an attacker shapes it; many sources never send
them) no longer lets containment act on a tagged resource.

While any protected tag is set, the guard reads the tags of each resource the step acts on (`acted_on`, actedon.py: by
its actuator and parameters, never by the event), in responder's own account, and refuses the step when one carries a
protected tag; tags the event carries may add a refusal, never spare the read. Kept and refused as `keptreads` says (a
read that fails refuses the step, naming the permission). A kind no reader here knows (an actuator of a kind added
later) is refused outright while a protected tag is set. An IAM access key cannot carry tags: its user's are read (and
the secret a rotation writes the new key to, `secret_name`, when it exists). A model rollback or switch (`SERVING`,
actedon.py) changes what its registry serves (the step's `registry`, else the `model_registry` setting: never the
event): a SageMaker registry's endpoint (named after the model) has its tags read, an S3 registry's serving pointer (the
SSM parameter `model_ssm_prefix/<model>/serving`; not created yet = no tags) has its, and a local registry is
responder's own files (nothing to read). `model.quarantine_version` writes a new mark in responder's own registry and
changes no existing resource: nothing to read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from responder.actuators.base import ModelConfig
from responder.engine.actedon import PERMISSIONS, acted_on
from responder.engine.iamrecords import Record, RecordReads, get_record
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)

SEP = "\x1f"  # between a tag's key and value in a kept form (no tag holds it)
_MAX_PAGES = 10  # pages of tags read for one resource at most (AWS allows 50 tags a resource)


def tag_value(value: Any) -> str:
    """A tag's value as text: one given as None, or not at all, is the empty value (never the text "None")."""
    return "" if value is None else str(value)


def _pairs(tags: Any, key: str = "Key", value: str = "Value") -> frozenset[str]:
    """Kept forms (`key SEP value`) of AWS tags: a list of {Key, Value} (`key`/`value` named otherwise) or a dict;
    anything else (an answer without its tags: None) is unreadable (fail closed)."""
    if isinstance(tags, Mapping):
        return frozenset(f"{k}{SEP}{tag_value(v)}" for k, v in tags.items())
    if not isinstance(tags, list):
        raise PermanentActuationError("tags answered in no known shape", code="Malformed")
    return frozenset(f"{t[key]}{SEP}{tag_value(t.get(value))}" for t in tags)


def tags_of(forms: set[str]) -> dict[str, set[str]]:
    """Each tag key read, with its values (kept forms of several resources may give one key several)."""
    out: dict[str, set[str]] = {}
    for form in forms:
        key, _, value = form.partition(SEP)
        out.setdefault(key, set()).add(value)
    return out


class ResourceTags(RecordReads):
    """Reads and keeps, for `TTL_S` seconds, the tags (`key SEP value`) of the resources (`kind id`) steps act on (a
    role's or user's record shared with the principals' reader through `records`, when given: `iamrecords`)."""

    def _unreadable(self, key: str, exc: Exception) -> str:
        kind, name = key.split(" ", 1)
        log.warning("resource_tags_unreadable", kind=kind, resource=name, error=str(exc))
        return (f"{kind} {name!r}: its tags could not be read ({exc}), and a protected tag is set: refused until they "
                f"can be ({PERMISSIONS.get(kind, 'no reader')})")

    async def _read(self, key: str) -> frozenset[str]:
        kind, name = key.split(" ", 1)
        call = self.aws.call
        if (record := self._record_key(key)) is not None:
            return self._from_record(key, await get_record(self.aws, record))
        if kind == "instance":
            found = [i for r in (await call("ec2", "describe_instances", InstanceIds=[name]))["Reservations"]
                     for i in r["Instances"]]
            if not found:
                raise PermanentActuationError(f"instance {name} not found", code="NotFound")
            return frozenset().union(*(_pairs(i.get("Tags", [])) for i in found))
        if kind == "bucket":
            try:
                return _pairs((await call("s3", "get_bucket_tagging", Bucket=name))["TagSet"])
            except PermanentActuationError as exc:
                if exc.code == "NoSuchTagSet":  # a bucket with no tags
                    return frozenset()
                raise
        if kind in ("secret", "store"):
            try:
                return _pairs((await call("secretsmanager", "describe_secret", SecretId=name)).get("Tags", []))
            except PermanentActuationError as exc:  # a rotation's store not created yet: it carries no tag
                if kind == "store" and exc.code == "ResourceNotFoundException":
                    return frozenset()
                raise
        if kind == "function":  # GetFunction leaves Tags out without lambda:ListTags: ListTags answers them ({}: none)
            arn = (await call("lambda", "get_function", FunctionName=name))["Configuration"]["FunctionArn"]
            return _pairs((await call("lambda", "list_tags", Resource=arn)).get("Tags"))  # none at all: unreadable
        if kind == "apikey":
            return _pairs((await call("apigateway", "get_api_key", apiKey=name)).get("tags", {}))
        if kind == "parameter":
            try:
                return _pairs((await call("ssm", "list_tags_for_resource", ResourceType="Parameter",
                                          ResourceId=name))["TagList"])
            except PermanentActuationError as exc:  # a serving pointer not created yet (the step creates it)
                if exc.code == "InvalidResourceId":
                    return frozenset()
                raise
        return await self._paged(kind, name)

    def _record_key(self, key: str) -> str | None:
        kind, name = key.split(" ", 1)
        return f"{kind}/{name}" if kind in ("role", "user") else None

    def _from_record(self, key: str, record: Record) -> frozenset[str]:
        return _pairs(record.get("Tags", []))

    async def _paged(self, kind: str, name: str) -> frozenset[str]:
        """Tags listed in pages (KMS key, SageMaker endpoint, CloudTrail trail): every page, or refused (a page marked
        truncated with no marker, more than `_MAX_PAGES` pages, a trail's answer not naming it, a page with no list)."""
        if kind == "endpoint":
            arn = (await self.aws.call("sagemaker", "describe_endpoint", EndpointName=name))["EndpointArn"]
        elif kind == "trail":
            arn = (await self.aws.call("cloudtrail", "get_trail", Name=name))["Trail"]["TrailARN"]
        elif kind != "key":
            raise PermanentActuationError(f"no reader for the tags of a {kind}", code="NoReader")
        found: set[str] = set()
        page: dict[str, str] = {}
        for _ in range(_MAX_PAGES):
            if kind == "key":
                got = await self.aws.call("kms", "list_resource_tags", KeyId=name, **page)
                found |= _pairs(got.get("Tags"), "TagKey", "TagValue")
                more, token = got.get("Truncated") or got.get("NextMarker"), got.get("NextMarker")  # a marker: more
                page = {"Marker": str(token)}
            elif kind == "trail":
                got = await self.aws.call("cloudtrail", "list_tags", ResourceIdList=[arn], **page)
                listed = [r for r in got["ResourceTagList"] if r["ResourceId"] == arn]
                if not listed and not page:
                    raise PermanentActuationError(f"ListTags did not answer for {arn}", code="Malformed")
                found |= frozenset().union(*(_pairs(r.get("TagsList", [])) for r in listed))  # named, untagged
                more = token = got.get("NextToken")
                page = {"NextToken": str(token)}
            else:
                got = await self.aws.call("sagemaker", "list_tags", ResourceArn=arn, **page)
                found |= _pairs(got.get("Tags"))
                more = token = got.get("NextToken")
                page = {"NextToken": str(token)}
            if not more:
                return frozenset(found)
            if not token:
                raise PermanentActuationError("tags truncated with no marker for the next page", code="Malformed")
        raise PermanentActuationError(f"more than {_MAX_PAGES} pages of tags", code="TooManyTags")


def carries(wanted: Mapping[str, str], tags: Mapping[str, set[str]]) -> str | None:
    """The first protected tag (`key=value`; a wanted value `*`: any) among `tags` (each key's values), or None."""
    for key, want in wanted.items():
        for value in sorted(tags.get(key, ())):
            if want == "*" or value == want:
                return f"{key}={value}"
    return None


def _hit(wanted: Sequence[Mapping[str, str]], forms: set[str]) -> str | None:
    tags = tags_of(forms)
    return next((t for w in wanted if (t := carries(w, tags)) is not None), None)


async def tag_refusal(reader: ResourceTags | None, wanted: Sequence[Mapping[str, str]], actuator: str,
                      params: Mapping[str, Any], models: ModelConfig | None = None) -> str | None:
    """Why a resource a step of `actuator` acts on carries a protected tag (`wanted`) in AWS, read whatever the event
    says, or cannot be read, or None; tags kept from an earlier read only refuse (`keptreads`)."""
    keys = acted_on(actuator, params, models)
    if isinstance(keys, str):
        return keys
    if not keys:
        return None
    if reader is None:
        return f"{sorted(keys)}: no AWS client to read their tags, and a protected tag is set"
    kept = reader.kept(keys)
    if kept and (hit := _hit(wanted, kept)) is not None:
        return f"{sorted(keys)} carry protected tag {hit} (read from AWS)"
    found = await reader.forms(keys)
    if isinstance(found, str):
        return found
    hit = _hit(wanted, found)
    return None if hit is None else f"{sorted(keys)} carry protected tag {hit} (read from AWS)"
