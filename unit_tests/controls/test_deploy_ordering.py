"""Approval gate, tests-before-deploy and scans-before-deploy."""
import textwrap

from source_circleci_ccm.controls import evaluate_config

JOBS = """
version: 2.1
orbs:
  hmpps: ministryofjustice/hmpps@10
jobs:
  unit:
    docker: [{image: node:20}]
    steps: [checkout, {run: npm test}]
  audit:
    docker: [{image: node:20}]
    steps: [{run: npm audit}]
  deploy:
    docker: [{image: node:20}]
    steps: [{run: ./deploy.sh production}]
  lint:
    docker: [{image: node:20}]
    steps: [{run: npm run lint}]
"""


def run(workflows, catalogue):
    return evaluate_config(JOBS + textwrap.dedent(workflows), catalogue)


def test_no_deploy_makes_ordering_controls_not_applicable(catalogue):
    r = run("""
        workflows:
          main: {jobs: [unit]}
        """, catalogue)
    for control in ("approval_gate_before_deploy", "tests_before_deploy", "scans_before_deploy"):
        assert r[control].status == "not_applicable"


def test_approval_on_requires_path_of_deploy_passes(catalogue):
    r = run("""
        workflows:
          main:
            jobs:
              - unit
              - hold: {type: approval, requires: [unit]}
              - deploy: {name: deploy_prod, requires: [hold]}
        """, catalogue)
    assert r["approval_gate_before_deploy"].status == "pass"
    assert r["approval_gate_before_deploy"].evidence[0]["approval_job"] == "hold"


def test_approval_not_on_deploy_path_fails(catalogue):
    r = run("""
        workflows:
          main:
            jobs:
              - unit
              - hold: {type: approval}
              - lint: {requires: [hold]}
              - deploy: {requires: [unit]}
        """, catalogue)
    assert r["approval_gate_before_deploy"].status == "fail"


def test_tests_required_transitively_through_aliases(catalogue):
    r = run("""
        workflows:
          main:
            jobs:
              - unit: {name: Unit Tests}
              - lint: {name: Lint, requires: [Unit Tests]}
              - deploy: {requires: [Lint]}
        """, catalogue)
    assert r["tests_before_deploy"].status == "pass"


def test_one_deploy_without_tests_fails_tests_before_deploy(catalogue):
    r = run("""
        workflows:
          main:
            jobs:
              - unit
              - deploy: {name: deploy_staging, requires: [unit]}
              - deploy: {name: deploy_docs, requires: [lint]}
              - lint
        """, catalogue)
    assert r["tests_before_deploy"].status == "fail"
    assert "deploy_docs" in r["tests_before_deploy"].reason


def test_scans_before_deploy_needs_scan_on_requires_path(catalogue):
    r = run("""
        workflows:
          main:
            jobs:
              - audit
              - deploy: {requires: [audit]}
        """, catalogue)
    assert r["scans_before_deploy"].status == "pass"


def test_scheduled_scan_is_not_on_deploy_path(catalogue):
    r = run("""
        workflows:
          main:
            jobs: [deploy]
          nightly:
            triggers: [{schedule: {cron: "0 0 * * *", filters: {branches: {only: [main]}}}}]
            jobs: [audit]
        """, catalogue)
    assert r["dependency_scanning"].status == "pass"
    assert r["scans_before_deploy"].status == "fail"


def test_requires_can_reference_orb_jobs(catalogue):
    r = run("""
        workflows:
          main:
            jobs:
              - hmpps/npm_security_audit
              - hmpps/deploy_env: {name: deploy_dev, requires: [hmpps/npm_security_audit]}
        """, catalogue)
    assert r["scans_before_deploy"].status == "pass"


def test_orb_build_job_with_publish_false_is_not_a_deploy(catalogue):
    r = evaluate_config(JOBS + textwrap.dedent("""
        workflows:
          main:
            jobs:
              - hmpps/build_docker: {name: test_build_image, publish: false}
        """), catalogue, include_deploy=True)
    assert r["deploy"].status == "not_applicable"


def test_test_step_before_deploy_step_in_same_job_counts(catalogue):
    cfg = """
        version: 2.1
        jobs:
          ship:
            docker: [{image: node:20}]
            steps: [{run: npm test}, {run: npm publish}]
        workflows:
          main: {jobs: [ship]}
        """
    r = evaluate_config(textwrap.dedent(cfg), catalogue)
    assert r["tests_before_deploy"].status == "pass"
