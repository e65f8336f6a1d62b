"""What the report shows, read from the warehouse into plain values the renderer lays out.

Controls and projects come from the data (the `security_controls` roll-up), never from a list in this code, so
controls added to the connector's catalogue appear in every section without a change here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from importlib import metadata
from typing import Any, Optional

from . import queries
from .queries import Result, Warehouse

STATUSES = ("pass", "fail", "unknown", "not_applicable")
HISTORY_DEPTH = 8
# Enough rows for an auditor to sample; the total and the SQL to list them all are printed beside the table.
EXCEPTION_ROWS = 200


@dataclass
class ProjectControl:
    control_id: str
    status: str
    reason: Optional[str]
    evidence: list[dict[str, Any]]
    required: bool
    pipeline_id: Optional[str]  # the pipeline a roll-up of a pipeline control was taken from
    history: list[tuple[str, int]] = field(default_factory=list)  # (status, pipeline number), oldest first


@dataclass
class Project:
    slug: str
    name: str
    controls: dict[str, ProjectControl]
    pipeline: Optional[dict[str, Any]] = None  # the pipeline the roll-up was taken from
    approvals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Control:
    control_id: str
    counts: dict[str, int]
    frameworks: list[dict[str, Any]]
    trend: list[tuple[date, int, int]] = field(default_factory=list)  # (week, passed, evaluated)


@dataclass
class TableDigest:
    table: str
    records: int
    synced_at: Optional[datetime]
    digest: str


@dataclass
class Report:
    generated_at: datetime
    since: Optional[date]
    tables: tuple[str, ...]
    organisations: Result
    period: Result
    catalogue_versions: list[str]
    connector_version: Optional[str]
    controls: list[Control]
    projects: list[Project]
    rollup_missing: tuple[str, ...]
    pipelines_missing: tuple[str, ...]
    approvals_missing: tuple[str, ...]
    history_missing: tuple[str, ...]
    failed_deploy_gates: Result
    unrestricted_contexts: Result
    fork_secrets: Result
    unreadable: Result
    trend_missing: tuple[str, ...]
    digests: list[TableDigest]

    @property
    def synced_at(self) -> Optional[datetime]:
        times = [d.synced_at for d in self.digests if d.synced_at]
        return max(times) if times else None


def load(warehouse: Warehouse) -> Report:
    rollup = warehouse.run(queries.ROLLUP)
    projects = _projects(rollup.rows, _names(warehouse.run(queries.PROJECT_NAMES)))
    controls = _controls(rollup.rows)
    pipelines = warehouse.run(queries.ROLLUP_PIPELINES)
    _attach_pipelines(projects, pipelines.rows)
    approvals = warehouse.run(queries.ROLLUP_APPROVALS)
    _attach_approvals(projects, approvals.rows)
    history = warehouse.run(queries.HISTORY, depth=HISTORY_DEPTH)
    _attach_history(projects, history.rows)
    trend = warehouse.run(queries.WEEKLY_TREND)
    _attach_trend(controls, trend.rows)
    return Report(
        generated_at=datetime.now(timezone.utc),
        since=warehouse.since,
        tables=warehouse.tables,
        organisations=warehouse.run(queries.ORGANISATIONS),
        period=warehouse.run(queries.PERIOD),
        catalogue_versions=sorted({row["catalogue_version"] for row in rollup.rows if row["catalogue_version"]}),
        connector_version=_installed_version("source-circleci-ccm"),
        controls=controls,
        projects=projects,
        rollup_missing=rollup.missing,
        pipelines_missing=pipelines.missing,
        approvals_missing=approvals.missing,
        history_missing=history.missing,
        failed_deploy_gates=warehouse.run(queries.FAILED_DEPLOY_GATES, limit=EXCEPTION_ROWS),
        unrestricted_contexts=warehouse.run(queries.UNRESTRICTED_SECRET_CONTEXTS),
        fork_secrets=warehouse.run(queries.FORK_SECRETS),
        unreadable=warehouse.run(queries.UNREADABLE),
        trend_missing=trend.missing,
        digests=[TableDigest(table=table, **warehouse.table_digest(table)) for table in warehouse.tables],
    )


def _names(result: Result) -> dict[str, str]:
    return {row["slug"]: row["name"] for row in result.rows}


def _projects(rollup: list[dict[str, Any]], names: dict[str, str]) -> list[Project]:
    by_slug: dict[str, Project] = {}
    for row in rollup:
        slug = row["project_slug"]
        project = by_slug.setdefault(slug, Project(slug=slug, name=names.get(slug) or slug, controls={}))
        project.controls[row["control_id"]] = ProjectControl(
            control_id=row["control_id"],
            status=row["status"],
            reason=row["reason"],
            evidence=json.loads(row["evidence"] or "[]"),
            required=bool(row["required"]),
            pipeline_id=row["pipeline_id"],
        )
    return sorted(by_slug.values(), key=lambda p: (p.name.lower(), p.slug))


def _controls(rollup: list[dict[str, Any]]) -> list[Control]:
    by_id: dict[str, Control] = {}
    for row in rollup:
        control = by_id.setdefault(
            row["control_id"],
            Control(row["control_id"], dict.fromkeys(STATUSES, 0), json.loads(row["frameworks"] or "[]")),
        )
        control.counts[row["status"]] = control.counts.get(row["status"], 0) + 1
    return [by_id[key] for key in sorted(by_id)]


def _attach_pipelines(projects: list[Project], rows: list[dict[str, Any]]) -> None:
    by_id = {row["id"]: row for row in rows}
    for project in projects:
        ids = sorted({c.pipeline_id for c in project.controls.values() if c.pipeline_id in by_id})
        project.pipeline = by_id[ids[0]] if ids else None


def _attach_approvals(projects: list[Project], rows: list[dict[str, Any]]) -> None:
    by_pipeline: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_pipeline[row["pipeline_id"]].append(row)
    for project in projects:
        if project.pipeline:
            project.approvals = by_pipeline.get(project.pipeline["id"], [])


def _attach_history(projects: list[Project], rows: list[dict[str, Any]]) -> None:
    by_key = {(row["project_slug"], row["control_id"]): list(zip(row["statuses"], row["numbers"])) for row in rows}
    for project in projects:
        for control in project.controls.values():
            control.history = by_key.get((project.slug, control.control_id), [])


def _attach_trend(controls: list[Control], rows: list[dict[str, Any]]) -> None:
    by_id: dict[str, list[tuple[date, int, int]]] = defaultdict(list)
    for row in rows:
        by_id[row["control_id"]].append((row["week"], row["passed"], row["evaluated"]))
    for control in controls:
        control.trend = by_id.get(control.control_id, [])


def _installed_version(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
