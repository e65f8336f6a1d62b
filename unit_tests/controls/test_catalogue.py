"""The catalogue is data; user rules add to or override packaged ones."""
import textwrap

import pytest

from source_circleci_ccm.controls import evaluate_config, load_catalogue

CFG = textwrap.dedent("""
    version: 2.1
    jobs:
      scan:
        docker: [{image: x}]
        steps: [{run: {name: In-house scan, command: ./acme-scan --deps}}]
      audit:
        docker: [{image: x}]
        steps: [{run: npm audit}]
    workflows:
      main: {jobs: [scan, audit]}
""")


def test_catalogue_has_version_and_all_controls(catalogue):
    assert catalogue.version
    for control in ("dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning",
                    "automated_tests", "approval_gate_before_deploy", "tests_before_deploy",
                    "scans_before_deploy", "fork_prs_get_no_secrets", "contexts_restricted", "deploy"):
        assert control in catalogue.controls
    assert catalogue.rules_for("deploy")


def test_every_control_carries_frameworks(catalogue):
    for cid, control in catalogue.controls.items():
        if not control.internal:
            assert catalogue.frameworks(cid), cid


def test_custom_rule_adds_to_packaged_rules():
    cat = load_catalogue([{"id": "sca.acme", "control": "dependency_scanning", "run": r"acme-scan\s+--deps"}])
    results = evaluate_config(CFG, cat)
    assert {e["rule_id"] for e in results["dependency_scanning"].evidence} == {"sca.acme", "kb.npm-audit"}


def test_custom_rule_overrides_packaged_rule():
    config = CFG.replace("steps: [{run: npm audit}]", "steps: [store_test_results]")
    assert evaluate_config(config, load_catalogue())["automated_tests"].status == "pass"
    cat = load_catalogue([{"id": "tests.store-test-results", "control": "automated_tests", "run": "never-matches-xyz"}])
    assert evaluate_config(config, cat)["automated_tests"].status == "fail"


@pytest.mark.parametrize("bad, message", [
    ({"control": "sast", "run": "x"}, "id"),
    ({"id": "r", "control": "nope", "run": "x"}, "unknown control"),
    ({"id": "r", "control": "sast"}, "matcher"),
    ({"id": "r", "control": "sast", "run": "(unclosed"}, "regex"),
    ({"id": "r", "control": "sast", "run": "x", "colour": "red"}, "unknown field"),
    ({"id": "r", "control": "tests_before_deploy", "run": "x"}, "computed"),
    ({"id": "r", "control": "sast", "orb": "x", "parameters": {"p": {"bogus": 1}}}, "condition"),
])
def test_bad_custom_rule_raises_clear_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        load_catalogue([bad])


def test_unknown_required_control_is_rejected():
    with pytest.raises(ValueError, match="required control"):
        load_catalogue(required_controls=["no_such_control"])
