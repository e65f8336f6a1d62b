"""Declared scans are checked against what really ran."""
import textwrap

from source_circleci_ccm.controls import evaluate_config

CFG = textwrap.dedent("""
    version: 2.1
    jobs:
      audit:
        docker: [{image: node:20}]
        steps: [checkout, {run: {name: Audit dependencies, command: npm audit --audit-level=high}}]
    workflows:
      main: {jobs: [audit]}
""")


def _job(status):
    return [{"name": "audit", "type": "build", "status": status, "job_number": 7, "dependencies": []}]


def _steps(exit_code, status):
    return {7: [{"name": "Audit dependencies",
                 "actions": [{"name": "Audit dependencies", "status": status, "exit_code": exit_code,
                              "bash_command": "npm audit --audit-level=high", "failed": exit_code != 0}]}]}


def test_declared_scan_that_failed_is_a_fail(catalogue):
    r = evaluate_config(CFG, catalogue, executed_jobs=_job("failed"), executed_steps=_steps(1, "failed"))
    result = r["dependency_scanning"]
    assert result.status == "fail"
    assert "failed" in result.reason
    assert any("failed" in (e.get("execution") or "") for e in result.evidence)


def test_declared_scan_whose_job_did_not_run_is_a_fail(catalogue):
    r = evaluate_config(CFG, catalogue, executed_jobs=[], executed_steps={})
    assert r["dependency_scanning"].status == "fail"
    assert "did not run" in r["dependency_scanning"].reason


def test_scan_that_ran_and_passed_adds_executed_step_evidence(catalogue):
    r = evaluate_config(CFG, catalogue, executed_jobs=_job("success"), executed_steps=_steps(0, "success"))
    result = r["dependency_scanning"]
    assert result.status == "pass"
    executed = [e for e in result.evidence if e.get("execution") == "ran and passed"]
    assert executed and executed[0]["step"] == "Audit dependencies" and executed[0]["job_status"] == "success"


def test_step_exit_code_nonzero_is_a_fail_even_if_job_succeeded(catalogue):
    r = evaluate_config(CFG, catalogue, executed_jobs=_job("success"), executed_steps=_steps(2, "success"))
    assert r["dependency_scanning"].status == "fail"


def test_without_execution_records_declared_config_decides(catalogue):
    assert evaluate_config(CFG, catalogue)["dependency_scanning"].status == "pass"
