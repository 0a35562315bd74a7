"""A notification carries alert text as JSON data, verbatim: responder adds no chat markup and declares none."""

from __future__ import annotations

import orjson

from responder.actuators.base import ActuationContext
from responder.actuators.notify.message import MessageParams, body

CHAT = "<!channel> <@U123> <https://evil.example|click> [x](https://evil.example) *b* ![p](https://t.example/p)"


def test_the_body_is_json_data_holding_the_alert_text_verbatim():
    """The notification body is JSON holding the alert's title and fields verbatim, with no Slack formatting keys."""
    p = MessageParams(title=f"login by {CHAT}", severity="high", fields={"user": CHAT, "nested": {"u": CHAT}})
    doc = orjson.loads(body(p, ActuationContext(aws=None, incident="inc-1", key="k")))
    assert set(doc) == {"incident", "key", "title", "severity", "fields"}
    assert doc["title"] == f"login by {CHAT}"
    assert doc["fields"] == {"user": CHAT, "nested": {"u": CHAT}}
