"""The cursors count a partition only once its records are written (the in-band end marker), never when the CDK
closes it on the worker thread, before the main thread has written what it queued."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record

from source_circleci_ccm.components.cursor import ActivityCursor, KeyedCursor, PartitionWritten, end_of
from source_circleci_ccm.components.progress import parse_time


class _Partition(Partition):
    def __init__(self, stream: str, units: list = (), parent: Optional[Mapping[str, Any]] = None) -> None:
        self._stream, self.units, self._parent = stream, list(units), parent

    def read(self) -> Iterable[Record]:
        return ()

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return self._parent

    def stream_name(self) -> str:
        return self._stream

    def __hash__(self) -> int:
        return id(self)


def _activity_cursor() -> ActivityCursor:
    return ActivityCursor("pipelines", None, start=None, lookback_seconds=86400, server_time=lambda: None,
                          state_manager=ConnectorStateManager(), message_repository=InMemoryMessageRepository())


def test_a_closed_partition_counts_nothing_until_its_records_are_written() -> None:
    cursor = _activity_cursor()
    unit = cursor.progress.open_unit("gh/acme", parse_time("2026-11-01T10:00:00Z"))
    partition = _Partition("pipelines", [unit])
    cursor.close_partition(partition)
    assert cursor.state["feeds"]["gh/acme"]["done"] == []
    cursor.partition_written(partition)
    assert cursor.state["feeds"]["gh/acme"]["done"] == [["2026-11-01T10:00:00.000Z", "2026-11-01T10:00:00.000Z"]]


def test_a_keyed_cursor_moves_an_organisation_once_its_records_are_written() -> None:
    cursor = KeyedCursor("policy_decisions", None, state_manager=ConnectorStateManager(), message_repository=InMemoryMessageRepository())
    partition = _Partition("policy_decisions", parent={"org_id": "o1", "org_slug": "gh/acme"})
    cursor.advance("o1", "2026-11-01T10:00:00Z")  # the partition was read whole, its records are still queued
    cursor.close_partition(partition)
    assert cursor.state == {"keys": {}}
    cursor.partition_written(partition)
    assert cursor.state == {"keys": {"o1": "2026-11-01T10:00:00Z"}}


def test_a_partition_ends_with_a_marker_that_is_truthy_and_names_it() -> None:
    partition = _Partition("jobs")
    marker = end_of(partition)
    assert marker and isinstance(marker.data, PartitionWritten) and marker.data.partition is partition
    assert marker.stream_name == "jobs"
