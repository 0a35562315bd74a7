"""Which data a SageMaker container definition loads, and the fields responder does not check (an allow-list).

A container passes only when every field it carries is one responder understands, and every S3
location it names is `s3://…/<model>/versions/<V>/model/` itself or a safe relative path under it.
Anything else that can make SageMaker load data (a model package, a manifest of locations, hub
content, a field added to the API later) is refused by name. `Image` and `Environment` are allowed
and not checked: a serving image can load code or weights from anywhere (`SAGEMAKER_SUBMIT_DIRECTORY`,
`HF_MODEL_ID`), which docs/models.md states.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from responder.actuators.model.versions import ARTIFACT_DIR, VERSION_NAME, safe_relative

CONTAINER_KEYS = frozenset({
    "ContainerHostname", "Image", "ImageConfig", "Mode", "MultiModelConfig", "Environment",
    "ModelDataUrl", "ModelDataSource", "AdditionalModelDataSources",
})
SOURCE_KEYS = {"ModelDataSource": frozenset({"S3DataSource"}),
               "AdditionalModelDataSources": frozenset({"S3DataSource", "ChannelName"})}
S3_SOURCE_KEYS = frozenset({"S3Uri", "S3DataType", "CompressionType", "ModelAccessConfig", "ETag"})


def _sources(container: Mapping[str, Any]) -> list[tuple[str, object]]:
    extra = container.get("AdditionalModelDataSources")
    listed: list[object] = list(extra) if isinstance(extra, list) else [extra]
    return [("ModelDataSource", container.get("ModelDataSource")),
            *(("AdditionalModelDataSources", s) for s in listed)]


def unchecked_field(container: Mapping[str, Any]) -> str | None:
    """The first field of `container` that responder does not check (dotted: `ModelDataSource.S3DataSource.X`)."""
    for key in sorted(container):
        if key not in CONTAINER_KEYS:
            return str(key)
    for field, source in _sources(container):
        if source is None:
            continue
        if not isinstance(source, Mapping):
            return field
        for key in sorted(source):
            if key not in SOURCE_KEYS[field]:
                return f"{field}.{key}"
        s3 = source.get("S3DataSource")
        if not isinstance(s3, Mapping):
            return f"{field}.S3DataSource"
        for key in sorted(s3):
            if key not in S3_SOURCE_KEYS:
                return f"{field}.S3DataSource.{key}"
    return None


def data_urls(container: Mapping[str, Any]) -> list[str]:
    """Every S3 location one container definition loads model data from (its fields checked by `unchecked_field`)."""
    urls = [container.get("ModelDataUrl")]
    for _, source in _sources(container):
        if isinstance(source, Mapping) and isinstance(source.get("S3DataSource"), Mapping):
            urls.append(source["S3DataSource"].get("S3Uri"))
    return [str(u) for u in urls if u]


def version_under(base: str, data_url: str | None) -> str | None:
    """The version V when `data_url` is `base` + `V/model/` itself or followed by a safe relative path, else None."""
    if not data_url or not data_url.startswith(base):
        return None
    version, _, rest = data_url[len(base):].partition("/")
    if not re.fullmatch(VERSION_NAME, version) or not rest.startswith(ARTIFACT_DIR + "/"):
        return None
    inside = rest[len(ARTIFACT_DIR) + 1:]
    return version if not inside or safe_relative(inside.removesuffix("/")) else None
