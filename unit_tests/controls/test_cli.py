"""The circleci-ccm-controls console script."""
import json

from source_circleci_ccm.controls.cli import main

CFG = """
version: 2.1
jobs:
  test:
    docker: [{image: python:3.12}]
    steps: [checkout, {run: pytest}, {run: bandit -r src}]
workflows:
  main: {jobs: [test]}
"""


def test_cli_json_shape(tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_text(CFG)
    assert main([str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload) == [str(path)]
    assert payload[str(path)]["sast"]["status"] == "pass"
    assert payload[str(path)]["sast"]["evidence"][0]["where"] == "jobs.test.steps[2].run"
    assert {"status", "evidence"} <= set(payload[str(path)]["automated_tests"])


def test_cli_table_lists_controls(tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_text(CFG)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "automated_tests" in out and "pass" in out


def test_cli_missing_file_exits_2_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.yml" in err and "Traceback" not in err


def test_cli_bad_rules_file_exits_2(tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_text(CFG)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: x, control: nope, run: y}\n")
    assert main([str(path), "--rules", str(rules)]) == 2
    assert "unknown control" in capsys.readouterr().err


def test_cli_custom_rules_file_is_applied(tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_text(CFG.replace("bandit -r src", "acme-sast ."))
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {id: sast.acme, control: sast, run: 'acme-sast'}\n")
    assert main([str(path), "--json", "--rules", str(rules)]) == 0
    assert json.loads(capsys.readouterr().out)[str(path)]["sast"]["status"] == "pass"


def test_cli_require_exits_1_when_required_control_fails(tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_text(CFG)
    assert main([str(path), "--require", "secret_scanning"]) == 1
    assert main([str(path), "--require", "sast,automated_tests"]) == 0
