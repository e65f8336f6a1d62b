"""What the streams of one sync share: the HTTP session, the activity crawl and each stream's progress.

The CDK builds every manifest component separately from the config alone; the source starts one
SyncContext per run (it is given config, catalog and state) and the components find it here.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.declarative.requesters.requester import Requester

from source_circleci_ccm.components.crawl import ActivityCrawl, CircleCIApi
from source_circleci_ccm.components.http import SyncSession
from source_circleci_ccm.components.progress import StreamProgress, parse_time
from source_circleci_ccm.config import DEFAULT_NUM_WORKERS, DEFAULT_TIMEOUT_SECONDS, DEFAULT_UNFINISHED_LOOKBACK_DAYS


class SyncContext:
    _current: ClassVar[Optional["SyncContext"]] = None
    _current_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        config: Mapping[str, Any],
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> None:
        self.config = config
        workers = int(config.get("num_workers") or DEFAULT_NUM_WORKERS)
        self.session = SyncSession(workers, float(config.get("request_timeout_seconds") or DEFAULT_TIMEOUT_SECONDS))
        self._workers = workers
        self._state = ConnectorStateManager(state=state)
        self._selected = {configured.stream.name for configured in (catalog.streams if catalog else [])}
        self._full_refresh = {
            configured.stream.name
            for configured in (catalog.streams if catalog else [])
            if configured.sync_mode == SyncMode.full_refresh
        }
        self._lock = threading.Lock()
        self._requester: Optional[Requester] = None
        self._crawl: Optional[ActivityCrawl] = None
        self._progress: dict[str, StreamProgress] = {}

    @classmethod
    def begin(
        cls,
        config: Mapping[str, Any],
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> "SyncContext":
        with cls._current_lock:
            if cls._current is not None:
                cls._current.close()
            cls._current = cls(config, catalog, state)
            return cls._current

    @classmethod
    def current(cls, config: Mapping[str, Any]) -> "SyncContext":
        with cls._current_lock:
            if cls._current is None:
                cls._current = cls(config)
            return cls._current

    def is_selected(self, stream_name: str) -> bool:
        return stream_name in self._selected

    def use_requester(self, requester: Requester) -> None:
        """The crawl sends through the manifest's requester (routers offer theirs when they are built)."""
        with self._lock:
            if self._requester is None:
                self._requester = requester

    def crawl(self) -> ActivityCrawl:
        with self._lock:
            if self._crawl is None:
                if self._requester is None:
                    raise RuntimeError("no requester registered: build the streams before crawling")
                self._crawl = ActivityCrawl(
                    CircleCIApi(self._requester), self.config, self._workers, self.session.skips
                )
            return self._crawl

    def progress(self, stream_name: str) -> StreamProgress:
        with self._lock:
            if stream_name not in self._progress:
                state = None if stream_name in self._full_refresh else self._state.get_stream_state(stream_name, None)
                lookback_days = int(self.config.get("unfinished_lookback_days") or DEFAULT_UNFINISHED_LOOKBACK_DAYS)
                self._progress[stream_name] = StreamProgress(
                    state, start=parse_time(self.config.get("start_date")), lookback_seconds=lookback_days * 86400
                )
            return self._progress[stream_name]

    def close(self) -> None:
        if self._crawl is not None:
            self._crawl.close()
        self.session.close()
