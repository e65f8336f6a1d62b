"""Incremental progress of activity streams: what is new, what is looked at again, what the state says."""

from __future__ import annotations

from source_circleci_ccm.components.progress import MAX_PENDING, FeedProgress, StreamProgress, format_time, parse_time

DAY = 86400.0
T0 = parse_time("2026-11-01T00:00:00Z")
FEED = "gh/acme"


def at(days: float) -> float:
    return T0 + days * DAY


def progress(state=None, start=None) -> StreamProgress:
    return StreamProgress(state, start=start, lookback_seconds=30 * DAY)


def run_units(p: StreamProgress, created: list[float], complete: int, pending: set[float] = frozenset()) -> None:
    """Register one unit a pipeline (newest first); the first `complete` have all their records emitted."""
    units = [p.open_unit(FEED, created_at, pending=created_at in pending) for created_at in created]
    for unit in units[:complete]:
        p.unit_emitted(unit)


def test_first_sync_reads_everything_from_the_start_date() -> None:
    assert progress().floor(FEED) == float("-inf")
    assert progress(start=at(3)).floor(FEED) == at(3)
    assert progress(start=at(3)).is_new(FEED, at(2)) is False


def test_a_finished_sync_leaves_one_interval_and_the_next_reads_only_newer_pipelines() -> None:
    first = progress()
    first.set_server_time(at(10))
    run_units(first, [at(9), at(8), at(7)], complete=3)
    first.feed_listed(FEED)
    first.all_listed()
    state = first.state()

    assert state["feeds"][FEED] == {"done": [[None, format_time(at(9))]], "pending": []}
    assert state["server_time"] == format_time(at(10))
    second = progress(state)
    assert second.floor(FEED) == at(9)
    assert second.is_new(FEED, at(9.5)) and not second.is_new(FEED, at(8))


def test_a_sync_killed_part_way_keeps_what_it_finished_and_the_next_fills_the_gap() -> None:
    previous = {"server_time": format_time(at(5)), "feeds": {FEED: {"done": [[None, format_time(at(4))]], "pending_since": None}}}
    crashed = progress(previous)
    crashed.set_server_time(at(10))
    run_units(crashed, [at(9), at(8), at(7), at(6)], complete=2)  # killed before 7 and 6 finished

    checkpoint = crashed.state()

    assert checkpoint["feeds"][FEED]["done"] == [[None, format_time(at(4))], [format_time(at(8)), format_time(at(9))]]
    assert checkpoint["server_time"] == format_time(at(5)), "changes are still measured from the last finished sync"
    resumed = progress(checkpoint)
    assert resumed.floor(FEED) == at(4)
    assert [resumed.is_new(FEED, at(d)) for d in (9.5, 9, 8, 7, 6, 3)] == [True, False, False, True, True, False]


def test_unfinished_work_is_looked_at_again_until_it_finishes() -> None:
    first = progress()
    first.set_server_time(at(10))
    run_units(first, [at(9), at(8), at(7)], complete=3, pending={at(8)})
    first.feed_listed(FEED)
    first.all_listed()
    state = first.state()
    assert state["feeds"][FEED]["pending"] == [format_time(at(8))]

    second = progress(state)
    assert second.floor(FEED) == at(8)
    assert second.is_revisited(FEED, at(8))
    assert not second.is_revisited(FEED, at(9)) and not second.is_revisited(FEED, at(7)), "finished ones are not re-read"

    second.set_server_time(at(11))
    run_units(second, [at(8)], complete=1)  # now finished
    second.feed_listed(FEED)
    second.all_listed()
    assert second.state()["feeds"][FEED]["pending"] == []


def test_many_unfinished_pipelines_give_way_to_a_window_from_the_oldest() -> None:
    p = progress()
    p.set_server_time(at(10))
    created = [at(9 - i * 0.01) for i in range(MAX_PENDING + 1)]
    run_units(p, created, complete=len(created), pending=set(created))
    p.feed_listed(FEED)
    p.all_listed()

    feed = p.state()["feeds"][FEED]
    assert feed["pending_since"] == format_time(min(created)) and "pending" not in feed
    assert progress(p.state()).is_revisited(FEED, at(8.995))


def test_unfinished_work_older_than_the_lookback_is_no_longer_followed() -> None:
    p = progress()
    p.set_server_time(at(40))
    run_units(p, [at(39), at(2)], complete=2, pending={at(2)})
    p.feed_listed(FEED)
    p.all_listed()

    assert p.state()["feeds"][FEED]["pending"] == []


def test_changes_are_measured_from_the_previous_sync_start() -> None:
    p = progress({"server_time": format_time(at(5)), "feeds": {}})

    assert p.changed_since_last_sync(format_time(at(4)), format_time(at(6)))
    assert not p.changed_since_last_sync(format_time(at(4)), None)
    assert progress().changed_since_last_sync(None)
    assert p.changed_since_last_sync("not a time"), "an unreadable timestamp is emitted again, never a crash"


def test_a_unit_sharing_a_timestamp_with_an_unfinished_one_is_not_counted_done() -> None:
    p = progress()
    run_units(p, [at(9), at(8), at(8)], complete=2)

    assert p.state()["feeds"][FEED]["done"] == [[format_time(at(9)), format_time(at(9))]]


def test_state_does_not_grow_with_history() -> None:
    p = progress()
    p.set_server_time(at(400))
    run_units(p, [at(399 - i * 0.01) for i in range(5000)], complete=5000)
    p.feed_listed(FEED)
    p.all_listed()

    assert len(str(p.state())) < 300


def test_feed_progress_round_trips_through_state() -> None:
    exact = FeedProgress(done=[[float("-inf"), at(3)], [at(5), at(6)]], pending=[at(5.5), at(5.75)])
    window = FeedProgress(done=[[at(1), at(3)]], pending_since=at(2.5))

    assert FeedProgress.from_state(exact.to_state()) == exact
    assert FeedProgress.from_state(window.to_state()) == window


def test_done_units_are_folded_so_a_sync_holds_only_what_is_open() -> None:
    p = progress()
    run_units(p, [at(399 - i * 0.01) for i in range(5000)], complete=4000)
    assert p.units_held() <= 1001  # the 1,000 still open, and the last done one before them
    assert p.state()["feeds"][FEED]["done"] == [[format_time(at(399 - 3999 * 0.01)), format_time(at(399))]]
