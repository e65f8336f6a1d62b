"""A small DuckDB warehouse shaped like the one PyAirbyte writes: one table per stream, nested objects as JSON
columns, timestamps as TIMESTAMP, and PyAirbyte's _airbyte_* columns on every row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

AIRBYTE_COLUMNS = {"_airbyte_raw_id": "VARCHAR", "_airbyte_extracted_at": "TIMESTAMP", "_airbyte_meta": "JSON"}
SYNCED_AT = "2026-11-30 12:00:00"

COLUMNS = {
    "security_controls": {
        "record_id": "VARCHAR", "scope": "VARCHAR", "project_slug": "VARCHAR", "pipeline_id": "VARCHAR",
        "workflow_id": "VARCHAR", "control_id": "VARCHAR", "status": "VARCHAR", "required": "BOOLEAN",
        "reason": "VARCHAR", "evidence": "JSON", "frameworks": "JSON", "branch": "VARCHAR",
        "evaluated_at": "TIMESTAMP", "catalogue_version": "VARCHAR",
    },
    "pipelines": {
        "id": "VARCHAR", "project_slug": "VARCHAR", "org_slug": "VARCHAR", "number": "BIGINT", "state": "VARCHAR",
        "created_at": "TIMESTAMP", "updated_at": "TIMESTAMP", "trigger": "JSON", "vcs": "JSON",
    },
    "jobs": {
        "id": "VARCHAR", "name": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR", "pipeline_id": "VARCHAR",
        "project_slug": "VARCHAR", "workflow_id": "VARCHAR", "approved_by": "VARCHAR", "stopped_at": "TIMESTAMP",
    },
    "users": {"id": "VARCHAR", "login": "VARCHAR", "name": "VARCHAR"},
    "collaborations": {"id": "VARCHAR", "slug": "VARCHAR", "name": "VARCHAR", "vcs_type": "VARCHAR"},
    "projects": {"id": "VARCHAR", "slug": "VARCHAR", "name": "VARCHAR"},
    "contexts": {"id": "VARCHAR", "name": "VARCHAR", "org_slug": "VARCHAR"},
    "context_env_vars": {"context_id": "VARCHAR", "variable": "VARCHAR", "org_slug": "VARCHAR"},
    "context_restrictions": {"id": "VARCHAR", "context_id": "VARCHAR", "restriction_type": "VARCHAR", "restriction_value": "VARCHAR"},
    "project_settings": {"project_slug": "VARCHAR", "forks_receive_secret_env_vars": "BOOLEAN", "build_fork_prs": "BOOLEAN"},
}


def control(scope: str, project: str, control_id: str, status: str, pipeline: str | None = None, **fields: Any) -> dict[str, Any]:
    subject = pipeline if scope == "pipeline" else project
    return {
        "record_id": f"{scope}:{subject}:{control_id}", "scope": scope, "project_slug": project,
        "pipeline_id": pipeline, "control_id": control_id, "status": status, "required": False,
        "evidence": [], "frameworks": [{"framework": "SOC 2", "id": "CC8.1", "title": "Change management"}],
        "evaluated_at": SYNCED_AT, "catalogue_version": "2026.11.1", **fields,
    }


def pipeline(pipeline_id: str, project: str, number: int, created_at: str, branch: str = "main", actor: str = "ada") -> dict[str, Any]:
    return {
        "id": pipeline_id, "project_slug": project, "org_slug": project.rsplit("/", 1)[0], "number": number,
        "state": "created", "created_at": created_at, "updated_at": created_at,
        "trigger": {"type": "webhook", "actor": {"login": actor}}, "vcs": {"branch": branch, "revision": "0a8f8e5b0ec6dfcf"},
    }


def write(path: Path, tables: dict[str, list[dict[str, Any]]]) -> Path:
    """Each table of `tables` (named as its stream), with the rows given; streams not named are not synced."""
    connection = duckdb.connect(str(path))
    for name, rows in tables.items():
        columns = {**COLUMNS[name], **AIRBYTE_COLUMNS}
        connection.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        for index, row in enumerate(rows):
            values = {"_airbyte_raw_id": f"{name}-{index}", "_airbyte_extracted_at": SYNCED_AT, "_airbyte_meta": {}, **row}
            params = [json.dumps(values.get(c)) if t == "JSON" else values.get(c) for c, t in columns.items()]
            connection.execute(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})", params)
    connection.close()
    return path
