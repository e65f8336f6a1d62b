"""`fail` means the configuration shows no such step; a step named as one that runs an opaque command is `unknown`."""
import textwrap

import pytest

from source_circleci_ccm.controls import evaluate_config
from source_circleci_ccm.controls.catalogue import SCAN_CONTROLS
from source_circleci_ccm.controls.evaluate import INSTALLED_THEN_OPAQUE


def _config(step_name: str, command: str) -> str:
    return textwrap.dedent(f"""
        version: 2.1
        jobs:
          build:
            docker: [{{image: cimg/base:current}}]
            steps:
              - checkout
              - run: {{name: "{step_name}", command: "{command}"}}
        workflows:
          main: {{jobs: [build]}}
    """)


@pytest.mark.parametrize("step_name, command, unknown", [
    ("Security", "make security", set(SCAN_CONTROLS)),
    ("Snyk", "./scripts/snyk.sh", {"dependency_scanning", "sast", "image_scanning"}),
    ("Vulnerability scan", "rake check_all", {"dependency_scanning", "image_scanning"}),
    ("Check image scan results", "./scripts/scan.sh", {"image_scanning"}),
    ("Secrets scan", "bin/check", {"secret_scanning"}),
])
def test_a_step_named_as_a_scan_running_an_opaque_command_is_unknown_with_the_step_and_command(
        catalogue, step_name, command, unknown):
    results = evaluate_config(_config(step_name, command), catalogue)
    assert {c for c in SCAN_CONTROLS if results[c].status == "unknown"} == unknown
    for control in unknown:
        assert step_name in results[control].reason and command in results[control].reason
        assert results[control].evidence[0]["step"] == step_name
    for control in set(SCAN_CONTROLS) - unknown:
        assert results[control].status == "fail"


@pytest.mark.parametrize("command, unknown", [
    ("make vulncheck", {"dependency_scanning", "image_scanning"}),
    ("bundle exec rake security", set(SCAN_CONTROLS)),
    ("npm run secrets-scan", {"secret_scanning"}),
    ("make -C docker dockerfile-lint", {"iac_scanning"}),
    ("make build", set()),
])
def test_an_unnamed_step_calling_a_build_target_named_as_a_scan_is_unknown(catalogue, command, unknown):
    config = _config("Checks", command).replace('name: "Checks", ', "")
    results = evaluate_config(config, catalogue)
    assert {c for c in SCAN_CONTROLS if results[c].status == "unknown"} == unknown
    for control in unknown:
        assert command in results[control].reason and results[control].evidence[0]["step"] is None


def test_a_step_named_as_a_scan_that_runs_a_known_scanner_passes(catalogue):
    assert evaluate_config(_config("Security", "gitleaks detect"), catalogue)["secret_scanning"].status == "pass"


def test_a_step_named_for_a_scanner_and_a_scan_passes_by_its_name(catalogue):
    result = evaluate_config(_config("Twistlock scan", "twistlock_scan $IMAGE"), catalogue)["image_scanning"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "kb.twistcli"


@pytest.mark.parametrize("step, command", [
    ("Install Snyk CLI", "npm install -g snyk"),
    ("snyk credentials", "snyk config set api=${SNYK_TOKEN}"),
    ("Authenticate Snyk", "snyk auth $SNYK_TOKEN"),
])
def test_setting_a_scanner_up_is_neither_a_scan_nor_a_reason_for_unknown(step, command, catalogue):
    results = evaluate_config(_config(step, command), catalogue)
    assert all(results[c].status == "fail" for c in SCAN_CONTROLS)


def test_fail_says_no_step_shows_the_control(catalogue):
    result = evaluate_config(_config("Build", "make build"), catalogue)["sast"]
    assert result.status == "fail" and "no invoked job" in result.reason


def _job_config(job_name: str, steps: str) -> str:
    return textwrap.dedent(f"""
        version: 2.1
        jobs:
          check:
            docker: [{{image: cimg/base:current}}]
            steps: {steps}
        workflows:
          main:
            jobs:
              - check: {{name: "{job_name}"}}
    """)


def test_a_scanner_installed_in_a_security_named_step_then_run_opaquely_passes_saying_so(catalogue):
    result = evaluate_config(_config("Run security scan", "pip3 install bandit\\nmake scan"), catalogue)["sast"]
    assert result.status == "pass"
    [evidence] = result.evidence
    assert evidence["rule_id"] == "kb.bandit" and evidence["how"] == INSTALLED_THEN_OPAQUE
    assert evidence["matched"] == "pip3 install bandit in step 'Run security scan', then make scan"


def test_a_scanner_installed_in_a_job_named_for_security_then_run_opaquely_in_a_later_step_passes(catalogue):
    steps = "[checkout, {run: cargo install --locked cargo-deny}, {run: cargo xtask security-checks}]"
    result = evaluate_config(_job_config("Security Checks", steps), catalogue)["dependency_scanning"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "kb.cargo-deny"


def test_a_scanner_installed_where_no_name_says_scan_is_not_credited_for_a_later_opaque_command(catalogue):
    steps = "[checkout, {run: cargo install cargo-deny}, {run: cargo xtask ci}]"
    assert evaluate_config(_job_config("build", steps), catalogue)["dependency_scanning"].status == "fail"


def test_the_other_scans_of_a_step_credited_from_its_installed_scanner_stay_unknown(catalogue):
    results = evaluate_config(_config("Run security scan", "pip3 install bandit\\nmake scan"), catalogue)
    assert {c for c in SCAN_CONTROLS if results[c].status == "unknown"} == set(SCAN_CONTROLS) - {"sast"}


@pytest.mark.parametrize("download", [
    "sudo curl -L https://github.com/arminc/clair-scanner/releases/download/v8/clair-scanner_linux_amd64 -o /usr/local/bin/clair-scanner",
    "curl -sSfLO https://github.com/aquasecurity/trivy/releases/download/v0.50.0/trivy_0.50.0_Linux-64bit.tar.gz",
    # a project's installer script, named for the project by the repository in its URL
    "curl -sfL https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh | sh -s -- -b /usr/local/bin",
])
def test_a_scanner_release_downloaded_in_a_job_named_for_its_scan_then_run_opaquely_passes(download, catalogue):
    steps = f"[checkout, {{run: {{name: Install the scanner, command: {download!r}}}}}, {{run: make ci-scan-vulnerability}}]"
    result = evaluate_config(_job_config("scan_for_vulnerabilities", steps), catalogue)["image_scanning"]
    assert result.status == "pass" and result.evidence[0]["how"] == INSTALLED_THEN_OPAQUE


def test_a_download_that_saves_no_scanner_is_not_an_install(catalogue):
    steps = "[checkout, {run: curl -L https://example.org/tool.tgz -o tool.tgz}, {run: make ci-scan-vulnerability}]"
    assert evaluate_config(_job_config("scan-vulnerability", steps), catalogue)["image_scanning"].status != "pass"


@pytest.mark.parametrize("command", ["python3 aws_ecr_scan_results.py --tag $TAG", "./scripts/check_ecr_scan_findings.sh app"])
def test_a_script_named_for_reading_a_registrys_image_scan_findings_is_an_image_scan(command, catalogue):
    result = evaluate_config(_config("Check ECR Scan Results", command), catalogue)["image_scanning"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "image.registry-scan-findings-script"


def test_a_scanner_installed_by_a_build_target_then_run_opaquely_in_a_step_named_for_its_scan_passes(catalogue):
    steps = "[checkout, {run: {name: Install Hadolint, command: make install-hadolint}}, {run: {name: Linting Dockerfile, command: make lint}}]"
    result = evaluate_config(_job_config("build-server", steps), catalogue)["iac_scanning"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "kb.hadolint"


def test_a_step_named_for_a_scan_that_only_logs_in_is_not_the_scan(catalogue):
    result = evaluate_config(_config("Check FOSSA Build/Scan", "license-cli auth"), catalogue)["dependency_scanning"]
    assert result.status != "pass"
