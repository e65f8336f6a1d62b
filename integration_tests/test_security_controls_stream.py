"""The security_controls stream against the simulator: roll-ups match each project's real configuration,
evidence points at config paths and executed steps, and it costs no pass of its own over the API."""

from __future__ import annotations

from collections import Counter

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from integration_tests.test_governance_streams import NEW_ENDPOINT
from integration_tests.harness import Output, catalog, run_connector

EVIDENCE_STREAMS = ["pipelines", "workflows", "jobs", "pipeline_configs", "job_steps", "projects", "project_settings",
                    "contexts", "context_env_vars", "context_restrictions"]
RAN_BADLY = ("did not run", "ran and failed")


@pytest.fixture(scope="module")
def small() -> Simulator:
    with Simulator(SimulatorSettings.preset("small")) as sim:
        yield sim


@pytest.fixture(scope="module")
def small_read(small: Simulator) -> Output:
    """One sync of the small organisation with steps, inspected by several tests."""
    return run_connector("read", _config(small), catalog(["security_controls", "job_steps"]))


def _config(sim: Simulator) -> dict:
    return {"api_token": sim.token, "api_url": sim.base_url}


def _rollups(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["project_slug"], r["control_id"]): r for r in records if r["scope"] == "project"}


def test_the_roll_up_of_every_project_matches_what_its_configuration_has(small: Simulator, small_read: Output) -> None:
    truth = small.truth()
    rollups = _rollups(small_read.records["security_controls"])

    compared = 0
    for project, controls in truth["project_controls"].items():
        if project in truth["restricted_projects"]:
            continue
        for control, has_it in controls.items():
            if control == "has_deploy":
                continue
            record = rollups[(project, control)]
            outcomes = " ".join(str(e.get("executed", {}).get("outcome")) for e in record["evidence"])
            if has_it and any(word in outcomes for word in RAN_BADLY):
                assert record["status"] == "fail", "declared but not run, or run and failed, is a finding"
            else:
                assert record["status"] in (("pass",) if has_it else ("fail", "not_applicable")), (project, control)
            compared += 1
    assert compared >= 40


def test_restricted_projects_are_unknown_with_a_reason_never_a_gap(small: Simulator, small_read: Output) -> None:
    rollups = _rollups(small_read.records["security_controls"])

    for project in small.truth()["restricted_projects"]:
        record = rollups[(project, "dependency_scanning")]
        assert record["status"] == "unknown" and "team" in record["reason"]


def test_every_pass_points_at_a_config_path_and_the_step_that_ran(small_read: Output) -> None:
    passes = [r for r in small_read.records["security_controls"] if r["status"] == "pass" and r["scope"] == "pipeline"]

    assert passes
    for record in passes:
        declared = [e for e in record["evidence"] if e["where"].startswith(("jobs.", "workflows.", "orbs."))]
        assert declared and all(e["rule_id"] for e in declared), record["record_id"]
    executed = [e["executed"] for r in passes if r["control_id"] == "dependency_scanning" for e in r["evidence"] if "executed" in e]
    assert executed and all(e["job_number"] and e["step"] for e in executed)


def test_selecting_security_controls_costs_no_second_pass_over_the_api(simulator: Simulator, sim_config: dict) -> None:
    run_connector("read", sim_config, catalog(EVIDENCE_STREAMS))
    without = Counter(r["path"] for r in simulator.request_log() if r["status"] == 200)
    simulator.reset_request_log()

    run_connector("read", sim_config, catalog(EVIDENCE_STREAMS + ["security_controls"]))
    # (Which pipelines of a restricted project are asked before its first 403 depends on timing.)
    with_controls = Counter(r["path"] for r in simulator.request_log() if r["status"] == 200)

    # Beyond the evidence streams' URLs, only those of the run and governance data its controls judge (job tests
    # and artifacts, deploys, config policies, webhooks: issue 12), each once.
    extra = set(with_controls) - set(without)
    assert set(without) <= set(with_controls)
    assert extra and all(NEW_ENDPOINT.match(path) for path in extra), sorted(p for p in extra if not NEW_ENDPOINT.match(p))[:5]
    assert max(Counter(r["path"] for r in simulator.request_log()).values()) == 1


def test_pipelines_are_evaluated_again_once_their_workflows_finish(simulator: Simulator, sim_config: dict) -> None:
    first = run_connector("read", sim_config, catalog(["security_controls"]))
    unchanged = run_connector("read", sim_config, catalog(["security_controls"]), first.state)
    running = {w["pipeline_id"] for w in simulator.truth()["workflows"] if w["stopped_at"] is None}
    simulator.finish_running()

    after = run_connector("read", sim_config, catalog(["security_controls"]), unchanged.state)

    assert not [r for r in unchanged.records.get("security_controls", []) if r["scope"] == "pipeline"]
    evaluated = {r["pipeline_id"] for r in after.records["security_controls"] if r["scope"] == "pipeline"}
    assert running and evaluated == running
