"""Records of the security_controls stream, built from what a sync fetched."""

from __future__ import annotations

from source_circleci_ccm.components.security_controls import (
    PipelineEvidence,
    pipeline_records,
    project_level_records,
    project_rollup,
    unknown_rollup,
)
from source_circleci_ccm.controls import load_catalogue

CONFIG = """
version: 2.1
jobs:
  test:
    docker: [{image: cimg/python:3.12}]
    steps: [checkout, {run: {name: unit tests, command: pytest}}]
  scan:
    docker: [{image: cimg/python:3.12}]
    steps: [checkout, {run: {name: dependency audit, command: pip-audit -r requirements.txt}}]
  deploy:
    docker: [{image: cimg/base:current}]
    steps: [checkout, {run: {name: deploy, command: ./deploy.sh production}}]
workflows:
  main:
    jobs:
      - test
      - scan
      - hold: {type: approval, requires: [test, scan]}
      - deploy: {requires: [hold]}
"""
PIPELINE = {"id": "p-1", "project_slug": "gh/acme/api", "vcs": {"branch": "main"}, "errors": []}
WORKFLOW = {"id": "w-1", "status": "failed", "stopped_at": "2026-11-20T10:00:00Z"}


def by_control(records):
    return {record["control_id"]: record for record in records}


def evidence(jobs=None, steps=None, config=CONFIG):
    """Declared only, unless the jobs of a finished workflow are given."""
    return PipelineEvidence(
        pipeline=PIPELINE, config={"compiled": config} if config is not None else None,
        workflows=[WORKFLOW] if jobs is not None else [], jobs=jobs or [], steps=steps,
    )


def test_every_pass_points_at_the_config_path_that_proves_it() -> None:
    records = by_control(pipeline_records(load_catalogue(), evidence(), "2026-11-28T00:00:00Z"))

    assert records["dependency_scanning"]["status"] == "pass"
    assert records["dependency_scanning"]["evidence"][0]["where"] == "jobs.scan.steps[1].run"
    assert records["approval_gate_before_deploy"]["status"] == "pass"
    assert records["sast"]["status"] == "fail" and records["sast"]["reason"]


def test_a_declared_scan_whose_step_failed_is_a_fail_with_the_executed_step() -> None:
    jobs = [
        {"name": "test", "status": "success", "job_number": 1, "workflow_id": "w-1"},
        {"name": "scan", "status": "failed", "job_number": 2, "workflow_id": "w-1"},
    ]
    steps = {2: [{"name": "dependency audit", "actions": [{"name": "dependency audit", "status": "failed", "exit_code": 1, "failed": True}]}]}

    record = by_control(pipeline_records(load_catalogue(), evidence(jobs, steps), "t"))["dependency_scanning"]

    assert record["status"] == "fail"
    assert record["workflow_id"] == "w-1"
    executed = [item["executed"] for item in record["evidence"] if "executed" in item]
    assert executed and executed[0]["job_number"] == 2 and "failed" in executed[0]["outcome"]


def test_an_unreadable_configuration_gives_unknown_with_a_reason_never_a_gap() -> None:
    records = pipeline_records(load_catalogue(), evidence(config=None), "t")

    assert {r["status"] for r in records} == {"unknown"}
    assert all(r["reason"] for r in records)
    assert len(records) == len(load_catalogue().pipeline_controls())


def test_the_roll_up_keeps_the_pipeline_it_was_taken_from() -> None:
    rolled = project_rollup(pipeline_records(load_catalogue(), evidence(), "t"))

    assert {(r["scope"], r["pipeline_id"]) for r in rolled} == {("project", "p-1")}
    assert all(r["record_id"].startswith("project:gh/acme/api:") for r in rolled)


def test_required_controls_are_flagged_and_frameworks_carried() -> None:
    records = by_control(unknown_rollup(load_catalogue(required_controls=["sast"]), "gh/acme/api", "restricted", "t"))

    assert records["sast"]["required"] is True and records["image_scanning"]["required"] is False
    assert {f["framework"] for f in records["sast"]["frameworks"]} >= {"SOC 2", "ISO/IEC 27001:2022"}


def test_project_level_controls_come_from_settings_and_contexts() -> None:
    records = by_control(
        project_level_records(
            load_catalogue(), "gh/acme/api", {"advanced": {"forks_receive_secret_env_vars": True}},
            [{"id": "c-1", "name": "prod"}], {"c-1": [{"variable": "AWS_KEY"}]}, {"c-1": [{"restriction_type": "project"}]}, "t",
        )
    )

    assert records["fork_prs_get_no_secrets"]["status"] == "fail"
    assert records["contexts_restricted"]["status"] == "pass"
