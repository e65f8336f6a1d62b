"""Project settings and context restrictions."""
from source_circleci_ccm.controls import evaluate_contexts, evaluate_project_settings


def test_fork_prs_without_secrets_passes():
    r = evaluate_project_settings({"forks_receive_secret_env_vars": False})["fork_prs_get_no_secrets"]
    assert r.status == "pass" and r.frameworks


def test_fork_prs_with_secrets_fails():
    assert evaluate_project_settings({"forks_receive_secret_env_vars": True})["fork_prs_get_no_secrets"].status == "fail"


def test_missing_project_settings_are_unknown():
    assert evaluate_project_settings({})["fork_prs_get_no_secrets"].status == "unknown"
    assert evaluate_project_settings(None)["fork_prs_get_no_secrets"].status == "unknown"


CONTEXTS = [{"id": "c1", "name": "prod"}, {"id": "c2", "name": "empty"}]


def test_context_with_variables_and_restriction_passes():
    r = evaluate_contexts(CONTEXTS, {"c1": [{"variable": "TOKEN"}]},
                          {"c1": [{"restriction_type": "project"}], "c2": []})["contexts_restricted"]
    assert r.status == "pass"


def test_unrestricted_context_with_variables_fails():
    r = evaluate_contexts(CONTEXTS, {"c1": [{"variable": "TOKEN"}]}, {"c1": []})["contexts_restricted"]
    assert r.status == "fail" and "prod" in r.reason


def test_no_context_holding_variables_is_not_applicable():
    r = evaluate_contexts(CONTEXTS, {"c1": [], "c2": []}, {})["contexts_restricted"]
    assert r.status == "not_applicable"
