"""notify.kafka: publish the notification to a topic through the injected publisher (aiokafka stays in ingest)."""

from __future__ import annotations

from pydantic import Field

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview, Publisher
from responder.actuators.notify.message import KEY_ID, Ledger, MessageParams, body, signing_secret
from responder.actuators.registry import register
from responder.auth import signed_headers
from responder.errors import ActuationError, BrokerRefused, PermanentActuationError, TransientActuationError
from responder.tracing import propagation

TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class KafkaNotifyParams(MessageParams):
    """The topic, and optionally a configured key that signs the record."""

    topic: str = Field(pattern=TOPIC, examples=["responder.notifications"])
    key_id: str | None = Field(default=None, pattern=KEY_ID)


def publisher(ctx: ActuationContext) -> Publisher:
    """The publisher the service injected as `ctx.publisher`."""
    if ctx.publisher is None:
        raise PermanentActuationError("no Kafka publisher configured for notify.kafka", code="NoPublisher")
    return ctx.publisher


@register
class KafkaNotify(Actuator[KafkaNotifyParams]):
    """Publish a JSON notification to a Kafka topic, keyed by incident (so one incident's messages stay ordered).

    With `key_id`, the record carries the same HMAC headers producers use (responder-key-id,
    responder-signature). The idempotency key travels in the `idempotency-key` header; this process
    remembers delivered keys, so a retry after an acknowledged send publishes nothing more. A send Kafka did not
    acknowledge in time is transient (retried with backoff); one it refused for good (too large for the topic, an
    ACL) is permanent: the step fails at once and its escalation runs. `topic` and `key_id` must be literals in the
    runbook (the loader rejects placeholders in them): alert text never picks the topic (the alerts, approvals or
    changelog topic) nor the key that signs.

    Example::

        - id: announce
          actuator: notify.kafka.publish_message
          with:
            topic: responder.notifications
            title: inference host isolated
            fields: {instance: "${event.resource.instance.id}"}
    """

    name = "notify.kafka.publish_message"
    params = KafkaNotifyParams
    permissions = ()
    literal_params = ("topic", "key_id")
    destructive = False
    notifies = True
    reverse = None
    irreversible = "a published record cannot be unpublished"

    def __init__(self) -> None:
        self.ledger = Ledger()

    def target(self, p: KafkaNotifyParams) -> str:
        return p.topic

    async def plan(self, p: KafkaNotifyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.topic, summary=f"publish {p.title!r} to topic {p.topic}")

    async def apply(self, p: KafkaNotifyParams, ctx: ActuationContext) -> ActuationResult:
        if self.ledger.seen(ctx.key):
            return ActuationResult(changed=False, target=p.topic, after={"delivered": True})
        data = body(p, ctx)
        headers = [("idempotency-key", ctx.key.encode()), *((k, v.encode()) for k, v in propagation())]
        if p.key_id:
            headers += signed_headers(p.key_id, signing_secret(ctx, p.key_id), data)
        try:
            await publisher(ctx).publish(p.topic, (ctx.incident or p.topic).encode(), data, headers)
        except ActuationError:
            raise
        except BrokerRefused as exc:  # too large for the topic, an ACL: a retry cannot help, its escalation can
            raise PermanentActuationError(f"publish to {p.topic} refused: {exc}", code="BrokerRefused") from exc
        except Exception as exc:  # the injected producer's own errors (aiokafka stays in ingest): I/O, retry
            raise TransientActuationError(f"publish to {p.topic} failed: {exc}", code=type(exc).__name__) from exc
        self.ledger.add(ctx.key)
        return ActuationResult(changed=True, target=p.topic, prior={"delivered": False}, after={"delivered": True})

    async def verify(self, p: KafkaNotifyParams, ctx: ActuationContext) -> bool:
        return self.ledger.seen(ctx.key)
