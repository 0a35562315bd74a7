"""notify.webhook: POST the notification as JSON, HMAC-SHA256-signed like records from producers.

Posts run in their receiver's thread pool (responder/threadpools.py, `notify_pool`): a hung AWS service or another
receiver that hangs never delays a page.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.client import HTTPMessage
from typing import IO, ClassVar

from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview
from responder.actuators.notify.message import KEY_ID, Ledger, MessageParams, body, signing_secret
from responder.actuators.registry import register
from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, sign
from responder.errors import PermanentActuationError, TransientActuationError
from responder.threadpools import notify_pool, run_in
from responder.tracing import propagation

URL = r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookParams(MessageParams):
    """Where to POST and which configured key signs the body."""

    url: str = Field(pattern=URL, examples=["https://hooks.example.com/security"])
    key_id: str = Field(pattern=KEY_ID, examples=["oncall"])
    timeout: float = Field(default=10.0, gt=0, le=60)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect (urllib would re-send the POST as a GET elsewhere): the 3xx surfaces as HTTPError."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> int:
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310 - http(s) only (pattern)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise TransientActuationError(f"webhook unreachable: {exc}", code="Unreachable") from exc
    except http.client.HTTPException as exc:  # not HTTP (BadStatusLine, IncompleteRead), e.g. from a broken proxy
        raise TransientActuationError(f"webhook answered no valid HTTP: {exc!r}"[:500], code="BadResponse") from exc


@register
class WebhookNotify(Actuator[WebhookParams]):
    """POST a JSON notification signed with HMAC-SHA256 (headers responder-key-id, responder-signature).

    The secret comes from settings (`RESPONDER_NOTIFY_KEYS`), never from the runbook. The step's
    idempotency key is sent as `Idempotency-Key` so receivers can drop duplicates; this process also
    remembers delivered keys, so a retry after success does not post again. 5xx, 429 and network errors
    are retried; other 4xx and 3xx (redirects are never followed) are permanent. `url` and `key_id` must be
    literals in the runbook, never from the event (the loader rejects placeholders in them). The receiver's HTTP status
    (`outputs.status`) is in its reply only: no read gives it back (no `outputs_now`), so a lost reply loses it.

    Example::

        - id: page-oncall
          actuator: notify.webhook.post_message
          with:
            url: https://hooks.example.com/security
            key_id: oncall
            title: credential exfiltration contained
            severity: high
            fields: {key: "${event.resource.access_key.id}"}
    """

    name = "notify.webhook.post_message"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"status": 200}
    params = WebhookParams
    permissions = ()
    literal_params = ("url", "key_id")
    destructive = False
    notifies = True
    reverse = None
    irreversible = "a message once delivered cannot be unsent"

    def __init__(self) -> None:
        self.ledger = Ledger()

    def target(self, p: WebhookParams) -> str:
        return p.url

    async def plan(self, p: WebhookParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.url, summary=f"POST {p.title!r} to {p.url} signed with key {p.key_id}")

    async def apply(self, p: WebhookParams, ctx: ActuationContext) -> ActuationResult:
        if self.ledger.seen(ctx.key):
            return ActuationResult(changed=False, target=p.url, after={"delivered": True})
        data = body(p, ctx)
        headers = {"Content-Type": "application/json", KEY_ID_HEADER: p.key_id,
                   SIGNATURE_HEADER: sign(signing_secret(ctx, p.key_id), data), IDEMPOTENCY_HEADER: ctx.key,
                   **dict(propagation())}  # the receiver joins the alert's trace
        status = await run_in(notify_pool(p.url), _post, p.url, data, headers, p.timeout)
        if status >= 500 or status == 429:
            raise TransientActuationError(f"webhook answered {status}", code=f"HTTP{status}")
        if status >= 300:
            raise PermanentActuationError(f"webhook answered {status}", code=f"HTTP{status}")
        self.ledger.add(ctx.key)
        return ActuationResult(changed=True, target=p.url, prior={"delivered": False},
                               after={"delivered": True}, outputs={"status": status})

    async def verify(self, p: WebhookParams, ctx: ActuationContext) -> bool:
        return self.ledger.seen(ctx.key)
