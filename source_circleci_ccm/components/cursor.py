"""The cursor of the activity streams: it emits the stream's progress as state while the sync runs.

The manifest can only declare datetime or counter cursors, which cannot say "pipelines done so far,
and the oldest one still running"; the source gives each activity stream this cursor instead.
"""

from __future__ import annotations

import time
from typing import Any, MutableMapping

from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import MessageRepository
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record

from source_circleci_ccm.components.http import SyncSession
from source_circleci_ccm.components.progress import StreamProgress

CHECKPOINT_INTERVAL_SECONDS = 1.0


class ActivityCursor(Cursor):
    def __init__(
        self,
        stream_name: str,
        progress: StreamProgress,
        session: SyncSession,
        message_repository: MessageRepository,
        state_manager: ConnectorStateManager,
    ) -> None:
        self._stream_name = stream_name
        self._progress = progress
        self._session = session
        self._message_repository = message_repository
        self._state_manager = state_manager
        self._last_checkpoint = time.monotonic()

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._progress.state()

    def observe(self, record: Record) -> None:
        """Progress is counted in partitions, not records."""

    def close_partition(self, partition: Partition) -> None:
        stream_slice = partition.to_slice()
        self._progress.partition_closed(stream_slice.extra_fields["unit"])  # type: ignore[union-attr]
        if time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL_SECONDS:
            self._emit_state()

    def ensure_at_least_one_state_emitted(self) -> None:
        self._emit_state()

    def should_be_synced(self, record: Record) -> bool:
        return True

    def _emit_state(self) -> None:
        self._last_checkpoint = time.monotonic()
        self._progress.set_server_time(self._session.server_time)
        self._state_manager.update_state_for_stream(self._stream_name, None, self.state)
        self._message_repository.emit_message(self._state_manager.create_state_message(self._stream_name, None))
