"""An incident whose events come from several partitions (its runbook's group_by is not the Kafka record key) leaves
no stale changelog record in the partition it moved from."""

from __future__ import annotations

from pathlib import Path

from tests.fleet_kit import CompactedChangelog, quota_member, send_from


async def test_an_incident_joined_from_another_partition_moves_its_record(tmp_path: Path) -> None:
    """An incident joined from another partition moves its record there, tombstoning the old partition's record."""
    log = CompactedChangelog()
    kit, fleet = quota_member(tmp_path, "first", log, {0, 1})
    await send_from(kit, 0, "f1")
    [incident] = kit.engine.state.incidents.all()
    assert log.keys[0].get(incident.id) is not None
    await send_from(kit, 1, "f2")
    assert [i.id for i in kit.engine.state.incidents.all()] == [incident.id]
    assert fleet.partitions.of[incident.id] == 1
    assert log.keys[1].get(incident.id) is not None
    assert log.keys[0].get(incident.id) is None
    assert (0, incident.id) in log.tombstones


async def test_an_incident_named_from_a_partition_not_owned_keeps_its_record(tmp_path: Path) -> None:
    """An incident named from a partition this replica does not own keeps its record in the partition it came from."""
    log = CompactedChangelog()
    kit, _ = quota_member(tmp_path, "first", log, {0})
    await send_from(kit, 0, "f1")
    [incident] = kit.engine.state.incidents.all()
    await send_from(kit, 1, "f2")
    assert log.keys.get(1, {}).get(incident.id) is None
    assert log.keys[0].get(incident.id) is not None
    assert (0, incident.id) not in log.tombstones


async def test_a_key_moved_to_a_partition_another_replica_owns_is_a_new_incident_acted_on_again(
        tmp_path: Path) -> None:
    """A key moved to a partition another replica owns opens a new incident there, acted on again."""
    log = CompactedChangelog()
    first, _ = quota_member(tmp_path, "first", log, {0})
    second, _ = quota_member(tmp_path, "second", log, {1})
    await send_from(first, 0, "f1")
    await send_from(second, 1, "f2")
    [one], [two] = first.engine.state.incidents.all(), second.engine.state.incidents.all()
    assert one.group_key == two.group_key
    assert one.id != two.id
    assert (first.iam.count("update_access_key"), second.iam.count("update_access_key")) == (1, 1)
    assert log.keys[0].get(one.id) is not None
    assert log.keys[1].get(two.id) is not None
