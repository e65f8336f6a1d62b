"""Issue 13's scale figure: report generation time and file size for a large estate.

Generates, in a fresh DuckDB file, the tables a sync writes for PROJECTS projects and CONTROL_RECORDS
pipeline-level control records (plus one roll-up per project and control, pipelines, approval jobs, users,
contexts), shaped like PyAirbyte's tables, then times `circleci-ccm-report` on it:

    .venv/bin/python scripts/bench_report.py [--projects 1000] [--records 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

CONTROLS = ["dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning", "automated_tests",
            "approval_gate_before_deploy", "tests_before_deploy", "scans_before_deploy"]
PROJECT_CONTROLS = ["fork_prs_get_no_secrets", "contexts_restricted"]
STATUSES = "['pass', 'pass', 'pass', 'fail', 'unknown', 'not_applicable']"
# Declared in the config, then seen executing: the usual pair of a passing scan control.
EVIDENCE = ("'[{\"where\":\"jobs.scan.steps[2].run\",\"job\":\"scan\",\"step\":\"Run scanner\",\"orb\":null,"
            "\"rule_id\":\"sca.snyk-cli\",\"matched\":\"snyk test --severity-threshold=high\"},"
            "{\"where\":\"executed job scan #381\",\"job\":\"scan\",\"step\":\"Run scanner\",\"orb\":null,"
            "\"rule_id\":\"sca.snyk-cli\",\"matched\":\"snyk test --severity-threshold=high\","
            "\"executed\":{\"job_number\":381,\"step\":\"Run scanner\",\"status\":\"success\",\"outcome\":\"ran and passed\"}}]'")
FRAMEWORKS = "'[{\"framework\":\"SOC 2\",\"id\":\"CC7.1\",\"title\":\"System operations\"}]'"
AIRBYTE = "uuid()::VARCHAR AS _airbyte_raw_id, TIMESTAMP '2026-11-30 12:00:00' AS _airbyte_extracted_at, '{}'::JSON AS _airbyte_meta"


def generate(path: Path, projects: int, records: int) -> None:
    pipelines = max(records // len(CONTROLS), 1)
    c = duckdb.connect(str(path))
    c.execute(f"CREATE TABLE controls AS SELECT unnest({CONTROLS}) AS control_id")
    c.execute(f"""CREATE TABLE pipelines AS SELECT
        'p-' || i AS id, 'gh/org' || (i % 5) || '/project-' || (i % {projects}) AS project_slug, 'gh/org' || (i % 5) AS org_slug,
        i AS number, 'created' AS state, TIMESTAMP '2026-09-01' + INTERVAL (i * 7776 // {pipelines}) MINUTE AS created_at,
        TIMESTAMP '2026-09-01' AS updated_at,
        ('{{"type":"webhook","actor":{{"login":"dev-' || (i % 40) || '"}}}}')::JSON AS trigger,
        ('{{"branch":"' || CASE WHEN i % 3 = 0 THEN 'feature' ELSE 'main' END || '","revision":"0a8f8e5b0ec6"}}')::JSON AS vcs, {AIRBYTE}
        FROM range({pipelines}) t(i)""")
    # As the connector writes them: evidence on a pass, a reason otherwise.
    c.execute(f"""CREATE TABLE security_controls AS
        SELECT 'pipeline:' || id || ':' || control_id AS record_id, 'pipeline' AS scope, project_slug, id AS pipeline_id,
               NULL AS workflow_id, control_id, status, false AS required,
               CASE WHEN status <> 'pass' THEN 'no invoked job matches any rule for this control' END AS reason,
               (CASE WHEN status = 'pass' THEN {EVIDENCE} ELSE '[]' END)::JSON AS evidence, {FRAMEWORKS}::JSON AS frameworks,
               branch, TIMESTAMP '2026-11-30' AS evaluated_at, '2026.11.1' AS catalogue_version, {AIRBYTE}
        FROM (SELECT p.*, p.vcs->>'branch' AS branch, k.control_id,
                     {STATUSES}[(1 + hash(p.id, k.control_id) % 6)::BIGINT] AS status FROM pipelines p, controls k)""")
    # The roll-up: each project's newest main-branch pipeline, plus its project-level controls.
    c.execute(f"""INSERT INTO security_controls
        SELECT replace(record_id, 'pipeline:' || pipeline_id, 'project:' || project_slug), 'project', project_slug, pipeline_id,
               workflow_id, control_id, status, required, reason, evidence, frameworks, branch, evaluated_at, catalogue_version, {AIRBYTE}
        FROM security_controls WHERE branch = 'main'
        QUALIFY row_number() OVER (PARTITION BY project_slug, control_id ORDER BY pipeline_id DESC) = 1""")
    c.execute(f"""INSERT INTO security_controls
        SELECT 'project:' || s.slug || ':' || k.k, 'project', s.slug, NULL, NULL, k.k,
               {STATUSES}[(1 + hash(s.slug, k.k) % 6)::BIGINT], false, 'contexts with variables but no restriction: aws-prod', '[]', {FRAMEWORKS},
               NULL, TIMESTAMP '2026-11-30', '2026.11.1', {AIRBYTE}
        FROM (SELECT DISTINCT project_slug AS slug FROM pipelines) s, (SELECT unnest({PROJECT_CONTROLS}) AS k) k""")
    c.execute(f"""CREATE TABLE users AS SELECT 'u-' || i AS id, 'dev-' || i AS login, 'Developer ' || i AS name, {AIRBYTE} FROM range(40) t(i)""")
    c.execute(f"""CREATE TABLE jobs AS SELECT 'j-' || id AS id, 'hold-production' AS name, 'approval' AS type, 'success' AS status,
               id AS pipeline_id, project_slug, NULL AS workflow_id, 'u-' || (number % 40) AS approved_by, created_at AS stopped_at, {AIRBYTE}
               FROM pipelines""")
    c.execute("DROP TABLE controls")
    c.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--records", type=int, default=100_000, help="pipeline-level control records")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, out = Path(tmp) / "bench.duckdb", Path(tmp) / "report.html"
        generate(db, args.projects, args.records)
        counts = duckdb.connect(str(db), read_only=True).execute(
            "SELECT count(DISTINCT project_slug), count(*) FILTER (WHERE scope = 'pipeline'), count(*) FROM security_controls").fetchone()
        print(f"Generated: {counts[0]:,} projects, {counts[1]:,} pipeline-level control records ({counts[2]:,} with the roll-ups)")
        started = time.monotonic()
        subprocess.run([str(Path(sys.executable).with_name("circleci-ccm-report")), "--duckdb", str(db), "--out", str(out)], check=True)
        print(f"circleci-ccm-report: {time.monotonic() - started:.2f} s wall (process start included), {out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
