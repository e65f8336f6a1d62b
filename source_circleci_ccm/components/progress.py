"""Incremental progress of one activity stream: which pipelines are done, which must be looked at again.

CircleCI lists pipelines newest first and cannot filter them by date, and a workflow may still be running
when it is first seen. So the state of an activity stream records, for each feed (an organisation, or a
project when `project_slugs` is set):

- `done`: intervals of pipeline `created_at` whose pipelines were fully processed. A pipeline outside
  every interval is new. A finished sync leaves one interval; a sync killed part-way leaves a second
  one, and the next sync fills the gap instead of starting again.
- `pending`: the `created_at` of each processed pipeline that still had unfinished work (a workflow
  running, failing or on hold), at most MAX_PENDING a feed. Those pipelines are looked at again, so a
  workflow is emitted again, and its jobs read, once it finishes. Past MAX_PENDING the list gives way to
  `pending_since`, the oldest of them, and every pipeline from there up is looked at again.

plus `server_time`, CircleCI's clock when the last finished sync started: a workflow that stopped after
it changed since. Its size depends on the number of feeds, never on the amount of history.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

Interval = list[float]  # [low, high]; low is -inf for "since the beginning"
_BEGINNING = float("-inf")
MAX_PENDING = 50  # unfinished pipelines remembered one by one per feed; beyond, a window from the oldest


def _ms(value: float) -> int:
    """Milliseconds: the precision of CircleCI's timestamps, and exact to compare."""
    return round(value * 1000)


def parse_time(value: Any) -> Optional[float]:
    """Epoch seconds of an RFC 3339 timestamp (with or without milliseconds); None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def format_time(value: Optional[float]) -> Optional[str]:
    if value is None or value == _BEGINNING:
        return None
    seconds, millis = divmod(_ms(value), 1000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


@dataclass
class FeedProgress:
    done: list[Interval] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)
    pending_since: Optional[float] = None

    def __post_init__(self) -> None:
        self._pending_ms = {_ms(value) for value in self.pending}

    def is_done(self, created_at: float) -> bool:
        return any(low <= created_at <= high for low, high in self.done)

    def is_pending(self, created_at: float) -> bool:
        if self.pending_since is not None and created_at >= self.pending_since:
            return True
        return _ms(created_at) in self._pending_ms

    def floor(self, start: Optional[float]) -> float:
        """The oldest `created_at` this sync must reach: the lowest gap in `done`, or the oldest pending pipeline."""
        bottom = start if start is not None else _BEGINNING
        lowest_gap = bottom if not self.done or self.done[0][0] > bottom else self.done[0][1]
        oldest_pending = min(self.pending + ([self.pending_since] if self.pending_since is not None else []), default=None)
        if oldest_pending is not None:
            lowest_gap = min(lowest_gap, oldest_pending)
        return max(lowest_gap, bottom)

    @classmethod
    def with_pending(cls, done: list[Interval], pending: list[float]) -> "FeedProgress":
        """Remember unfinished pipelines one by one, or as a window from the oldest when there are many."""
        pending = sorted(set(pending))
        if len(pending) > MAX_PENDING:
            return cls(done=_merge(done), pending_since=pending[0])
        return cls(done=_merge(done), pending=pending)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"done": [[format_time(low), format_time(high)] for low, high in self.done]}
        if self.pending_since is not None:
            state["pending_since"] = format_time(self.pending_since)
        else:
            state["pending"] = [format_time(value) for value in self.pending]
        return state

    @classmethod
    def from_state(cls, value: Mapping[str, Any]) -> "FeedProgress":
        done = [[_BEGINNING if low is None else parse_time(low), parse_time(high)] for low, high in value.get("done", [])]
        pending = [parse_time(item) for item in value.get("pending") or []]
        return cls(
            done=_merge(i for i in done if i[1] is not None),
            pending=[item for item in pending if item is not None],
            pending_since=parse_time(value.get("pending_since")),
        )


@dataclass(eq=False)
class Unit:
    """One pipeline's worth of work of a stream in this sync."""

    low: float
    high: float
    pending: bool = False  # it still had unfinished work: look at it again next sync
    countable: bool = True  # False when a list of it was cut: it must not count as done, so it is read again
    complete: bool = False
    feed: str = ""


@dataclass(eq=False)
class _FeedUnits:
    """A feed's units in this sync, newest first: the done ones at the head folded into one interval (and the
    unfinished pipelines among them), the rest one by one, so memory and the work of writing state grow with
    what is open, not with history."""

    newest: Optional[float] = None  # `high` of the first folded unit
    oldest: Optional[float] = None  # `low` of the last folded unit
    pending: list[float] = field(default_factory=list)  # folded units that still had unfinished work
    open: "deque[Unit]" = field(default_factory=deque)

    def fold(self) -> None:
        while len(self.open) > 1 and self.open[0].complete:
            unit, following = self.open[0], self.open[1]
            if following.high == unit.low and not following.complete:
                return  # same timestamp as an unfinished pipeline: the interval must stop above both
            self.open.popleft()
            self.newest = unit.high if self.newest is None else self.newest
            self.oldest = unit.low
            if unit.pending:
                self.pending.append(unit.high)

    def done_prefix(self) -> tuple[Optional[float], Optional[float], list[float], bool]:
        """(newest, oldest, unfinished among them, whether every unit is in it) of the done units at the head."""
        newest, oldest, pending = self.newest, self.oldest, list(self.pending)
        units = list(self.open)
        count = 0
        for index, unit in enumerate(units):
            if not unit.complete:
                break
            following = units[index + 1] if index + 1 < len(units) else None
            if following is not None and following.high == unit.low and not following.complete:
                break
            newest = unit.high if newest is None else newest
            oldest = unit.low
            if unit.pending:
                pending.append(unit.high)
            count += 1
        return newest, oldest, pending, count == len(units)


class StreamProgress:
    """Reads a stream's previous state, tracks this sync's partitions, and writes the next state."""

    def __init__(self, state: Optional[Mapping[str, Any]], *, start: Optional[float], lookback_seconds: float) -> None:
        state = state or {}
        self._lock = threading.Lock()
        self.since = parse_time(state.get("server_time"))
        self.start = start
        self._lookback_seconds = lookback_seconds
        self._previous = {key: FeedProgress.from_state(value) for key, value in (state.get("feeds") or {}).items()}
        self._units: dict[str, _FeedUnits] = {}
        self._finished_feeds: set[str] = set()
        self._all_generated = False
        self._cut: dict[str, float] = {}
        self._server_time: Optional[float] = None

    # --- what to read -------------------------------------------------------------------------------
    def feed(self, key: str) -> FeedProgress:
        return self._previous.get(key) or FeedProgress()

    def floor(self, key: str) -> float:
        return self.feed(key).floor(self.start)

    def is_new(self, key: str, created_at: float) -> bool:
        if self.start is not None and created_at < self.start:
            return False
        return not self.feed(key).is_done(created_at)

    def is_revisited(self, key: str, created_at: float) -> bool:
        return self.feed(key).is_pending(created_at) and not self.is_new(key, created_at)

    def changed_since_last_sync(self, *timestamps: Optional[str]) -> bool:
        """True when any of the record's timestamps is at or after the previous sync's start (or there was none).
        A timestamp that cannot be read counts as changed: emitting a record again beats losing it."""
        if self.since is None:
            return True
        times = [parse_time(value) for value in timestamps if value]
        return any(time is None or time >= self.since for time in times)

    # --- bookkeeping while the sync runs ---------------------------------------------------------------
    def set_server_time(self, value: Optional[float]) -> None:
        with self._lock:
            if self._server_time is None:
                self._server_time = value

    def open_unit(self, key: str, created_at: float, pending: bool = False, countable: bool = True) -> Unit:
        """Register the next pipeline of a feed (newest first) that this stream will emit."""
        with self._lock:
            unit = Unit(low=created_at, high=created_at, pending=pending, countable=countable)
            self._units.setdefault(key, _FeedUnits()).open.append(unit)
            unit.feed = key
            return unit

    def unit_emitted(self, unit: Unit) -> None:
        """Every record of the unit has been emitted."""
        with self._lock:
            unit.complete = unit.countable
            self._units[unit.feed].fold()

    def feed_listed(self, key: str, cut_at: Optional[float] = None) -> None:
        """Every unit of the feed has been opened. `cut_at`: the listing stopped part-way there (a rejected
        page token), so pipelines older than it were not seen."""
        with self._lock:
            self._finished_feeds.add(key)
            if cut_at is not None:
                self._cut[key] = cut_at

    def units_held(self) -> int:
        """Units of this sync kept one by one (those not folded into a done interval yet)."""
        with self._lock:
            return sum(len(feed.open) for feed in self._units.values())

    def all_listed(self) -> None:
        """Every feed of this sync has been listed."""
        with self._lock:
            self._all_generated = True

    # --- the next state --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self._lock:
            feeds: dict[str, Any] = {}
            finished = self._all_generated
            for key in sorted(set(self._previous) | set(self._units) | self._finished_feeds):
                progress, complete = self._next_feed(key)
                feeds[key] = progress.to_state()
                finished &= complete or key not in self._finished_feeds
            # Changes are measured from the previous sync's start until every feed of this one is done.
            server_time = self._server_time if finished and self._server_time is not None else self.since
            return {"server_time": format_time(server_time), "feeds": feeds}

    def _next_feed(self, key: str) -> tuple[FeedProgress, bool]:
        previous = self.feed(key)
        newest, oldest, pending, every_unit = self._units.get(key, _FeedUnits()).done_prefix()
        all_complete = key in self._finished_feeds and every_unit
        done = list(previous.done)
        if newest is not None and oldest is not None:
            low = max(self.floor(key), self._cut.get(key, _BEGINNING)) if all_complete else oldest
            done.append([low, newest])
        if self._server_time is not None:
            horizon = self._server_time - self._lookback_seconds
            pending = [value for value in pending if value >= horizon]
        if not all_complete:
            # Pipelines not reached yet may still be unfinished: keep every earlier one.
            if previous.pending_since is not None:
                return FeedProgress(done=_merge(done), pending_since=min(pending + [previous.pending_since])), False
            pending += previous.pending
        return FeedProgress.with_pending(done, pending), all_complete
