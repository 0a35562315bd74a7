"""A protected KMS alias protects the key it points to, however a step names the key; an alias that cannot be read
refuses the step (fail closed), as does a ListAliases page without `Aliases`, one truncated with no marker, or too many
pages; a `NextMarker` without `Truncated` is followed."""

from __future__ import annotations

from typing import Any

import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.engine import kmsaliases
from responder.engine.guards import GuardPolicy, Guards, QuotaWindows, Trip
from responder.engine.kmsaliases import KeyAliases, key_ids, names_alias
from responder.errors import PermanentActuationError
from responder.models.runbook import Protected, Runbook
from tests.guard_kit import KMS_KEY, KMS_KEY_ARN, SettableClock, event_naming

ALIAS_ARN = "arn:aws:kms:us-east-1:123456789012:alias/prod-key"
RB = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                             "steps": [{"id": "s", "actuator": "aws.kms.disable_key"}]})


class Kms:
    """ListAliases over a fixed key → aliases map, counting reads; `fail` makes every read fail."""

    def __init__(self, aliases: dict[str, list[str]], fail: Exception | None = None) -> None:
        self.aliases, self.fail, self.reads = aliases, fail, 0

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Answer kms.list_aliases for one key (paginated by two)."""
        assert (service, operation) == ("kms", "list_aliases")
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        names = self.aliases.get(kwargs["KeyId"], [])
        start = int(kwargs.get("Marker", "0"))
        page = [{"AliasName": n, "AliasArn": f"arn:aws:kms:us-east-1:123456789012:{n}", "TargetKeyId": kwargs["KeyId"]}
                for n in names[start:start + 2]]
        more = start + 2 < len(names)
        return {"Aliases": page, "Truncated": more, **({"NextMarker": str(start + 2)} if more else {})}


async def _trips(protected: list[str], kms: Kms | Pages, key_id: str = KMS_KEY, actuator: str = "aws.kms.disable_key",
                 clock: SettableClock | None = None, guards: Guards | None = None) -> list[Trip]:
    guards = guards or Guards(GuardPolicy(protected=Protected(ids=protected)),
                              aliases=KeyAliases(kms, clock=clock or SettableClock()))
    return await guards.check_step(RB, actuator, key_id, {"key_id": key_id}, event_naming(), QuotaWindows(), 0.0)


@pytest.mark.parametrize("pattern", ["alias/prod-key", ALIAS_ARN, "arn:aws:kms:*:*:alias/prod-*", "alias/PROD-*",
                                     "alia?/prod-key"])
@pytest.mark.parametrize("key_id", [KMS_KEY, KMS_KEY_ARN])
async def test_a_protected_alias_protects_the_key_it_points_to(pattern: str, key_id: str) -> None:
    """A step naming the key by id or ARN is refused by a pattern protecting its alias (name, ARN, glob)."""
    trips = await _trips([pattern], Kms({KMS_KEY: ["alias/other", "alias/more", "alias/prod-key"]}), key_id)
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]
    assert "alias/prod-key" in trips[0].detail


async def test_a_key_with_other_aliases_is_not_refused() -> None:
    """A key whose aliases the pattern does not name is not refused (its aliases were read)."""
    kms = Kms({KMS_KEY: ["alias/staging-key"]})
    assert await _trips(["alias/prod-key"], kms) == []
    assert kms.reads == 1


async def test_aliases_that_cannot_be_read_refuse_the_step() -> None:
    """Fail closed: a key whose aliases cannot be read while an alias is protected is refused, saying why."""
    kms = Kms({}, fail=PermanentActuationError("AccessDeniedException: not allowed", code="AccessDeniedException"))
    trips = await _trips(["alias/prod-key"], kms)
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]
    assert "could not be read" in trips[0].detail
    assert "AccessDeniedException" in trips[0].detail


async def test_guards_without_an_aws_client_refuse_a_key_while_an_alias_is_protected() -> None:
    """Guards built with no alias reader fail closed too."""
    guards = Guards(GuardPolicy(protected=Protected(ids=["alias/prod-key"])))
    trips = await _trips([], Kms({}), guards=guards)
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]


async def test_an_alias_re_pointed_to_a_key_protects_it_at_the_next_step() -> None:
    """An alias re-pointed to a key just after a step read its aliases protects the key at the next step."""
    kms, clock = Kms({KMS_KEY: ["alias/staging-key"]}), SettableClock()
    guards = Guards(GuardPolicy(protected=Protected(ids=["alias/prod-key"])), aliases=KeyAliases(kms, clock=clock))
    assert await _trips([], kms, guards=guards) == []
    kms.aliases[KMS_KEY] = ["alias/prod-key"]
    clock.now += 1
    assert [t.guard for t in await _trips([], kms, guards=guards)] == ["protected"]
    assert kms.reads == 2


async def test_aliases_that_refuse_are_kept_for_their_ttl() -> None:
    """Aliases that refuse the step are kept for their TTL, still refusing without a read, then read again."""
    kms, clock = Kms({KMS_KEY: ["alias/prod-key"]}), SettableClock()
    guards = Guards(GuardPolicy(protected=Protected(ids=["alias/prod-key"])), aliases=KeyAliases(kms, clock=clock))
    assert [t.guard for t in await _trips([], kms, guards=guards)] == ["protected"]
    kms.aliases[KMS_KEY] = ["alias/staging-key"]
    assert [t.guard for t in await _trips([], kms, guards=guards)] == ["protected"]
    assert kms.reads == 1
    clock.now += KeyAliases.TTL_S + 1
    assert await _trips([], kms, guards=guards) == []
    assert kms.reads == 2


async def test_a_failed_read_is_not_cached() -> None:
    """A read that failed is tried again on the next step (a throttled read does not refuse for the whole TTL)."""
    kms = Kms({KMS_KEY: ["alias/staging-key"]}, fail=PermanentActuationError("ThrottlingException", code="Throttling"))
    guards = Guards(GuardPolicy(protected=Protected(ids=["alias/prod-key"])),
                    aliases=KeyAliases(kms, clock=SettableClock()))
    assert [t.guard for t in await _trips([], kms, guards=guards)] == ["protected"]
    kms.fail = None
    assert await _trips([], kms, guards=guards) == []
    assert kms.reads == 2


@pytest.mark.parametrize("protected", [[], ["arn:aws:iam::*:role/ResponderRole"], [f"arn:aws:kms:*:*:key/{KMS_KEY}"]])
async def test_no_alias_pattern_reads_nothing(protected: list[str]) -> None:
    """Without a pattern that can name an alias no aliases are read (a read costs nothing when it cannot matter)."""
    kms = Kms({}, fail=PermanentActuationError("AccessDeniedException", code="AccessDeniedException"))
    trips = await _trips(protected, kms)
    assert kms.reads == 0
    assert [t.guard for t in trips] == (["protected"] if protected and "kms" in protected[0] else [])


async def test_a_notify_signing_key_id_is_not_read_as_a_kms_key() -> None:
    """A notify step's `key_id` is a signing key: no alias read, no refusal."""
    kms = Kms({}, fail=PermanentActuationError("AccessDeniedException", code="AccessDeniedException"))
    guards = Guards(GuardPolicy(protected=Protected(ids=["alias/*"])), aliases=KeyAliases(kms, clock=SettableClock()))
    trips = await guards.check_step(RB, "notify.kafka.publish_message", "responder.notifications",
                                    {"topic": "responder.notifications", "title": "t", "key_id": KMS_KEY},
                                    event_naming(), QuotaWindows(), 0.0)
    assert trips == []
    assert kms.reads == 0


@pytest.mark.parametrize(("pattern", "names"), [
    ("alias/prod-key", True), ("ALIAS/x", True), (ALIAS_ARN, True), ("*prod-key", True), ("?lias/x", True),
    ("arn:aws:kms:*:*:*", True), ("[a]lias/x", True), ("prod-key", False), ("arn:aws:iam::*:role/x", False),
    (f"arn:aws:kms:*:*:key/{KMS_KEY}", False), ("role/admins/*", False),
    ("a*", True), ("al*", True), ("alia?/prod-key", True), ("arn:aws:kms:*:*:a*", True), ("ar*", True),
    ("admin*", False), ("arn:aws:kms:*:*:key/*", False), ("al", False), ("ar", False),
])
def test_which_patterns_can_name_an_alias(pattern: str, names: bool) -> None:
    """Patterns naming `alias`, or able to start like `alias/` (`a*`, `alia?/x`) or like an ARN, can match an alias."""
    assert names_alias(pattern) is names


def test_only_key_arns_name_kms_keys() -> None:
    """A key ARN (one a `key_id` parameter derives too) names a KMS key; a bare uuid in any other form does not."""
    assert key_ids({KMS_KEY, "i-0abc", KMS_KEY_ARN.casefold(), f"arn:*:kms:*:*:key/{KMS_KEY}"}) == {KMS_KEY}
    assert key_ids({KMS_KEY, "alias/prod-key", ALIAS_ARN}) == set()


class Pages:
    """ListAliases answered by the next of `pages` in turn, recording each request."""

    def __init__(self, *pages: dict[str, Any]) -> None:
        self.pages, self.asked = list(pages), []  # type: list[dict[str, Any]], list[dict[str, Any]]

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """The next page of kms.list_aliases."""
        assert (service, operation) == ("kms", "list_aliases")
        self.asked.append(kwargs)
        return self.pages.pop(0)


def _alias(name: str) -> dict[str, str]:
    return {"AliasName": name, "AliasArn": f"arn:aws:kms:us-east-1:123456789012:{name}", "TargetKeyId": KMS_KEY}


@pytest.mark.parametrize("pages", [
    [{"Truncated": False}],
    [{}],
    [{"Aliases": None, "Truncated": False}],
    [{"Aliases": [_alias("alias/other")], "Truncated": True, "NextMarker": "2"}, {"Truncated": False}],
])
async def test_a_list_aliases_answer_without_aliases_refuses(pages: list[dict[str, Any]]) -> None:
    """A ListAliases page with no `Aliases`, not even `[]`, is unreadable and refuses the step, saying so."""
    trips = await _trips(["alias/prod-key"], Pages(*pages))
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]
    assert "could not be read" in trips[0].detail
    assert "without Aliases" in trips[0].detail
    assert "kms:ListAliases" in trips[0].detail


async def test_aliases_truncated_without_a_marker_refuse() -> None:
    """A ListAliases page marked `Truncated` with no `NextMarker` refuses the step."""
    kms = Pages({"Aliases": [_alias("alias/other")], "Truncated": True})
    trips = await _trips(["alias/prod-key"], kms)
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]
    assert "truncated with no marker" in trips[0].detail


@pytest.mark.parametrize("first", [{"NextMarker": "m2"}, {"NextMarker": "m2", "Truncated": False}])
async def test_a_marker_without_truncated_is_followed(first: dict[str, Any]) -> None:
    """A page naming a `NextMarker` without `Truncated` is followed, and a protected alias on the next page refuses."""
    kms = Pages({"Aliases": [_alias("alias/other")], **first}, {"Aliases": [_alias("alias/prod-key")]})
    trips = await _trips(["alias/prod-key"], kms)
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]
    assert "alias/prod-key" in trips[0].detail
    assert kms.asked[1]["Marker"] == "m2"


async def test_more_pages_of_aliases_than_the_bound_refuse() -> None:
    """Pages past the bound (`_MAX_PAGES`) refuse the step rather than read for ever or stop short."""
    kms = Pages(*({"Aliases": [], "NextMarker": f"m{i}"} for i in range(kmsaliases._MAX_PAGES + 1)))
    trips = await _trips(["alias/prod-key"], kms)
    assert [(t.guard, t.hard) for t in trips] == [("protected", True)]
    assert f"more than {kmsaliases._MAX_PAGES} pages" in trips[0].detail
    assert len(kms.asked) == kmsaliases._MAX_PAGES


@pytest.mark.parametrize("page", [{"Aliases": []}, {"Aliases": [], "Truncated": False}])
async def test_an_empty_list_of_aliases_is_no_aliases(page: dict[str, Any]) -> None:
    """A key with no aliases, answered as moto and AWS answer it (`Aliases: []`), is acted on, not refused."""
    assert await _trips(["alias/prod-key"], Pages(page)) == []


async def test_only_the_keys_aliases_are_listed_a_hundred_a_page() -> None:
    """Every ListAliases request names the key's `KeyId` and asks for 100 aliases a page."""
    kms = Pages({"Aliases": [_alias("alias/other")], "Truncated": True, "NextMarker": "m2"},
                {"Aliases": [], "Truncated": False})
    assert await _trips(["alias/prod-key"], kms) == []
    assert [(a["KeyId"], a["Limit"]) for a in kms.asked] == [(KMS_KEY, 100), (KMS_KEY, 100)]
