"""The deterministic parts of issue 6 (speed), against the simulator; `scripts/bench.py` reports the timings.

- a full sync fetches every URL once, and makes exactly the requests the data implies (pages of each list);
- a repeat sync with nothing new costs a handful of requests per organisation and emits no finished work again;
- the state stays under 16 KB and does not grow with history;
- under a server rate limit every record arrives and the connector paces itself instead of bouncing off 429s.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from integration_tests.harness import CORE_STREAMS, Output, catalog, run_connector

PAGE_SIZE = 20
TERMINAL = frozenset({"success", "failed", "error", "canceled", "not_run", "unauthorized"})
UNSETTLED_PIPELINE_STATES = frozenset({"setup-pending", "setup", "pending"})
MAX_STATE_BYTES = 16 * 1024


# --------------------------------------------------------------------------- helpers
def pages(items: int) -> int:
    """Requests to read a list of `items` (an empty list still costs one)."""
    return max(1, math.ceil(items / PAGE_SIZE))


def config_of(sim: Simulator, **extra: Any) -> dict[str, Any]:
    return {"api_token": sim.token, "api_url": sim.base_url, "num_workers": 16, **extra}


def full_sync(sim: Simulator, **extra: Any) -> Output:
    out = run_connector("read", config_of(sim, **extra), catalog(CORE_STREAMS))
    assert out.returncode == 0, out.stderr[-3000:]
    assert not out.errors, out.errors
    return out


def state_bytes(out: Output) -> int:
    return len(json.dumps(out.state, separators=(",", ":")))


def paths(sim: Simulator) -> Counter:
    return Counter((entry["method"], entry["path"]) for entry in sim.request_log())


def full_refresh_requests(truth: dict[str, Any]) -> int:
    """me + collaborations + every page of each organisation's contexts."""
    contexts = Counter(c["org_id"] for c in truth["contexts"])
    return 2 + sum(pages(contexts[org["id"]]) for org in truth["collaborations"])


def restricted_pipelines(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in truth["pipelines"] if p["project_slug"] in set(truth["restricted_projects"])]


def implied_full_sync_requests(truth: dict[str, Any]) -> int:
    """The distinct URLs a full sync of the core streams must read, from the simulator's truth:
    the full-refresh lists, every page of each organisation's pipeline feed, every readable pipeline's workflow
    list (one 404 for an aged-out one), every page of each finished workflow's jobs, and one 403 per restricted
    project (after its first 403 a project's other pipelines are not asked; requests already in flight may
    still be, see `restricted_pipelines`)."""
    feed = Counter(p["org_slug"] for p in truth["pipelines"])
    workflows = Counter(w["pipeline_id"] for w in truth["workflows"])
    jobs = Counter(j["workflow_id"] for j in truth["jobs"])
    restricted = {p["id"] for p in restricted_pipelines(truth)}
    return (
        full_refresh_requests(truth)
        + sum(pages(feed[org["slug"]]) for org in truth["collaborations"])
        + sum(pages(workflows[p["id"]]) for p in truth["pipelines"] if p["id"] not in restricted)
        + len(truth["restricted_projects"])
        + sum(pages(jobs[w["id"]]) for w in truth["workflows"] if w["status"] in TERMINAL)
    )


def unfinished_pipelines(truth: dict[str, Any]) -> set[str]:
    """Readable pipelines with a workflow not yet in a terminal state (or no workflow yet while still setting up)."""
    by_pipeline: dict[str, list[dict[str, Any]]] = {}
    for w in truth["workflows"]:
        by_pipeline.setdefault(w["pipeline_id"], []).append(w)
    unreadable = set(truth["aged_out_pipelines"]) | {
        p["id"] for p in truth["pipelines"] if p["project_slug"] in set(truth["restricted_projects"])
    }
    unfinished = set()
    for p in truth["pipelines"]:
        if p["id"] in unreadable:
            continue
        workflows = by_pipeline.get(p["id"], [])
        if any(w["status"] not in TERMINAL for w in workflows) or (
            not workflows and p["state"] in UNSETTLED_PIPELINE_STATES
        ):
            unfinished.add(p["id"])
    return unfinished


def incremental_sync_bound(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Most requests the sync after a finished one may make, from the simulator's truth at the first sync
    (`before`) and now (`after`): the full-refresh lists; for each organisation the pipeline pages down to the
    oldest pipeline it must look at again (the first page when there is none); the workflow lists of the
    pipelines that were unfinished or are new; and every job page of the workflows that finished since."""
    known = {p["id"] for p in before["pipelines"]}
    revisit = unfinished_pipelines(before) | {p["id"] for p in after["pipelines"] if p["id"] not in known}
    finished_before = {w["id"] for w in before["workflows"] if w["status"] in TERMINAL}
    workflows = Counter(w["pipeline_id"] for w in after["workflows"])
    jobs = Counter(j["workflow_id"] for j in after["jobs"])
    feed_pages = 0
    for org in after["collaborations"]:
        feed = [p["id"] for p in after["pipelines"] if p["org_slug"] == org["slug"]]  # newest first
        deepest = max((index for index, pid in enumerate(feed) if pid in revisit), default=0)
        feed_pages += deepest // PAGE_SIZE + 1
    job_pages = sum(
        pages(jobs[w["id"]])
        for w in after["workflows"]
        if w["status"] in TERMINAL and w["id"] not in finished_before and w["pipeline_id"] in revisit
    )
    return full_refresh_requests(after) + feed_pages + sum(pages(workflows[pid]) for pid in revisit) + job_pages


def repeat_sync_bound(truth: dict[str, Any]) -> int:
    """The same with no new activity: the full-refresh lists, the feed pages down to each organisation's oldest
    unfinished pipeline and the workflow lists of the unfinished pipelines (their workflows may finish)."""
    return incremental_sync_bound(truth, truth)


def assert_every_record_arrived(out: Output, truth: dict[str, Any]) -> None:
    for stream in CORE_STREAMS:
        expected = {item["id"] for item in truth[stream]}
        got = out.ids(stream)
        assert sorted(got) == sorted(expected), f"{stream}: {len(expected - set(got))} missing, {len(got) - len(set(got))} twice"


# --------------------------------------------------------------------------- fixtures
@dataclass
class FullSync:
    truth: dict[str, Any]
    out: Output
    fetched: Counter  # (method, path) -> times requested


@pytest.fixture(scope="module", params=["tiny", "small"])
def full(request: pytest.FixtureRequest) -> FullSync:
    """A full sync of the core streams on a fresh simulator of the given size (no latency, no faults)."""
    with Simulator(SimulatorSettings.preset(request.param)) as sim:
        out = full_sync(sim)
        return FullSync(truth=sim.truth(), out=out, fetched=paths(sim))


# --------------------------------------------------------------------------- memory: a bounded window
WINDOW_LINE = re.compile(r"The crawl held at most (\d+) pipelines' answers at once \(window (\d+)\)")


def test_the_crawl_never_holds_more_than_its_window_whatever_the_history(full: FullSync) -> None:
    """The crawl's own count of pipelines held at once, reported at the end of every sync: at most the window,
    on the tiny and on the small organisation alike (unit_tests/test_crawl_window.py proves it waits there)."""
    reports = [WINDOW_LINE.search(line) for line in full.out.logs("INFO")]
    held, window = next((int(m.group(1)), int(m.group(2))) for m in reports if m)
    assert 0 < held <= window
    assert window == 64


# --------------------------------------------------------------------------- full sync: every URL once, no more
def test_a_full_sync_fetches_every_url_once(full: FullSync) -> None:
    twice = {path: count for (_, path), count in full.fetched.items() if count > 1}
    assert twice == {}, f"{len(twice)} URLs fetched more than once, e.g. {sorted(twice)[:5]}"


def test_a_full_sync_makes_exactly_the_requests_the_data_implies(full: FullSync) -> None:
    assert_every_record_arrived(full.out, full.truth)
    implied = implied_full_sync_requests(full.truth)
    extra_403s = len(restricted_pipelines(full.truth)) - len(full.truth["restricted_projects"])
    assert implied <= sum(full.fetched.values()) <= implied + extra_403s


def test_the_state_of_a_full_sync_is_bounded_by_the_organisations_not_the_pipelines(full: FullSync) -> None:
    assert full.out.state, "no state was emitted"
    organisations = len(full.truth["collaborations"])
    assert state_bytes(full.out) < MAX_STATE_BYTES
    assert state_bytes(full.out) <= organisations * 1024, "about 1 KB an organisation whatever the history"


# --------------------------------------------------------------------------- repeat syncs: nearly free
@dataclass
class Incremental:
    full: Output
    before: dict[str, Any]  # truth at the full sync
    after: dict[str, Any]  # truth at the next sync
    out: Output  # the next sync, with the full sync's state
    requests: list[str]  # paths it requested
    new_pipelines: set[str]


def _next_sync(new_pipelines: int) -> Incremental:
    with Simulator(SimulatorSettings.preset("tiny")) as sim:
        full = full_sync(sim)
        before = sim.truth()
        new_ids: set[str] = set()
        if new_pipelines:
            new_ids = set(sim.add_activity(pipelines=new_pipelines))
            sim.finish_running()
        after = sim.truth()
        sim.reset_request_log()
        out = run_connector("read", config_of(sim), catalog(CORE_STREAMS), full.state)
        assert out.returncode == 0 and not out.errors, out.stderr[-3000:]
        return Incremental(full, before, after, out, [e["path"] for e in sim.request_log()], new_ids)


@pytest.fixture(scope="module")
def repeat() -> Incremental:
    """A full sync, then the next one with no new activity."""
    return _next_sync(new_pipelines=0)


@pytest.fixture(scope="module")
def after_activity() -> Incremental:
    """A full sync, two new pipelines and every running workflow finished, then the next sync."""
    return _next_sync(new_pipelines=2)




def test_a_repeat_sync_with_no_new_activity_emits_no_finished_work_again(repeat: Incremental) -> None:
    assert repeat.out.records.get("pipelines", []) == []
    finished_before = {w["id"] for w in repeat.full.records["workflows"] if w["status"] in TERMINAL}
    assert finished_before.isdisjoint(repeat.out.ids("workflows"))
    assert repeat.out.records.get("jobs", []) == []  # nothing finished since


def test_a_repeat_sync_with_no_new_activity_costs_a_handful_of_requests_an_organisation(repeat: Incremental) -> None:
    organisations = len(repeat.before["collaborations"])
    beyond_full_refresh = len(repeat.requests) - full_refresh_requests(repeat.before)
    assert beyond_full_refresh <= 5 * organisations, repeat.requests


def test_a_repeat_sync_reads_only_the_workflows_of_unfinished_pipelines(repeat: Incremental) -> None:
    bound = repeat_sync_bound(repeat.before)
    assert len(repeat.requests) <= bound, f"{len(repeat.requests)} requests, bound {bound}: {repeat.requests}"


def test_after_new_activity_the_next_sync_emits_only_the_new_and_the_newly_finished(after_activity: Incremental) -> None:
    run, truth = after_activity, after_activity.after
    was_unfinished = {w["id"] for w in run.full.records["workflows"] if w["status"] not in TERMINAL}
    assert set(run.out.ids("pipelines")) == run.new_pipelines
    new_workflows = {w["id"] for w in truth["workflows"] if w["pipeline_id"] in run.new_pipelines}
    assert set(run.out.ids("workflows")) == new_workflows | was_unfinished
    jobs_expected = {j["id"] for j in truth["jobs"] if j["workflow_id"] in new_workflows | was_unfinished}
    assert sorted(run.out.ids("jobs")) == sorted(jobs_expected)


def test_after_new_activity_the_next_sync_makes_only_the_requests_the_change_implies(after_activity: Incremental) -> None:
    bound = incremental_sync_bound(after_activity.before, after_activity.after)
    assert len(after_activity.requests) <= bound, f"{len(after_activity.requests)} requests, bound {bound}"


# --------------------------------------------------------------------------- state size
def test_state_does_not_grow_with_history() -> None:
    with Simulator(SimulatorSettings.preset("tiny")) as shorter_history:
        short = full_sync(shorter_history)
    with Simulator(SimulatorSettings.preset("tiny", pipelines_per_project=60)) as longer_history:
        long = full_sync(longer_history)
        assert len(long.records["pipelines"]) >= 3 * len(short.records["pipelines"])

    assert state_bytes(short) < MAX_STATE_BYTES
    assert state_bytes(long) < MAX_STATE_BYTES
    # Same organisations, four times the pipelines: the same state, give or take a few timestamps.
    assert state_bytes(long) <= state_bytes(short) + 200, (state_bytes(short), state_bytes(long))


# --------------------------------------------------------------------------- under a rate limit
def test_under_a_rate_limit_every_record_arrives_and_the_connector_paces_itself() -> None:
    with Simulator(SimulatorSettings.preset("tiny", rate_limit_rps=30)) as sim:
        out = full_sync(sim)
        truth = sim.truth()
        log = sim.request_log()

    assert_every_record_arrived(out, truth)
    throttled = sum(1 for entry in log if entry["status"] == 429)
    answered = len(log) - throttled
    assert answered >= implied_full_sync_requests(truth)
    # Pacing by RateLimit-Remaining/Reset and Retry-After: 429s stay a small share of the requests,
    # never one per request as a client retrying blindly would get (loose: the bucket starts full, so
    # requests already in flight when it empties still bounce).
    assert throttled <= answered // 3, f"{throttled} 429s for {answered} answered requests"
