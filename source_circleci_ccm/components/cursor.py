"""The cursor of an activity stream: it owns the stream's state, from the previous one to the next.

It reads the previous state when built, is told which units of work (pipelines) the stream will emit, in
feed order, by the crawl, is told that a unit's records were all emitted by the CDK (`close_partition`), and
writes the next state as the sync runs. Nothing else reads or writes a stream's state.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, MutableMapping, Optional

from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import MessageRepository
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record

from source_circleci_ccm.components.progress import StreamProgress, Unit

CHECKPOINT_INTERVAL_SECONDS = 1.0


class ActivityCursor(Cursor):
    def __init__(
        self,
        stream_name: str,
        previous_state: Optional[MutableMapping[str, Any]],
        *,
        start: Optional[float],
        lookback_seconds: float,
        server_time: Callable[[], Optional[float]],
        state_manager: ConnectorStateManager,
        message_repository: MessageRepository,
    ) -> None:
        self.stream_name = stream_name
        self.progress = StreamProgress(previous_state, start=start, lookback_seconds=lookback_seconds)
        self._server_time = server_time
        self._state_manager = state_manager
        self._message_repository = message_repository
        self._last_checkpoint = time.monotonic()

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self.progress.state()

    def observe(self, record: Record) -> None:
        """Progress is counted in units of work, not records."""

    def close_partition(self, partition: Partition) -> None:
        """The CDK has emitted every record of the partition: its units are done."""
        for unit in units_of(partition):
            self.progress.unit_emitted(unit)
        if time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL_SECONDS:
            self._emit_state()

    def ensure_at_least_one_state_emitted(self) -> None:
        self._emit_state()

    def should_be_synced(self, record: Record) -> bool:
        return True

    def _emit_state(self) -> None:
        self._last_checkpoint = time.monotonic()
        self.progress.set_server_time(self._server_time())
        self._state_manager.update_state_for_stream(self.stream_name, None, self.state)
        self._message_repository.emit_message(self._state_manager.create_state_message(self.stream_name, None))


def units_of(partition: Partition) -> Iterable[Unit]:
    return getattr(partition, "units", ())
