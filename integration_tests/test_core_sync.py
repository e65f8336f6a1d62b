"""The six core streams through the real console script against the CircleCI simulator."""

from __future__ import annotations

from collections import Counter

from circleci_simulator import Simulator
from source_circleci_ccm.components.progress import parse_time
from integration_tests.harness import CORE_STREAMS, catalog, run_connector

FINISHED = {"success", "failed", "error", "canceled", "not_run", "unauthorized"}


def _key(record: dict) -> str:
    return record["id"]


def test_spec_check_and_discover_answer_through_the_console_script(sim_config: dict) -> None:
    spec = run_connector("spec")
    check = run_connector("check", sim_config)
    discovered = run_connector("discover", sim_config)

    properties = spec.of_type("SPEC")[0]["spec"]["connectionSpecification"]["properties"]
    assert properties["api_token"]["airbyte_secret"] is True
    assert check.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"] == "SUCCEEDED"
    streams = {s["name"]: s for s in discovered.of_type("CATALOG")[0]["catalog"]["streams"]}
    assert set(CORE_STREAMS) <= set(streams)
    assert all(stream["json_schema"].get("properties") for stream in streams.values()), "real schemas, never {}"
    assert streams["jobs"]["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert streams["contexts"]["supported_sync_modes"] == ["full_refresh"]


def test_check_with_a_wrong_token_fails_saying_how_to_regenerate_it(sim_config: dict) -> None:
    output = run_connector("check", {**sim_config, "api_token": "not-the-token"})

    status = output.of_type("CONNECTION_STATUS")[0]["connectionStatus"]
    assert status["status"] == "FAILED"
    assert "401" in status["message"] and "User Settings → Personal API Tokens" in status["message"]


def test_check_with_an_unreachable_url_names_the_url(sim_config: dict) -> None:
    output = run_connector("check", {**sim_config, "api_url": "http://127.0.0.1:9/api"})

    status = output.of_type("CONNECTION_STATUS")[0]["connectionStatus"]
    assert status["status"] == "FAILED" and "http://127.0.0.1:9/api" in status["message"]


def test_a_full_read_returns_exactly_what_circleci_holds(simulator: Simulator, sim_config: dict) -> None:
    truth = simulator.truth()

    output = run_connector("read", sim_config, catalog(CORE_STREAMS))

    assert output.returncode == 0 and not output.errors
    for stream in CORE_STREAMS:
        got = [_key(r) for r in output.records[stream]]
        assert len(got) == len(set(got)), f"{stream} has duplicates"
        assert sorted(got) == sorted(_key(r) for r in truth[stream]), stream
    assert all(r["status"] in FINISHED for r in truth["workflows"] if r["id"] in {j["workflow_id"] for j in output.records["jobs"]})
    assert {(r["id"], r["org_slug"]) for r in output.records["pipelines"]} == {(r["id"], r["org_slug"]) for r in truth["pipelines"]}
    paths = Counter(r["path"] for r in simulator.request_log())
    assert [path for path, count in paths.items() if count > 1] == []


def test_a_repeat_sync_without_activity_costs_a_few_requests_and_repeats_no_finished_work(
    simulator: Simulator, sim_config: dict
) -> None:
    first = run_connector("read", sim_config, catalog(CORE_STREAMS))
    simulator.reset_request_log()

    second = run_connector("read", sim_config, catalog(CORE_STREAMS), first.state)

    organizations = len(simulator.truth()["collaborations"])
    activity_requests = [r for r in simulator.request_log() if "/pipeline" in r["path"] or "/workflow" in r["path"]]
    unfinished_pipelines = {w["pipeline_id"] for w in simulator.truth()["workflows"] if w["status"] not in FINISHED}
    assert len(activity_requests) <= 2 * organizations + len(unfinished_pipelines)
    for stream in ("pipelines", "workflows", "jobs"):
        assert second.records.get(stream, []) == [], stream


def test_after_new_activity_only_the_new_and_newly_finished_work_is_read(simulator: Simulator, sim_config: dict) -> None:
    before = simulator.truth()
    first = run_connector("read", sim_config, catalog(CORE_STREAMS))
    simulator.add_activity(pipelines=3)
    simulator.finish_running()
    after = simulator.truth()

    second = run_connector("read", sim_config, catalog(CORE_STREAMS), first.state)

    for stream in ("pipelines", "workflows", "jobs"):
        old = {r["id"]: r for r in before[stream]}
        changed = {r["id"] for r in after[stream] if old.get(r["id"]) != r}
        assert sorted(second.ids(stream)) == sorted(changed), stream
    newly_finished = {w["id"] for w in before["workflows"] if w["status"] not in FINISHED}
    assert newly_finished and newly_finished <= set(second.ids("workflows"))


def test_state_is_small_and_holds_no_entry_per_pipeline(simulator: Simulator, sim_config: dict) -> None:
    output = run_connector("read", sim_config, catalog(CORE_STREAMS))

    for stream in ("pipelines", "workflows", "jobs"):
        state = output.states[stream]["stream"]["stream_state"]
        assert len(str(state)) < 1024
        assert set(state["feeds"]) == {org["slug"] for org in simulator.truth()["collaborations"]}


def test_org_slugs_limit_the_sync_to_those_organisations(simulator: Simulator, sim_config: dict) -> None:
    org = simulator.truth()["collaborations"][0]["slug"]

    output = run_connector("read", {**sim_config, "org_slugs": [org]}, catalog(["pipelines", "contexts"]))

    assert output.records["pipelines"] and {r["org_slug"] for r in output.records["pipelines"]} == {org}
    assert {r["org_slug"] for r in output.records["contexts"]} == {org}


def test_project_slugs_read_just_those_projects(simulator: Simulator, sim_config: dict) -> None:
    truth = simulator.truth()
    project = next(p["project_slug"] for p in truth["pipelines"] if p["project_slug"] not in truth["restricted_projects"])

    output = run_connector("read", {**sim_config, "project_slugs": [project]}, catalog(["pipelines", "workflows"]))

    assert sorted(output.ids("pipelines")) == sorted(p["id"] for p in truth["pipelines"] if p["project_slug"] == project)
    assert not any(r["path"].startswith("/api/v2/pipeline?") for r in simulator.request_log())


def test_start_date_leaves_older_pipelines_out(simulator: Simulator, sim_config: dict) -> None:
    created = sorted(p["created_at"] for p in simulator.truth()["pipelines"])
    start = created[len(created) // 2][:19] + "Z"

    output = run_connector("read", {**sim_config, "start_date": start}, catalog(["pipelines"]))

    expected = [p["id"] for p in simulator.truth()["pipelines"] if parse_time(p["created_at"]) >= parse_time(start)]
    assert 0 < len(expected) < len(created)
    assert sorted(output.ids("pipelines")) == sorted(expected)


def test_a_read_against_an_unreachable_url_fails_at_once_naming_it(sim_config: dict) -> None:
    output = run_connector("read", {**sim_config, "api_url": "http://127.0.0.1:9/api"}, catalog(["me", "pipelines"]), timeout=60)

    assert output.returncode != 0 and output.seconds < 30
    assert [e["failure_type"] for e in output.errors] == ["config_error"]
    assert "http://127.0.0.1:9/api" in output.errors[0]["message"] and "Traceback" not in output.stderr
