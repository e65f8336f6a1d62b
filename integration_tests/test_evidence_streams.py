"""The deeper-evidence streams (issue 4) through the console script, against the tiny simulator.

One full sync of all 16 streams and one incremental sync after new activity are shared by the module's
tests (each sync is a subprocess run; the assertions are one behaviour each).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Iterator

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from integration_tests.harness import CORE_STREAMS, Output, TwoSyncs, catalog, run_connector, sync_twice

EVIDENCE_STREAMS = (
    "pipeline_configs",
    "projects",
    "project_settings",
    "project_env_vars",
    "project_checkout_keys",
    "context_env_vars",
    "context_restrictions",
    "job_details",
    "job_steps",
    "users",
)
ACTIVITY_EVIDENCE = ("pipeline_configs", "job_details", "job_steps", "users")
ALL_STREAMS = CORE_STREAMS + EVIDENCE_STREAMS

# Every endpoint of issue 4, as the simulator logs it (path and query).
EVIDENCE_ENDPOINT = re.compile(
    r"^/api/(v1\.1/|v2/user/|v2/project/|v2/pipeline/[^/?]+/config|v2/context/[^/?]+/(environment-variable|restrictions))"
)
JOB_ENDPOINT = re.compile(r"^/api/(?:v2/project/(?P<v2>[^/]+/[^/]+/[^/]+)/job/|v1\.1/project/(?P<v1>[^/]+/[^/]+/[^/]+)/)(?P<number>[^/?]+)")
LONG_PROVIDER = {"gh": "github", "bb": "bitbucket", "circleci": "circleci"}


def _flatten_settings(record: dict[str, Any]) -> dict[str, Any]:
    return {**record.get("advanced", {}), **{k: v for k, v in record.items() if k != "advanced"}}


def _truth_steps(builds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "job_id": build["workflows"]["job_id"],
            "job_number": build["build_num"],
            "workflow_id": build["workflows"]["workflow_id"],
            "pipeline_id": build["workflows"]["pipeline_id"],
            "project_slug": build["project_slug"],
            "step_index": index,
            "name": step["name"],
            "actions": step["actions"],
        }
        for build in builds
        for index, step in enumerate(build["steps"])
    ]


# stream -> (the record's key, how a truth record looks as the stream emits it)
KEYS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[list[dict[str, Any]]], list[dict[str, Any]]]]] = {
    "pipeline_configs": (lambda r: r["pipeline_id"], lambda t: t),
    "projects": (lambda r: r["id"], lambda t: t),
    "project_settings": (lambda r: r["project_slug"], lambda t: [_flatten_settings(r) for r in t]),
    "project_env_vars": (lambda r: (r["project_slug"], r["name"]), lambda t: t),
    "project_checkout_keys": (lambda r: (r["project_slug"], r["fingerprint"]), lambda t: t),
    "context_env_vars": (lambda r: (r["context_id"], r["variable"]), lambda t: t),
    "context_restrictions": (lambda r: r["id"], lambda t: t),
    "job_details": (lambda r: (r["project"]["slug"], r["number"]), lambda t: t),
    "job_steps": (lambda r: (r["job_id"], r["step_index"]), _truth_steps),
    "users": (lambda r: r["id"], lambda t: t),
}


def expected(truth: dict[str, Any], stream: str) -> dict[Any, dict[str, Any]]:
    key, shape = KEYS[stream]
    return {key(record): record for record in shape(truth[stream])}


def keys_of(output: Output, stream: str) -> list[Any]:
    key, _ = KEYS[stream]
    return [key(record) for record in output.records.get(stream, [])]


@pytest.fixture(scope="module")
def syncs() -> Iterator[TwoSyncs]:
    with Simulator(SimulatorSettings.preset("tiny")) as sim:
        yield sync_twice(sim, ALL_STREAMS)


def _changed(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = {record["id"]: record for record in before}
    return [record for record in after if old.get(record["id"]) != record]


def expected_incremental(syncs: TwoSyncs, stream: str) -> set[Any]:
    """What an incremental sync must emit: new configs, details and steps of newly finished jobs, and the
    users behind the workflows and jobs the sync emits."""
    if stream == "users":
        people = set()
        for workflow in _changed(syncs.truth["workflows"], syncs.truth_after["workflows"]):
            people |= {workflow.get(k) for k in ("started_by", "canceled_by", "errored_by")}
        for job in _changed(syncs.truth["jobs"], syncs.truth_after["jobs"]):
            people |= {job.get(k) for k in ("approved_by", "canceled_by")}
        return people - {None}
    return set(expected(syncs.truth_after, stream)) - set(expected(syncs.truth, stream))


# --- full sync ----------------------------------------------------------------------------------------------


def test_a_full_sync_of_all_streams_succeeds(syncs: TwoSyncs) -> None:
    assert syncs.full.returncode == 0, syncs.full.stderr[-2000:]
    assert syncs.full.errors == []


@pytest.mark.parametrize("stream", EVIDENCE_STREAMS)
def test_a_full_sync_emits_exactly_what_the_simulator_holds(syncs: TwoSyncs, stream: str) -> None:
    truth = expected(syncs.truth, stream)
    got = keys_of(syncs.full, stream)

    assert len(got) == len(set(got)), f"{stream}: duplicate keys {[k for k, n in Counter(got).items() if n > 1][:5]}"
    assert set(got) == set(truth)
    assert len(got) == len(truth) > 0


@pytest.mark.parametrize("stream", EVIDENCE_STREAMS)
def test_full_sync_records_carry_every_field_as_the_api_gives_it(syncs: TwoSyncs, stream: str) -> None:
    key, _ = KEYS[stream]
    truth = expected(syncs.truth, stream)
    for record in syncs.full.records[stream]:
        want = truth[key(record)]
        assert {field: record.get(field) for field in want} == want


@pytest.mark.parametrize(
    "stream, parent_keys",
    [
        ("pipeline_configs", ("pipeline_id", "project_slug")),
        ("project_settings", ("project_slug",)),
        ("project_env_vars", ("project_slug",)),
        ("project_checkout_keys", ("project_slug",)),
        ("context_env_vars", ("context_id", "org_slug")),
        ("context_restrictions", ("context_id", "org_slug")),
        ("job_details", ("job_id", "project_slug", "workflow_id", "pipeline_id")),
        ("job_steps", ("job_id", "job_number", "project_slug", "workflow_id", "pipeline_id", "step_index")),
    ],
)
def test_every_record_carries_its_parent_keys(syncs: TwoSyncs, stream: str, parent_keys: tuple[str, ...]) -> None:
    for record in syncs.full.records[stream]:
        assert all(record.get(k) not in (None, "") for k in parent_keys), record


def test_job_details_parent_keys_match_the_jobs_stream(syncs: TwoSyncs) -> None:
    jobs = {job["id"]: job for job in syncs.full.records["jobs"]}
    for detail in syncs.full.records["job_details"]:
        job = jobs[detail["job_id"]]
        assert (job["job_number"], job["workflow_id"], job["pipeline_id"], job["project_slug"]) == (
            detail["number"],
            detail["workflow_id"],
            detail["pipeline_id"],
            detail["project_slug"],
        )


def test_context_records_name_the_organisation_of_their_context(syncs: TwoSyncs) -> None:
    org_of_context = {c["id"]: c["org_slug"] for c in syncs.truth["contexts"]}
    for stream in ("context_env_vars", "context_restrictions"):
        for record in syncs.full.records[stream]:
            assert record["org_slug"] == org_of_context[record["context_id"]]


def test_project_env_var_values_are_the_masked_values_as_given(syncs: TwoSyncs) -> None:
    values = [record["value"] for record in syncs.full.records["project_env_vars"]]
    assert values and all(value.startswith("xxxx") for value in values)
    assert not [e["path"] for e in syncs.full_requests if re.search(r"/envvar/[^?]", e["path"])]  # never one variable by name


# --- incremental sync -------------------------------------------------------------------------------------


def test_an_incremental_sync_after_new_activity_succeeds(syncs: TwoSyncs) -> None:
    assert syncs.repeat.returncode == 0, syncs.repeat.stderr[-2000:]
    assert syncs.repeat.errors == []


@pytest.mark.parametrize("stream", ACTIVITY_EVIDENCE)
def test_an_incremental_sync_emits_exactly_the_new_and_changed_records(syncs: TwoSyncs, stream: str) -> None:
    got = keys_of(syncs.repeat, stream)
    want = expected_incremental(syncs, stream)

    assert len(got) == len(set(got))
    assert set(got) == want
    assert want, f"the new activity should give {stream} something to read"


@pytest.mark.parametrize("stream", ACTIVITY_EVIDENCE)
def test_activity_evidence_streams_checkpoint_state_per_feed(syncs: TwoSyncs, stream: str) -> None:
    state = syncs.full.states[stream]["stream"]["stream_state"]
    assert state["server_time"] and set(state["feeds"]) == {org["slug"] for org in syncs.truth["collaborations"]}


@pytest.mark.parametrize("stream", EVIDENCE_STREAMS[1:7])
def test_project_and_context_streams_read_everything_again_each_sync(syncs: TwoSyncs, stream: str) -> None:
    assert set(keys_of(syncs.repeat, stream)) == set(expected(syncs.truth_after, stream))


# --- requests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", ["full", "incremental"])
def test_no_url_is_requested_twice_in_one_sync(syncs: TwoSyncs, run: str) -> None:
    log = syncs.full_requests if run == "full" else syncs.repeat_requests
    counts = Counter(entry["path"] for entry in log)
    assert [path for path, n in counts.items() if n > 1] == []


def test_each_project_is_fetched_once_however_many_pipelines_it_has(syncs: TwoSyncs) -> None:
    projects = Counter(
        entry["path"] for entry in syncs.full_requests if re.fullmatch(r"/api/v2/project/[^/]+/[^/]+/[^/?]+", entry["path"])
    )
    seen = {p["project_slug"] for p in syncs.truth["pipelines"]}
    assert set(projects) == {f"/api/v2/project/{slug}" for slug in seen}
    assert set(projects.values()) == {1}


def test_each_user_is_fetched_once_per_sync(syncs: TwoSyncs) -> None:
    users = Counter(entry["path"] for entry in syncs.full_requests if entry["path"].startswith("/api/v2/user/"))
    assert len(users) == len(syncs.truth["users"])
    assert set(users.values()) == {1}


def test_approval_jobs_never_reach_the_job_details_or_v1_endpoints(syncs: TwoSyncs) -> None:
    build_numbers = {(j["project_slug"], j["job_number"]) for j in syncs.truth_after["jobs"] if j["type"] == "build" and "job_number" in j}
    asked = []
    for entry in syncs.full_requests + syncs.repeat_requests:
        match = JOB_ENDPOINT.match(entry["path"])
        if match:
            project = match.group("v2") or match.group("v1")
            provider, rest = project.split("/", 1)
            short = {v: k for k, v in LONG_PROVIDER.items()}.get(provider, provider)
            asked.append((f"{short}/{rest}", int(match.group("number"))))
    assert asked and set(asked) <= build_numbers
    approvals = [j for j in syncs.truth["jobs"] if j["type"] == "approval"]
    assert approvals and all("job_number" not in j for j in approvals)


def test_job_steps_use_the_v1_vcs_segment(syncs: TwoSyncs) -> None:
    v1 = [entry["path"] for entry in syncs.full_requests if entry["path"].startswith("/api/v1.1/")]
    assert v1 and all(re.match(r"/api/v1\.1/project/(github|bitbucket|circleci)/", path) for path in v1)


def test_selecting_the_core_streams_makes_no_request_to_the_evidence_endpoints(simulator: Simulator, sim_config: dict) -> None:
    simulator.reset_request_log()
    output = run_connector("read", sim_config, catalog(CORE_STREAMS))

    assert output.returncode == 0
    assert [e["path"] for e in simulator.request_log() if EVIDENCE_ENDPOINT.match(e["path"])] == []


def test_selecting_only_job_steps_reads_no_job_details(simulator: Simulator, sim_config: dict) -> None:
    simulator.reset_request_log()
    output = run_connector("read", sim_config, catalog(["job_steps"]))

    assert output.returncode == 0 and output.records["job_steps"]
    assert not [e for e in simulator.request_log() if re.match(r"/api/v2/project/.+/job/", e["path"])]


# --- skips -------------------------------------------------------------------------------------------------


def test_restricted_projects_end_in_a_warning_naming_them(syncs: TwoSyncs) -> None:
    warnings = "\n".join(syncs.full.logs("WARN"))
    assert syncs.truth["restricted_projects"]
    for slug in syncs.truth["restricted_projects"]:
        assert f"project {slug}" in warnings and "403" in warnings


def test_aged_out_pipelines_end_in_a_warning_naming_them(syncs: TwoSyncs) -> None:
    warnings = "\n".join(syncs.full.logs("WARN"))
    assert syncs.truth["aged_out_pipelines"]
    for pipeline_id in syncs.truth["aged_out_pipelines"]:
        assert f"pipeline {pipeline_id}" in warnings


def test_unavailable_project_settings_end_in_a_warning_naming_the_project(syncs: TwoSyncs) -> None:
    warnings = "\n".join(syncs.full.logs("WARN"))
    for slug in syncs.truth["settings_unavailable_projects"]:
        provider, rest = slug.split("/", 1)
        assert f"project settings of {LONG_PROVIDER[provider]}/{rest}" in warnings


def test_aged_out_pipeline_configs_are_counted_quietly_and_the_sync_succeeds(simulator: Simulator, sim_config: dict) -> None:
    output = run_connector("read", sim_config, catalog(["pipeline_configs"]))
    aged_out = simulator.truth()["aged_out_pipelines"]

    assert output.returncode == 0 and output.errors == []
    assert not any(pipeline_id in line for pipeline_id in aged_out for line in output.logs("WARN"))
    assert any("pipeline configs unavailable" in line for line in output.logs("WARN"))


def test_a_restricted_project_is_not_asked_for_its_settings_env_vars_or_keys(syncs: TwoSyncs) -> None:
    for slug in syncs.truth["restricted_projects"]:
        org, repo = slug.split("/", 1)[1].split("/")
        asked = [e["path"] for e in syncs.full_requests if f"/{org}/{repo}/" in e["path"] + "/" and "/pipeline" not in e["path"]]
        assert asked == [f"/api/v2/project/{slug}"]


def test_with_project_slugs_the_project_streams_read_just_those_projects(simulator: Simulator, sim_config: dict) -> None:
    truth = simulator.truth()
    wanted = truth["projects"][0]["slug"]
    simulator.reset_request_log()
    output = run_connector("read", {**sim_config, "project_slugs": [wanted]}, catalog(["projects", "project_env_vars"]))

    assert output.returncode == 0
    assert [p["slug"] for p in output.records["projects"]] == [wanted]
    assert {r["project_slug"] for r in output.records["project_env_vars"]} == {wanted}
    others = [e["path"] for e in simulator.request_log() if e["path"].startswith("/api/v2/project/") and wanted not in e["path"]]
    assert others == []
