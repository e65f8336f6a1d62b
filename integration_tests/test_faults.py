"""Faults on the real HTTP path: the console script against the simulator.

Each scenario runs on its own simulator (its data depends on when it starts) and its records are compared
exactly with that simulator's truth, the records a correct sync emits; the clean scenario shows the
connector's clean run gives exactly those. The scenarios run a few at a time: a faulted sync spends most
of its time in backoff sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from source_circleci_ccm.components.progress import parse_time
from circleci_simulator import Faults, Simulator, SimulatorSettings
from integration_tests.harness import (
    ACTIVITY_STREAMS,
    CORE_STREAMS,
    Output,
    catalog,
    connector_command,
    run_connector,
)

# A short read timeout so "slower than the timeout" costs seconds, not minutes.
TIMEOUT_SECONDS = 1


def canonical(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(record, sort_keys=True) for record in records)


def without_top_level_nulls(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CDK's message serializer leaves out a record's top-level keys whose value is null (nested nulls
    stay): `{"stopped_at": null}` arrives as an absent key, which destinations read as the same null."""
    return [{key: value for key, value in record.items() if value is not None} for record in records]


@dataclass
class Scenario:
    faults: Faults = field(default_factory=Faults)
    settings: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    streams: tuple[str, ...] = CORE_STREAMS


@dataclass
class Run:
    """One scenario's sync and what the simulator saw."""

    output: Output
    truth: dict[str, Any]
    log: list[dict[str, Any]]
    by_status: dict[str, int]
    seconds: float


SCENARIOS: dict[str, Scenario] = {
    "clean": Scenario(),
    "5xx on 10% of requests": Scenario(Faults(error_5xx_rate=0.10, seed=1)),
    "HTML error pages": Scenario(Faults(html_error_rate=0.10, seed=2)),
    "connection resets": Scenario(Faults(reset_rate=0.08, seed=3)),
    "answers slower than the read timeout": Scenario(Faults(slow_rate=0.05, slow_seconds=TIMEOUT_SECONDS + 2, seed=4)),
    "200 with a truncated JSON body": Scenario(Faults(truncated_rate=0.12, seed=5)),
    "200 with a non-JSON body": Scenario(Faults(non_json_rate=0.12, seed=6)),
    "429 with Retry-After": Scenario(Faults(throttle_rate=0.04, retry_after_mode="seconds", seed=21)),
    "429 without Retry-After": Scenario(Faults(throttle_rate=0.04, retry_after_mode="none", seed=22)),
    "429 with RateLimit-Reset only": Scenario(Faults(throttle_rate=0.04, retry_after_mode="reset-only", seed=23)),
    "server rate limit": Scenario(settings={"rate_limit_rps": 60}),
    "page token answering 404": Scenario(Faults(stale_page_token_status=404)),
    "page token answering 400": Scenario(Faults(stale_page_token_status=400)),
}
RETRIED_FAULTS = [
    "5xx on 10% of requests",
    "HTML error pages",
    "connection resets",
    "answers slower than the read timeout",
    "200 with a truncated JSON body",
    "200 with a non-JSON body",
]
THROTTLES = ["429 with Retry-After", "429 without Retry-After", "429 with RateLimit-Reset only"]


def _run(scenario: Scenario) -> Run:
    with Simulator(SimulatorSettings.preset("tiny", **scenario.settings)) as sim:
        truth = sim.truth()
        sim.set_faults(scenario.faults)
        config = {"api_token": sim.token, "api_url": sim.base_url, "request_timeout_seconds": TIMEOUT_SECONDS}
        started = time.monotonic()
        output = run_connector("read", {**config, **scenario.config}, catalog(scenario.streams), timeout=150)
        return Run(output, truth, sim.request_log(), sim.stats()["by_status"], time.monotonic() - started)


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Every scenario, each on its own simulator, a few at a time: most of a faulted sync is backoff sleep."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, scenario) for name, scenario in SCENARIOS.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_exactly_what_circleci_holds(run: Run) -> None:
    """The records of a correct sync, which the clean run is shown to give."""
    assert run.output.returncode == 0 and not run.output.errors, [e["message"] for e in run.output.errors]
    for stream in CORE_STREAMS:
        expected = canonical(without_top_level_nulls(run.truth[stream]))
        actual = canonical(run.output.records.get(stream, []))
        assert actual == expected, (
            f"{stream}: {sum((actual - expected).values())} records a clean run does not have, "
            f"{sum((expected - actual).values())} missing"
        )


def test_the_clean_run_holds_exactly_what_circleci_holds(runs: dict[str, Run]) -> None:
    assert_exactly_what_circleci_holds(runs["clean"])
    assert not any(e["attempt"] > 1 for e in runs["clean"].log)


@pytest.mark.parametrize("name", RETRIED_FAULTS)
def test_the_sync_completes_with_exactly_the_clean_records(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert_exactly_what_circleci_holds(run)
    retried = {entry["path"] for entry in run.log if entry["attempt"] > 1}
    assert retried, "the fault was injected and retried"
    final = {entry["path"]: entry["status"] for entry in run.log}
    assert all(final[path] in (200, 403, 404) for path in retried), "every faulted URL was asked until it answered"


@pytest.mark.parametrize("name", ["200 with a truncated JSON body", "200 with a non-JSON body"])
def test_a_200_with_a_broken_body_is_retried_not_half_parsed(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert_exactly_what_circleci_holds(run)  # no partial, missing or extra records
    first_tries = {e["path"] for e in run.log if e["status"] == 200 and e["attempt"] == 1}
    asked_again = {e["path"] for e in run.log if e["attempt"] == 2}
    assert first_tries & asked_again, "some 200 answers were refused and asked again"


@pytest.mark.parametrize("name", THROTTLES)
def test_a_429_storm_is_waited_out(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert_exactly_what_circleci_holds(run)
    throttled = {e["path"] for e in run.log if e["status"] == 429}
    assert throttled
    assert run.seconds >= 1.0, "the sync waited as told (1 s)"
    final = {entry["path"]: entry["status"] for entry in run.log}
    assert all(final[path] != 429 for path in throttled)


def test_a_server_rate_limit_is_followed_without_a_storm_of_429s(runs: dict[str, Run]) -> None:
    """CircleCI's own limit: RateLimit-Remaining/Reset on every answer, 429 + Retry-After beyond it."""
    run = runs["server rate limit"]
    assert_exactly_what_circleci_holds(run)
    total = sum(run.by_status.values())
    assert run.by_status.get("429", 0) <= total * 0.25, run.by_status


@pytest.mark.parametrize("status", [404, 400])
def test_a_rejected_page_token_stops_that_list_with_a_warning_and_keeps_what_was_read(runs: dict[str, Run], status: int) -> None:
    run = runs[f"page token answering {status}"]
    output = run.output
    assert output.returncode == 0 and not output.errors
    token_requests = Counter(e["path"] for e in run.log if "page-token" in parse_qs(urlsplit(e["path"]).query))
    assert token_requests and all(count == 1 for count in token_requests.values()), "no loop on a rejected token"
    # The records read so far are kept: the first page of every list, nothing a clean run does not have.
    for stream in CORE_STREAMS:
        got = canonical(output.records.get(stream, []))
        assert not got - canonical(without_top_level_nulls(run.truth[stream])), f"{stream}: records CircleCI does not hold"
        assert all(count == 1 for count in got.values()), f"{stream}: duplicates"
    assert len(output.records["pipelines"]) == 2 * 20, "the first page of each organisation's feed"
    assert len(output.records["contexts"]) > 20, "the first page of the long context list, and the short one"
    warnings = output.logs("WARN")
    for path in token_requests:
        parts = urlsplit(path)
        rest = "&".join(f"{k}={v[0]}" for k, v in parse_qs(parts.query).items() if k != "page-token")
        listing = parts.path + (f"?{rest}" if rest else "")
        assert any(f"remaining pages of {listing}:" in w and f"with {status}" in w for w in warnings), listing


def test_a_project_the_token_cannot_see_is_skipped_with_a_warning_naming_it(runs: dict[str, Run]) -> None:
    clean = runs["clean"]
    restricted = clean.truth["restricted_projects"]
    assert restricted
    for project in restricted:
        assert any(f"Skipped project {project}:" in w and "403" in w for w in clean.output.logs("WARN")), project

    # Named directly in project_slugs, next to a readable one: skipped with a warning, the other one read.
    readable = next(p["project_slug"] for p in clean.truth["pipelines"] if p["project_slug"] not in restricted)
    run = _run(Scenario(config={"project_slugs": [restricted[0], readable]}, streams=("pipelines", "workflows")))
    assert run.output.returncode == 0 and not run.output.errors
    assert any(f"Skipped project {restricted[0]}:" in w and "403" in w for w in run.output.logs("WARN"))
    assert {r["project_slug"] for r in run.output.records["pipelines"]} == {readable}
    assert run.output.records["workflows"]


# --- a crash part-way through ----------------------------------------------------------------------------


def _start(config: dict, state: list | None, folder: Path) -> subprocess.Popen:
    args = connector_command() + ["read"]
    for flag, value in (("config", config), ("catalog", catalog(CORE_STREAMS)), ("state", state)):
        if value is not None:
            path = folder / f"{flag}.json"
            path.write_text(json.dumps(value))
            args += [f"--{flag}", str(path)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder)


def _done_intervals(state_message: dict) -> int:
    state = state_message["stream"].get("stream_state") or {}
    return sum(len(feed.get("done") or []) for feed in (state.get("feeds") or {}).values())


def test_a_sync_killed_part_way_resumes_from_its_last_state_and_loses_nothing() -> None:
    settings = SimulatorSettings.preset("small", latency_ms=20)
    with Simulator(settings) as sim, tempfile.TemporaryDirectory() as folder:
        truth = sim.truth()
        config = {"api_token": sim.token, "api_url": sim.base_url, "num_workers": 4}

        process = _start(config, None, Path(folder))
        messages, states, killed_at, jobs_read = [], {}, None, 0
        assert process.stdout is not None
        for line in process.stdout:
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            messages.append(message)
            if message["type"] == "RECORD" and message["record"]["stream"] == "jobs":
                jobs_read += 1
            if message["type"] == "STATE":
                name = message["state"]["stream"]["stream_descriptor"]["name"]
                states[name] = message["state"]
            # Kill half-way through the jobs, once every activity stream has checkpointed finished pipelines.
            checkpointed = set(ACTIVITY_STREAMS) <= set(states) and all(_done_intervals(states[s]) for s in ACTIVITY_STREAMS)
            if checkpointed and jobs_read >= len(truth["jobs"]) // 2:
                process.send_signal(signal.SIGKILL)
                killed_at = len(sim.request_log())
                break
        process.kill()
        process.wait(timeout=10)
        assert killed_at is not None, "the sync finished before it could be killed: raise the latency"
        assert process.returncode == -signal.SIGKILL
        first = Output(messages=messages, returncode=process.returncode, stderr="", seconds=0)
        assert 0 < len(first.records["jobs"]) < len(truth["jobs"]), "killed part-way"

        sim.settings.latency_ms = 0  # the latency only had to let the kill land mid-sync
        sim.reset_request_log()
        second = run_connector("read", config, catalog(CORE_STREAMS), list(states.values()), timeout=120)
        resumed_paths = {entry["path"] for entry in sim.request_log()}
        assert second.returncode == 0 and not second.errors

    for stream in CORE_STREAMS:
        expected = {r["id"] for r in truth[stream]}
        got = set(first.ids(stream)) | set(second.ids(stream))
        assert got == expected, f"{stream}: {len(expected - got)} lost, {len(got - expected)} unexpected"
    for stream in ACTIVITY_STREAMS:
        assert len(second.records[stream]) < len(truth[stream]), f"{stream} started from scratch"
    # What the design guarantees, whatever the timing of the kill: a pipeline the last checkpoint counts done
    # (and not unfinished) for every stream that reads workflows is not asked for its workflows again.
    done = [p for p in truth["pipelines"] if all(_checkpointed_done(states[s], p) for s in ("workflows", "jobs"))]
    assert done, "the checkpoint counted some pipelines done"
    asked_again = [p["id"] for p in done if f"/api/v2/pipeline/{p['id']}/workflow" in resumed_paths]
    assert asked_again == [], f"{len(asked_again)} of {len(done)} checkpointed pipelines read again"


def test_a_state_counts_a_pipeline_done_only_after_every_record_of_it_is_written() -> None:
    """Why a sync killed at any moment loses nothing: each state comes after every record of the pipelines it
    counts done. (The CDK closes a partition on its worker thread before the main thread writes its records;
    the cursor counts a partition only when its in-band end marker reaches the main thread, after them.)"""
    settings = SimulatorSettings.preset("small", latency_ms=5)
    with Simulator(settings) as sim:
        truth = sim.truth()
        config = {"api_token": sim.token, "api_url": sim.base_url, "num_workers": 8}
        output = run_connector("read", config, catalog(ACTIVITY_STREAMS), None, timeout=120)
    assert output.returncode == 0 and not output.errors
    pipeline_of = {r["id"]: r["id"] for r in truth["pipelines"]}
    pipeline_of.update({r["id"]: r["pipeline_id"] for stream in ("workflows", "jobs") for r in truth[stream]})
    pipelines = {p["id"]: p for p in truth["pipelines"]}
    emitted: dict[tuple[str, str], Counter[str]] = {}  # (stream, pipeline) -> records of it the sync writes
    for record_stream in ACTIVITY_STREAMS:
        for record_id in output.ids(record_stream):
            emitted.setdefault((record_stream, pipeline_of[record_id]), Counter())[record_id] += 1
    written: dict[tuple[str, str], Counter[str]] = {}
    states = 0
    for message in output.messages:
        if message["type"] == "RECORD":
            stream = message["record"]["stream"]
            key = (stream, pipeline_of[message["record"]["data"]["id"]])
            written.setdefault(key, Counter())[message["record"]["data"]["id"]] += 1
        elif message["type"] == "STATE":
            stream = message["state"]["stream"]["stream_descriptor"]["name"]
            states += 1
            for (record_stream, pipeline_id), records in emitted.items():
                if record_stream == stream and _checkpointed_done(message["state"], pipelines[pipeline_id]):
                    assert written.get((stream, pipeline_id), Counter()) >= records, (
                        f"a {stream} state counted pipeline {pipeline_id} done before all its records were written")
    assert states > len(ACTIVITY_STREAMS), "the sync checkpointed as it went, not only at the end"


def _checkpointed_done(state_message: dict, pipeline: dict) -> bool:
    """The state counts the pipeline done in its feed, and not as unfinished work to look at again."""
    feed = ((state_message["stream"].get("stream_state") or {}).get("feeds") or {}).get(pipeline["org_slug"]) or {}
    created = parse_time(pipeline["created_at"])
    in_done = any((parse_time(low) if low else float("-inf")) <= created <= parse_time(high) for low, high in feed.get("done") or [])
    pending_since = parse_time(feed.get("pending_since"))
    unfinished = created in {parse_time(t) for t in feed.get("pending") or []} or (pending_since is not None and created >= pending_since)
    return in_done and not unfinished


def test_the_sync_after_a_rejected_page_token_reads_what_it_missed() -> None:
    with Simulator(SimulatorSettings.preset("tiny")) as sim:
        truth = sim.truth()
        config = {"api_token": sim.token, "api_url": sim.base_url}
        sim.set_faults(Faults(stale_page_token_status=404))
        first = run_connector("read", config, catalog(CORE_STREAMS), timeout=60)
        sim.set_faults(Faults())
        second = run_connector("read", config, catalog(CORE_STREAMS), first.state, timeout=60)
    for stream in ACTIVITY_STREAMS:
        got = set(first.ids(stream)) | set(second.ids(stream))
        assert got == {r["id"] for r in truth[stream]}, f"{stream}: {len(truth[stream]) - len(got)} never read"
