"""The report's queries and page, on a small DuckDB warehouse built here (shaped like PyAirbyte's)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from circleci_ccm_report import model, queries
from circleci_ccm_report.cli import main, write_report
from circleci_ccm_report.queries import TABLE_DIGEST_SQL, Warehouse
from unit_tests.report.warehouse import control, pipeline, write

API, WEB, LOCKED = "gh/acme/api", "gh/acme/web", "gh/acme/locked"
APPROVER = "u-1"


def evidence_tables() -> dict[str, list[dict[str, Any]]]:
    """Three projects: api passes with an approved deploy, web fails its deploy gates, locked is unreadable."""
    gate_evidence = [{"where": "workflows.deploy.jobs[2]", "job": "hold", "step": None, "rule_id": "approval.type",
                      "matched": "type: approval",
                      "executed": {"job_number": 12, "step": "deploy", "status": "success", "outcome": "ran and passed"}}]
    return {
        "security_controls": [
            control("project", API, "approval_gate_before_deploy", "pass", "p-api-2", evidence=gate_evidence),
            control("project", API, "fork_prs_get_no_secrets", "pass"),
            control("project", WEB, "approval_gate_before_deploy", "fail", "p-web-1", reason="no approval job before deploy"),
            control("project", WEB, "fork_prs_get_no_secrets", "fail", reason="forks receive secrets"),
            control("project", LOCKED, "approval_gate_before_deploy", "unknown", reason="the token's account cannot read project"),
            control("project", LOCKED, "fork_prs_get_no_secrets", "unknown", reason="project settings not available"),
            control("pipeline", API, "approval_gate_before_deploy", "fail", "p-api-1", reason="deploy without hold"),
            control("pipeline", API, "approval_gate_before_deploy", "pass", "p-api-2"),
            control("pipeline", API, "tests_before_deploy", "not_applicable", "p-api-1"),
            control("pipeline", API, "tests_before_deploy", "pass", "p-api-2"),
            control("pipeline", WEB, "approval_gate_before_deploy", "fail", "p-web-1", reason="no approval job before deploy"),
            control("pipeline", WEB, "tests_before_deploy", "fail", "p-web-1", reason="deploy before tests"),
            control("pipeline", WEB, "sast", "fail", "p-web-1", reason="no SAST"),
        ],
        "pipelines": [
            pipeline("p-api-1", API, 1, "2026-11-02 10:00:00", actor="grace"),
            pipeline("p-api-2", API, 2, "2026-11-10 10:00:00"),
            pipeline("p-web-1", WEB, 7, "2026-11-11 09:30:00", branch="release", actor="linus"),
        ],
        "jobs": [{"id": "j-hold", "name": "hold-production", "type": "approval", "status": "success",
                  "pipeline_id": "p-api-2", "approved_by": APPROVER, "stopped_at": "2026-11-10 11:00:00"}],
        "users": [{"id": APPROVER, "login": "ada", "name": "Ada Lovelace"}],
        "collaborations": [{"id": "o-1", "slug": "gh/acme", "name": "acme", "vcs_type": "github"}],
        "projects": [{"id": "x-1", "slug": API, "name": "api"}, {"id": "x-2", "slug": WEB, "name": "web"}],
        "contexts": [{"id": "c-open", "name": "aws-prod", "org_slug": "gh/acme"},
                     {"id": "c-closed", "name": "docker-hub", "org_slug": "gh/acme"},
                     {"id": "c-empty", "name": "nothing-secret", "org_slug": "gh/acme"}],
        "context_env_vars": [{"context_id": "c-open", "variable": "AWS_KEY", "org_slug": "gh/acme"},
                             {"context_id": "c-open", "variable": "AWS_SECRET", "org_slug": "gh/acme"},
                             {"context_id": "c-closed", "variable": "DOCKER_TOKEN", "org_slug": "gh/acme"}],
        "context_restrictions": [{"id": "r-1", "context_id": "c-closed", "restriction_type": "project", "restriction_value": "x-1"}],
        "project_settings": [{"project_slug": API, "forks_receive_secret_env_vars": False, "build_fork_prs": False},
                             {"project_slug": WEB, "forks_receive_secret_env_vars": True, "build_fork_prs": True}],
    }


def load(tmp_path: Path, tables: dict[str, list[dict[str, Any]]], since: date | None = None) -> model.Report:
    warehouse = Warehouse(str(write(tmp_path / "w.duckdb", tables)), since)
    try:
        return model.load(warehouse)
    finally:
        warehouse.close()


def page(tmp_path: Path, tables: dict[str, list[dict[str, Any]]]) -> str:
    return write_report(write(tmp_path / "w.duckdb", tables), tmp_path / "report.html").read_text()


@pytest.fixture
def report(tmp_path: Path) -> model.Report:
    return load(tmp_path, evidence_tables())


def statuses(report: model.Report) -> dict[str, dict[str, str]]:
    return {p.slug: {c: pc.status for c, pc in p.controls.items()} for p in report.projects}


def test_the_matrix_has_one_row_per_project_with_the_rollup_status_of_each_control(report: model.Report) -> None:
    assert statuses(report) == {
        API: {"approval_gate_before_deploy": "pass", "fork_prs_get_no_secrets": "pass"},
        WEB: {"approval_gate_before_deploy": "fail", "fork_prs_get_no_secrets": "fail"},
        LOCKED: {"approval_gate_before_deploy": "unknown", "fork_prs_get_no_secrets": "unknown"},
    }
    assert [p.name for p in report.projects] == ["api", LOCKED, "web"]  # the projects stream names them where it can


def test_the_summary_counts_projects_per_status_from_the_rollups_only(report: model.Report) -> None:
    gate = next(c for c in report.controls if c.control_id == "approval_gate_before_deploy")
    assert gate.counts == {"pass": 1, "fail": 1, "unknown": 1, "not_applicable": 0}
    assert [c.control_id for c in report.controls] == ["approval_gate_before_deploy", "fork_prs_get_no_secrets"]


def test_a_control_new_to_the_catalogue_appears_in_every_section_without_a_code_change(tmp_path: Path) -> None:
    tables = evidence_tables()
    tables["security_controls"] += [control("project", API, "sbom_generated", "pass", "p-api-2"),
                                    control("pipeline", API, "sbom_generated", "pass", "p-api-2")]
    html = page(tmp_path, tables)
    matrix = html.split('id="matrix"')[1].split("</section>")[0]
    assert "<span>sbom_generated</span>" in matrix
    assert "sbom_generated</code> 100% last week" in html


def test_project_detail_shows_the_rollup_pipeline_and_the_approver_by_name(report: model.Report) -> None:
    api = next(p for p in report.projects if p.slug == API)
    assert (api.pipeline["number"], api.pipeline["branch"], api.pipeline["triggered_by"]) == (2, "main", "ada")
    assert [(a["job"], a["approver"]) for a in api.approvals] == [("hold-production", "Ada Lovelace")]
    assert api.controls["approval_gate_before_deploy"].evidence[0]["executed"]["step"] == "deploy"


def test_history_lists_pipeline_results_oldest_first(report: model.Report) -> None:
    api = next(p for p in report.projects if p.slug == API)
    assert api.controls["approval_gate_before_deploy"].history == [("fail", 1), ("pass", 2)]


def test_failed_deploy_gates_are_exceptions_with_pipeline_branch_and_trigger(report: model.Report) -> None:
    rows = [(r["control_id"], r["project_slug"], r["number"], r["branch"], r["triggered_by"]) for r in report.failed_deploy_gates.rows]
    assert rows == [
        ("approval_gate_before_deploy", WEB, 7, "release", "linus"),
        ("tests_before_deploy", WEB, 7, "release", "linus"),
        ("approval_gate_before_deploy", API, 1, "main", "grace"),
    ]  # newest first; sast is not a deploy gate; passes and not_applicable are not exceptions


def test_only_contexts_holding_variables_without_a_restriction_are_exceptions(report: model.Report) -> None:
    assert report.unrestricted_contexts.rows == [{"org_slug": "gh/acme", "name": "aws-prod", "variables": 2}]


def test_projects_passing_secrets_to_forks_are_exceptions(report: model.Report) -> None:
    assert report.fork_secrets.rows == [{"project_slug": WEB, "build_fork_prs": True}]


def test_unreadable_projects_are_listed_with_their_reasons(report: model.Report) -> None:
    assert [(r["project_slug"], r["reason"]) for r in report.unreadable.rows] == [
        (LOCKED, "project settings not available"),
        (LOCKED, "the token's account cannot read project"),
    ]


def test_the_weekly_trend_leaves_not_applicable_out_of_the_share(report: model.Report) -> None:
    trend = {c.control_id: c.trend for c in report.controls}
    assert trend["approval_gate_before_deploy"] == [(date(2026, 11, 2), 0, 1), (date(2026, 11, 9), 1, 2)]


def test_since_drops_older_pipelines_from_history_trend_and_exceptions(tmp_path: Path) -> None:
    report = load(tmp_path, evidence_tables(), since=date(2026, 11, 9))
    api = next(p for p in report.projects if p.slug == API)
    assert api.controls["approval_gate_before_deploy"].history == [("pass", 2)]
    assert {r["number"] for r in report.failed_deploy_gates.rows} == {7}
    assert report.period.rows[0]["pipelines"] == 2


def test_a_section_whose_stream_was_not_synced_names_the_stream(tmp_path: Path) -> None:
    tables = evidence_tables()
    del tables["context_restrictions"], tables["users"]
    html = page(tmp_path, tables)
    exceptions = html.split('id="exceptions"')[1].split("</section>")[0]
    assert "the stream(s) <code>context_restrictions</code> were not synced" in exceptions
    assert "the stream(s) <code>users</code> were not synced" in html  # approvals need users to name approvers


def test_without_security_controls_every_control_section_says_so(tmp_path: Path) -> None:
    tables = evidence_tables()
    del tables["security_controls"]
    html = page(tmp_path, tables)
    for anchor in ("summary", "matrix", "projects", "trend"):
        section = html.split(f'id="{anchor}"')[1].split("</section>")[0]
        assert "<code>security_controls</code> were not synced" in section


def digest(path: Path, table: str) -> str:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        return connection.execute(TABLE_DIGEST_SQL.format(table=table)).fetchone()[2]
    finally:
        connection.close()


def test_a_table_digest_ignores_row_order_and_changes_with_any_value(tmp_path: Path) -> None:
    tables = {"users": [{"id": "u-1", "login": "ada", "name": "Ada", "_airbyte_raw_id": "r-1"},
                        {"id": "u-2", "login": "bob", "name": "Bob", "_airbyte_raw_id": "r-2"}]}
    same = digest(write(tmp_path / "a.duckdb", tables), "users")
    reversed_rows = digest(write(tmp_path / "b.duckdb", {"users": tables["users"][::-1]}), "users")
    tables["users"][1]["name"] = "Bobby"
    changed = digest(write(tmp_path / "c.duckdb", tables), "users")
    assert same == reversed_rows != changed
    assert re.fullmatch(r"[0-9a-f]{64}", same)


def test_the_page_prints_the_digest_its_sql_recomputes(tmp_path: Path) -> None:
    html = page(tmp_path, evidence_tables())
    row = re.search(r"<code>users</code></td><td>1</td><td>.*?</td><td><code class=\"digest\">([0-9a-f]{64})</code>", html)
    assert row and row[1] == digest(tmp_path / "w.duckdb", "users")
    assert "sha256(to_json(t)::VARCHAR)" in html


def test_the_page_loads_nothing_from_anywhere(tmp_path: Path) -> None:
    html = page(tmp_path, evidence_tables())
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", html)
    assert html.count("<style>") == 1 and html.count("<script>") == 1


def test_the_command_writes_the_page_and_prints_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = write(tmp_path / "w.duckdb", evidence_tables())
    out = tmp_path / "out" / "report.html"
    assert main(["--duckdb", str(db), "--out", str(out), "--since", "2026-11-01"]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    assert "limited with --since 2026-11-01" in out.read_text()


def test_the_command_explains_a_missing_warehouse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--duckdb", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "r.html")]) == 2
    assert "run `make sync` first" in capsys.readouterr().err


def test_queries_only_read_the_stream_tables_they_declare() -> None:
    """A query reading a table it does not declare would fail, not say 'not synced', when that stream is missing."""
    for name in dir(queries):
        query = getattr(queries, name)
        if isinstance(query, queries.Query):
            read = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", query.sql))
            assert read - {"information_schema"} <= set(query.needs), name
