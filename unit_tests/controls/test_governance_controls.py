"""The five controls over run, deploy and governance answers (issue 12): pass, fail and unknown for each."""

from __future__ import annotations

import pytest

from source_circleci_ccm.controls import load_catalogue
from source_circleci_ccm.controls.governance import (
    evaluate_config_policies,
    evaluate_deployed_version,
    evaluate_sbom,
    evaluate_tests,
    evaluate_webhooks,
)
from source_circleci_ccm.controls.results import ControlResult

CAT = load_catalogue()
JOB = {"name": "test", "job_number": 7}


def _test(name: str, result: str) -> dict:
    return {"name": name, "classname": "suite", "result": result, "message": None}


# --- tests_passed ---------------------------------------------------------------------------------------------
def test_tests_passed_when_some_test_ran_and_none_failed() -> None:
    result = evaluate_tests(CAT, [(JOB, [_test("a", "success"), _test("b", "skipped")]), ({"name": "build"}, [])], finished=True)
    assert result.status == "pass"
    assert result.evidence[0]["matched"] == "1 test(s) ran, 0 failed"


def test_tests_passed_fails_naming_the_failed_tests() -> None:
    result = evaluate_tests(CAT, [(JOB, [_test("a", "success"), _test("b", "failure")])], finished=True)
    assert result.status == "fail"
    assert "suite.b (test)" in result.reason


def test_tests_passed_fails_when_every_test_was_skipped() -> None:
    assert evaluate_tests(CAT, [(JOB, [_test("a", "skipped")])], finished=True).status == "fail"


@pytest.mark.parametrize("jobs", [[], [(JOB, [])], [(JOB, None)]])
def test_tests_passed_is_unknown_without_test_metadata(jobs: list) -> None:
    result = evaluate_tests(CAT, jobs, finished=True)
    assert result.status == "unknown"
    assert "store_test_results" in result.reason


def test_tests_passed_is_unknown_while_the_pipeline_runs() -> None:
    assert evaluate_tests(CAT, [(JOB, [_test("a", "success")])], finished=False).status == "unknown"


# --- sbom_generated --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    ["syft packages dir:. -o cyclonedx-json > sbom.json", "docker sbom acme/api:1.0", "trivy image --format cyclonedx acme/api", "./gradlew cyclonedxBom"],
)
def test_sbom_generated_by_a_known_tool(command: str) -> None:
    config = f"jobs:\n  build:\n    steps:\n      - run: {command}\n"
    result = evaluate_sbom(CAT, config, [])
    assert result.status == "pass", command
    assert result.evidence[0]["rule_id"] == "config.sbom-tool"


def test_sbom_generated_by_an_artifact_that_is_an_sbom() -> None:
    result = evaluate_sbom(CAT, "jobs: {}", [({"name": "build", "job_number": 3}, [{"path": "sbom/api.cdx.json", "node_index": 0}])])
    assert result.status == "pass"
    assert result.evidence[0]["matched"] == "sbom/api.cdx.json"


def test_sbom_not_generated_fails() -> None:
    config = "jobs:\n  build:\n    steps:\n      # - run: syft .\n      - run: trivy image acme/api\n"
    result = evaluate_sbom(CAT, config, [({"name": "build"}, [{"path": "coverage/index.html", "node_index": 0}])])
    assert result.status == "fail"


def test_sbom_unknown_when_neither_config_nor_artifacts_are_readable() -> None:
    assert evaluate_sbom(CAT, None, [({"name": "build"}, None)]).status == "unknown"


# --- deployed_version_controlled ---------------------------------------------------------------------------------
VERSION = {"name": "v1.2.0", "pipeline_id": "p-1", "job_number": 9, "is_live": True, "last_deployed_at": "2026-01-01T00:00:00Z"}
COMPONENT = {"id": "c-1", "name": "api"}
ENVIRONMENT = {"id": "e-1", "name": "production"}


def _results(**statuses: str) -> dict[str, ControlResult]:
    return {name: ControlResult(control=name, status=status) for name, status in statuses.items()}


def test_deployed_version_controlled_passes_when_the_pipeline_passed_every_gate() -> None:
    results = _results(tests_before_deploy="pass", scans_before_deploy="pass", approval_gate_before_deploy="pass")
    result = evaluate_deployed_version(CAT, VERSION, COMPONENT, ENVIRONMENT, results)
    assert result.status == "pass"
    ev = result.evidence[0]
    assert (ev["component"], ev["environment"], ev["version"], ev["pipeline_id"]) == ("api", "production", "v1.2.0", "p-1")


def test_deployed_version_controlled_fails_naming_the_gate_the_pipeline_failed() -> None:
    results = _results(tests_before_deploy="pass", scans_before_deploy="fail", approval_gate_before_deploy="pass")
    result = evaluate_deployed_version(CAT, VERSION, COMPONENT, ENVIRONMENT, results)
    assert result.status == "fail"
    assert "scans_before_deploy" in result.reason


def test_deployed_version_controlled_is_unknown_when_a_gate_is_not_known() -> None:
    results = _results(tests_before_deploy="pass", scans_before_deploy="not_applicable")
    result = evaluate_deployed_version(CAT, VERSION, COMPONENT, ENVIRONMENT, results)
    assert result.status == "unknown"
    assert "approval_gate_before_deploy is unknown" in result.reason


# --- config_policies_enforced --------------------------------------------------------------------------------------
def test_config_policies_enforced_passes_citing_the_policies() -> None:
    result = evaluate_config_policies(CAT, "gh/acme", {"enabled": True}, [{"name": "require_security_jobs"}])
    assert result.status == "pass"
    assert result.evidence[0]["policies"] == ["require_security_jobs"]


@pytest.mark.parametrize("settings, policies", [({"enabled": False}, [{"name": "p"}]), ({"enabled": True}, [])])
def test_config_policies_enforced_fails_when_disabled_or_empty(settings: dict, policies: list) -> None:
    assert evaluate_config_policies(CAT, "gh/acme", settings, policies).status == "fail"


def test_config_policies_enforced_is_unknown_saying_why_when_the_plan_lacks_them() -> None:
    result = evaluate_config_policies(CAT, "gh/acme", None, None)
    assert result.status == "unknown"
    assert "plan" in result.reason


# --- webhooks_verify_tls ----------------------------------------------------------------------------------------
def _hook(url: str, verify: bool) -> dict:
    return {"id": url, "name": url.split("//")[1], "url": url, "verify-tls": verify}


def test_webhooks_verify_tls_passes_when_every_hook_is_verified_https() -> None:
    assert evaluate_webhooks(CAT, "gh/acme/api", [_hook("https://a.example/h", True)]).status == "pass"


@pytest.mark.parametrize("hook", [_hook("http://a.example/h", True), _hook("https://a.example/h", False)])
def test_webhooks_verify_tls_fails_for_plain_http_or_unverified_tls(hook: dict) -> None:
    result = evaluate_webhooks(CAT, "gh/acme/api", [_hook("https://b.example/h", True), hook])
    assert result.status == "fail"
    assert "a.example" in result.reason


def test_webhooks_verify_tls_unknown_when_not_served_and_not_applicable_without_hooks() -> None:
    assert evaluate_webhooks(CAT, "gh/acme/api", None).status == "unknown"
    assert evaluate_webhooks(CAT, "gh/acme/api", []).status == "not_applicable"


def test_every_new_control_has_soc2_and_iso_framework_ids() -> None:
    for control in ("tests_passed", "sbom_generated", "deployed_version_controlled", "config_policies_enforced", "webhooks_verify_tls"):
        frameworks = {f["framework"] for f in CAT.frameworks(control)}
        assert {"SOC 2", "ISO/IEC 27001:2022"} <= frameworks, control
