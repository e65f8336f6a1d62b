"""The cursor of an activity stream: it owns the stream's state, from the previous one to the next.

It reads the previous state when built, is told which units of work (pipelines) the stream will emit, in
feed order, by the crawl, is told that a unit's records were all written (`partition_written`), and writes
the next state as the sync runs. Nothing else reads or writes a stream's state.

"Written" is learnt in band. The CDK calls `close_partition` on the worker thread as soon as the partition's
records are queued, before the main thread has written them (airbyte-cdk 7, `PartitionReader`), so a state
written then could count records that a sync killed a moment later never wrote. Each partition therefore
ends with a `PartitionWritten` marker, which reaches the main thread through the same queue only after the
partition's records; the source hands it to the cursor there and writes the state that follows from it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, MutableMapping, Optional

from airbyte_cdk.models import AirbyteLogMessage, Level
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import MessageRepository
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record

from source_circleci_ccm.components.progress import StreamProgress, Unit

CHECKPOINT_INTERVAL_SECONDS = 1.0


@dataclass
class PartitionWritten(AirbyteLogMessage):
    """In-band marker a partition yields after its last record (the CDK passes a log message a partition yields
    through its record queue); the source takes it out of the output and hands it to the stream's cursor."""

    partition: Optional[Partition] = None


class _EndOfPartition(Record):
    def __bool__(self) -> bool:
        return True  # the CDK's queue loop tests each item's truth, and a Record's is its data's length


def end_of(partition: Partition) -> Record:
    """What a partition yields after its last record, so its cursor learns when those records are written."""
    name = partition.stream_name()
    marker = PartitionWritten(level=Level.DEBUG, message=f"{name}: partition written", partition=partition)
    return _EndOfPartition(data=marker, stream_name=name)  # type: ignore[arg-type]  # a log message is stream data too


class _StateCursor(Cursor):
    """What both cursors share: they write their stream's state themselves, whatever the records say, once the
    records it counts are written (`partition_written`, on the main thread), never from `close_partition`."""

    stream_name: str
    _state_manager: ConnectorStateManager
    _message_repository: MessageRepository

    def observe(self, record: Record) -> None:
        """State is not derived from record values."""

    def should_be_synced(self, record: Record) -> bool:
        return True

    def ensure_at_least_one_state_emitted(self) -> None:
        self._emit_state()

    def close_partition(self, partition: Partition) -> None:
        """Called on the worker thread before the partition's records are written: nothing is counted yet."""

    def partition_written(self, partition: Partition) -> None:
        raise NotImplementedError

    def _emit_state(self) -> None:
        self._state_manager.update_state_for_stream(self.stream_name, None, self.state)
        self._message_repository.emit_message(self._state_manager.create_state_message(self.stream_name, None))


class ActivityCursor(_StateCursor):
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

    def partition_written(self, partition: Partition) -> None:
        """Every record of the partition is written: its units are done (progress is counted in units of work,
        not records)."""
        for unit in units_of(partition):
            self.progress.unit_emitted(unit)
        if time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL_SECONDS:
            self._emit_state()

    def _emit_state(self) -> None:
        self._last_checkpoint = time.monotonic()
        self.progress.set_server_time(self._server_time())
        super()._emit_state()


def units_of(partition: Partition) -> Iterable[Unit]:
    return getattr(partition, "units", ())


class KeyedCursor(_StateCursor):
    """The cursor of an incremental list stream (one partition per organisation): its state is one small value
    per key (an organisation), read from the previous state and replaced once that key's partition has been
    read whole, so a sync that fails part-way never moves a key past records it did not emit."""

    def __init__(
        self,
        stream_name: str,
        previous_state: Optional[MutableMapping[str, Any]],
        *,
        state_manager: ConnectorStateManager,
        message_repository: MessageRepository,
    ) -> None:
        self.stream_name = stream_name
        previous = (previous_state or {}).get("keys") if isinstance(previous_state, Mapping) else None
        self._previous: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
        self._next: dict[str, Any] = dict(self._previous)
        self._read_whole: dict[str, Any] = {}  # keys whose partition was read whole, until its records are written
        self._lock = threading.Lock()
        self._state_manager = state_manager
        self._message_repository = message_repository

    def previous(self, key: str) -> Any:
        """What the last sync left for `key` (None on a first or full-refresh sync)."""
        return self._previous.get(key)

    def advance(self, key: str, value: Any) -> None:
        """The partition of `key` was read whole: once its records are written, the next sync starts from `value`."""
        with self._lock:
            self._read_whole[key] = value

    @property
    def state(self) -> MutableMapping[str, Any]:
        with self._lock:
            return {"keys": dict(self._next)}

    def partition_written(self, partition: Partition) -> None:
        """The records of an organisation's partition are written: its key moves, if it was read whole."""
        key = (partition.to_slice() or {}).get("org_id")
        with self._lock:
            if key in self._read_whole:
                self._next[key] = self._read_whole.pop(key)
        self._emit_state()
