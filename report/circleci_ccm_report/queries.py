"""Every SQL query of the report, and the one way they run: against the tables PyAirbyte wrote.

Each query names the stream tables it reads. A query whose tables are not in the warehouse (the stream was not
selected) is not run; the section built from it says which streams are missing instead of showing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Optional

import duckdb


@dataclass(frozen=True)
class Query:
    sql: str
    needs: tuple[str, ...]


# The stream tables; PyAirbyte's own _airbyte_* tables (state, catalogue) are not evidence.
STREAM_TABLES = Query(
    """
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = current_schema() AND NOT starts_with(table_name, '_airbyte')
    ORDER BY table_name
    """,
    (),
)

# Integrity: one digest per table, independent of row order (rows are hashed, the hashes sorted, then hashed
# together), over every column as synced, PyAirbyte's _airbyte_* columns included. {table} is filled with a
# table name from information_schema, never with user input. The report prints this text as the way to
# recompute a digest, so it must stay plain DuckDB SQL.
TABLE_DIGEST_SQL = (
    "SELECT count(*) AS records, max(_airbyte_extracted_at) AS synced_at,\n"
    "       sha256(coalesce(string_agg(row_digest, '' ORDER BY row_digest), '')) AS digest\n"
    "FROM (SELECT sha256(to_json(t)::VARCHAR) AS row_digest, _airbyte_extracted_at FROM \"{table}\" AS t)"
)

# The project roll-up: one record per project and control, from the newest evaluated pipeline on the default
# branch (pipeline controls) or from the project's settings and contexts (project controls).
ROLLUP = Query(
    """
    SELECT project_slug, control_id, status, reason, pipeline_id, evidence::VARCHAR AS evidence, required,
           frameworks::VARCHAR AS frameworks, catalogue_version
    FROM security_controls WHERE scope = 'project'
    ORDER BY project_slug, control_id
    """,
    ("security_controls",),
)

PROJECT_NAMES = Query("SELECT slug, name FROM projects", ("projects",))

ORGANISATIONS = Query("SELECT slug, name FROM collaborations ORDER BY slug", ("collaborations",))

PERIOD = Query(
    """
    SELECT min(created_at) AS first, max(created_at) AS last, count(*) AS pipelines
    FROM pipelines WHERE $since IS NULL OR created_at >= $since
    """,
    ("pipelines",),
)

# The pipeline each project's roll-up was taken from.
ROLLUP_PIPELINES = Query(
    """
    SELECT p.id, p.project_slug, p.number, p.created_at, p.state, p.vcs->>'branch' AS branch,
           p.vcs->>'revision' AS revision, p.trigger->'actor'->>'login' AS triggered_by
    FROM pipelines AS p
    WHERE p.id IN (SELECT pipeline_id FROM security_controls WHERE scope = 'project')
    """,
    ("pipelines", "security_controls"),
)

# Who approved the hold jobs of those pipelines, resolved to a name through `users`.
ROLLUP_APPROVALS = Query(
    """
    SELECT j.pipeline_id, j.name AS job, j.status, j.stopped_at AS approved_at,
           coalesce(u.name, u.login, j.approved_by) AS approver
    FROM jobs AS j LEFT JOIN users AS u ON u.id = j.approved_by
    WHERE j.type = 'approval'
      AND j.pipeline_id IN (SELECT pipeline_id FROM security_controls WHERE scope = 'project')
    ORDER BY j.pipeline_id, j.stopped_at NULLS LAST, j.name
    """,
    ("jobs", "users", "security_controls"),
)

# The last few pipeline-level results per project and control, oldest first, as one row per pair (a list per
# column: a 1,000-project estate has ~10,000 pairs but ~80,000 results).
HISTORY = Query(
    """
    SELECT project_slug, control_id, list(status ORDER BY created_at, number) AS statuses,
           list(number ORDER BY created_at, number) AS numbers
    FROM (
        SELECT s.project_slug, s.control_id, s.status, p.number, p.created_at
        FROM security_controls AS s JOIN pipelines AS p ON p.id = s.pipeline_id
        WHERE s.scope = 'pipeline' AND ($since IS NULL OR p.created_at >= $since)
        QUALIFY row_number() OVER (PARTITION BY s.project_slug, s.control_id ORDER BY p.created_at DESC, p.number DESC) <= $depth
    )
    GROUP BY project_slug, control_id
    """,
    ("security_controls", "pipelines"),
)

# Deploy gates (every control named *_before_deploy, so new gate controls appear here on their own) that failed.
FAILED_DEPLOY_GATES = Query(
    r"""
    SELECT s.control_id, s.project_slug, p.number, p.vcs->>'branch' AS branch,
           p.trigger->'actor'->>'login' AS triggered_by, p.created_at, s.reason,
           count(*) OVER () AS total
    FROM security_controls AS s JOIN pipelines AS p ON p.id = s.pipeline_id
    WHERE s.scope = 'pipeline' AND s.status = 'fail' AND s.control_id LIKE '%\_before\_deploy' ESCAPE '\'
      AND ($since IS NULL OR p.created_at >= $since)
    ORDER BY p.created_at DESC, s.project_slug, s.control_id
    LIMIT $limit
    """,
    ("security_controls", "pipelines"),
)

UNRESTRICTED_SECRET_CONTEXTS = Query(
    """
    SELECT c.org_slug, c.name, count(DISTINCT v.variable) AS variables
    FROM contexts AS c JOIN context_env_vars AS v ON v.context_id = c.id
    WHERE NOT EXISTS (SELECT 1 FROM context_restrictions AS r WHERE r.context_id = c.id)
    GROUP BY c.org_slug, c.name ORDER BY c.org_slug, c.name
    """,
    ("contexts", "context_env_vars", "context_restrictions"),
)

FORK_SECRETS = Query(
    """
    SELECT project_slug, build_fork_prs FROM project_settings
    WHERE forks_receive_secret_env_vars ORDER BY project_slug
    """,
    ("project_settings",),
)

UNREADABLE = Query(
    """
    SELECT project_slug, reason, string_agg(control_id, ', ' ORDER BY control_id) AS controls
    FROM security_controls WHERE scope = 'project' AND status = 'unknown'
    GROUP BY project_slug, reason ORDER BY project_slug, reason
    """,
    ("security_controls",),
)

# Share of pipelines passing per control and week; not_applicable is left out of the denominator.
WEEKLY_TREND = Query(
    """
    SELECT s.control_id, date_trunc('week', p.created_at)::DATE AS week,
           count(*) FILTER (WHERE s.status = 'pass') AS passed,
           count(*) FILTER (WHERE s.status <> 'not_applicable') AS evaluated
    FROM security_controls AS s JOIN pipelines AS p ON p.id = s.pipeline_id
    WHERE s.scope = 'pipeline' AND ($since IS NULL OR p.created_at >= $since)
    GROUP BY ALL ORDER BY s.control_id, week
    """,
    ("security_controls", "pipelines"),
)


@dataclass
class Result:
    """Rows of a query, or the stream tables it needed that were not synced."""

    rows: list[dict[str, Any]]
    missing: tuple[str, ...] = ()


class Warehouse:
    def __init__(self, path: str, since: Optional[date] = None) -> None:
        self.connection = duckdb.connect(path, read_only=True)
        self.since = since
        self.tables = tuple(row[0] for row in self.connection.execute(STREAM_TABLES.sql).fetchall())

    def close(self) -> None:
        self.connection.close()

    def run(self, query: Query, **params: Any) -> Result:
        missing = tuple(table for table in query.needs if table not in self.tables)
        if missing:
            return Result([], missing)
        if "$since" in query.sql:
            params["since"] = self.since
        return Result(self._rows(query.sql, params))

    def table_digest(self, table: str) -> dict[str, Any]:
        return self._rows(TABLE_DIGEST_SQL.format(table=table), {})[0]

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        cursor = self.connection.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
