"""Every stream of the connector, one entry each: its keys, what it reads and from where.

Two kinds, built by the source with the sync's client (there is no per-run hook for manifest components):
- **full-refresh streams** read small lists once a sync: the identity, organisations, contexts and their
  variables and restrictions, projects and their settings, variables and keys. Answers several streams need
  are kept by the client for the sync (each URL is fetched once).
- **activity streams** take their records from the crawl (crawl.py), one `PipelineWork` at a time; their
  cursor (cursor.py) owns their incremental state.
Schemas are package data generated from CircleCI's OpenAPI spec (scripts/generate_schemas.py).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from airbyte_cdk.sources.streams.concurrent.cursor import Cursor, CursorField, FinalStateCursor
from airbyte_cdk.sources.streams.concurrent.default_stream import DefaultStream
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record

from source_circleci_ccm.components import skips
from source_circleci_ccm.components.client import CircleCIClient
from source_circleci_ccm.components.cursor import KeyedCursor, end_of
from source_circleci_ccm.components.progress import format_time, parse_time
from source_circleci_ccm.components.crawl import (
    CONFIG,
    END,
    JOB_ARTIFACTS,
    JOB_DETAILS,
    JOB_STEPS,
    JOB_TESTS,
    JOBS,
    PROJECT,
    WORKFLOWS,
    ActivityCrawl,
    Consumer,
    CrawlFailed,
    Delivered,
    Organization,
    PipelineWork,
    is_terminal,
)
from source_circleci_ccm.components.schemas import packaged_schema
from source_circleci_ccm.components.skips import Subject
from source_circleci_ccm.components.security_controls import SecurityControls

BATCH = 20  # pipelines a partition may cover: fewer partitions, less per-partition overhead in the CDK


def with_keys(record: Mapping[str, Any], **keys: Any) -> dict[str, Any]:
    """The record with its parents' keys, so a warehouse can join without the API (a value it has is kept)."""
    copy = dict(record)
    for key, value in keys.items():
        if copy.get(key) is None:
            copy[key] = value
    return copy


# --- full-refresh streams ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ListStream:
    """A full-refresh stream: one partition per parent, each read by `read(sync, parent)`."""

    name: str
    primary_key: tuple[str, ...]
    parents: Callable[["SyncStreams"], Iterable[Mapping[str, Any]]]
    read: Callable[["SyncStreams", Mapping[str, Any]], Iterable[Mapping[str, Any]]]
    cursor_field: Optional[str] = None  # incremental, with a KeyedCursor the read consults and advances


def _once(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    return [{}]


def _organizations(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    return [{"org_slug": org.slug, "org_id": org.id} for org in sync.crawl.organizations() if org.id]


def _contexts(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    for org in sync.crawl.organizations():
        for context in sync.crawl.contexts(org):
            if context.get("id"):
                yield {"context_id": context["id"], "org_slug": org.slug}


def _projects(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    return ({"project_slug": slug} for slug in sync.crawl.projects())


def _readable_projects(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    """Projects the token can read (`GET /v2/project/{slug}`, once a sync): a restricted one is warned about
    once and its other endpoints are not asked."""
    return ({"project_slug": slug} for slug in sync.crawl.projects() if sync.crawl.project(slug) is not None)


def _whole(body: Any) -> list[Mapping[str, Any]]:
    return [body] if isinstance(body, dict) else []


def _collaborations(sync: "SyncStreams", _: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for org in sync.crawl.collaborations():
        # The spec says `vcs-type`, real servers say `vcs_type`: records always carry `vcs_type`.
        record = {key: value for key, value in org.items() if key != "vcs-type"}
        record["vcs_type"] = org.get("vcs_type", org.get("vcs-type"))
        yield record


def _project_items(endpoint: str) -> Callable[["SyncStreams", Mapping[str, Any]], Iterable[Mapping[str, Any]]]:
    def read(sync: "SyncStreams", parent: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
        slug = parent["project_slug"]
        for item in sync.client.items(f"/v2/project/{slug}/{endpoint}", subject=skips.project(slug)):
            yield with_keys(item, project_slug=slug)

    return read


def _context_items(endpoint: str) -> Callable[["SyncStreams", Mapping[str, Any]], Iterable[Mapping[str, Any]]]:
    def read(sync: "SyncStreams", parent: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
        for item in sync.crawl.context_items(parent["context_id"], endpoint):
            yield with_keys(item, context_id=parent["context_id"], org_slug=parent["org_slug"])

    return read


LIST_STREAMS = (
    ListStream("me", ("id",), _once, lambda sync, _: _whole(sync.identity())),
    ListStream("collaborations", ("id",), _once, _collaborations),
    ListStream(
        "contexts",
        ("id",),
        _organizations,
        lambda sync, org: (
            with_keys(c, org_slug=org["org_slug"], org_id=org["org_id"])
            for c in sync.crawl.contexts(Organization(org["org_slug"], org["org_id"], None))
        ),
    ),
    ListStream("projects", ("id",), _projects, lambda sync, p: _whole(sync.crawl.project(p["project_slug"]))),
    ListStream(
        "project_settings",
        ("project_slug",),
        _readable_projects,
        # The `advanced` flags, flattened to the top level of the record.
        lambda sync, p: [with_keys(s.get("advanced") or {}, project_slug=p["project_slug"]) for s in _whole(sync.crawl.settings(p["project_slug"]))],
    ),
    # Values are masked by CircleCI (xxxx + last 4 characters) and kept exactly as given.
    ListStream("project_env_vars", ("project_slug", "name"), _readable_projects, _project_items("envvar")),
    ListStream("project_checkout_keys", ("project_slug", "fingerprint"), _readable_projects, _project_items("checkout-key")),
    ListStream("context_env_vars", ("context_id", "variable"), _contexts, _context_items("environment-variable")),
    ListStream("context_restrictions", ("id",), _contexts, _context_items("restrictions")),
)


# --- deployment and governance streams (issue 12) --------------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    """An API some plans or project types lack. Its 403/404 skips it for that organisation or project with one
    warning naming both (every endpoint of the feature shares the subject), and it is not asked again."""

    name: str
    why: str

    def subject(self, kind: str, owner: str) -> Subject:
        reason = f"CircleCI answered {{status}}: {self.why}; the sync goes on without it"
        return Subject(f"{self.name} of {kind}", owner, reasons=((403, reason), (404, reason)), counted_as=f"{self.name} not available")


DEPLOYS = Feature("deploys", "deploy tracking is not on this organization's plan, or the token cannot see it")
POLICIES = Feature("config policies", "config policies are not on this organization's plan, or the token cannot see them")
GROUPS = Feature("groups", "this organization's groups are not available to the token")
ORB_ALLOW_LIST = Feature("URL orb allow-list", "this organization has no URL orb allow-list the token can read")
SCHEDULES = Feature("schedules", "this project's scheduled pipelines are not available to the token")
WEBHOOKS = Feature("webhooks", "this project's webhooks are not available to the token")
DEFINITIONS = Feature("pipeline definitions", "pipeline definitions exist for GitHub App and GitLab projects only")
MESSAGE_LIMIT_BYTES = 4096  # a test's failure message is kept up to this many UTF-8 bytes
SECRET_FIELDS = frozenset({"signing-secret", "signing_secret", "secret"})  # never emitted, in any form


def truncate_message(message: Any) -> tuple[Any, bool]:
    """(the message cut to MESSAGE_LIMIT_BYTES UTF-8 bytes at a character boundary, whether it was cut)."""
    if not isinstance(message, str):
        return message, False
    raw = message.encode("utf-8")
    if len(raw) <= MESSAGE_LIMIT_BYTES:
        return message, False
    return raw[:MESSAGE_LIMIT_BYTES].decode("utf-8", "ignore"), True


def _org(parent: Mapping[str, Any]) -> dict[str, Any]:
    return {"org_id": parent["org_id"], "org_slug": parent["org_slug"]}


def _owner(parent: Mapping[str, Any]) -> dict[str, Any]:
    return {"owner_id": parent["org_id"], "org_slug": parent["org_slug"]}


def _org_items(feature: Feature, path: str, params: Optional[Mapping[str, str]] = None) -> Callable[["SyncStreams", Mapping[str, Any]], Iterable[Mapping[str, Any]]]:
    def read(sync: "SyncStreams", org: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
        items = sync.feature_list(feature, "organisation", org["org_slug"], path.format(org_id=org["org_id"]), params)
        return (with_keys(item, **_org(org)) for item in items or ())

    return read


def _deploy_items(what: str) -> Callable[["SyncStreams", Mapping[str, Any]], Iterable[Mapping[str, Any]]]:
    def read(sync: "SyncStreams", org: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
        return (with_keys(item, **_org(org)) for item in sync.deploy_list(org, what) or ())

    return read


def _component_versions(sync: "SyncStreams", org: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Every version of each component in each environment (the endpoint has no time filter). Incremental: those
    deployed since the last sync, and those whose `is_live` flipped (the previously live version of a component
    in an environment turns `false` without its `last_deployed_at` changing), from the live version per
    component and environment kept in state (size: components x environments, not history)."""
    cursor = sync.list_cursors.get("deploy_component_versions")
    previous = cursor.previous(org["org_id"]) if cursor else None
    previous = previous if isinstance(previous, Mapping) else None
    since = parse_time(previous.get("last_deployed_at")) if previous else None
    # No `live` map (a state written by hand): only the date tells what is new.
    live_before = previous.get("live") if previous else None
    environments, components = sync.deploy_list(org, "environments"), sync.deploy_list(org, "components")
    if environments is None or components is None:
        return
    newest, live = since, {}
    for component in components:
        for environment in environments:
            for version in sync.component_versions(org, component.get("id"), environment.get("id")) or ():
                key = f"{component.get('id')}/{version.get('environment_id') or environment.get('id')}"
                when = parse_time(version.get("last_deployed_at"))
                is_live = bool(version.get("is_live"))
                if is_live:
                    live[key] = version.get("name")
                if when is not None and (newest is None or when > newest):
                    newest = when
                changed = isinstance(live_before, Mapping) and is_live != (live_before.get(key) == version.get("name"))
                if previous is None or since is None or (when is not None and when > since) or changed:
                    yield with_keys(version, component_id=component.get("id"), **_org(org))
    if cursor:
        cursor.advance(org["org_id"], {"last_deployed_at": format_time(newest), "live": live})


def _policy_settings(sync: "SyncStreams", org: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return [with_keys(body, **_owner(org)) for body in _whole(sync.policy_settings(org))]


def _policy_bundles(sync: "SyncStreams", org: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The bundle is a map {name: [Policy]}: one record per policy, with its Rego source."""
    return [with_keys(policy, **_owner(org)) for policy in sync.policies(org) or ()]


def _policy_decisions(sync: "SyncStreams", org: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Decision logs, newest first, as a bare array paged by `offset`. Incremental by `created_at` through
    `after` (strictly after): the cursor moves to the newest decision once the org's listing is read whole, so
    decisions arriving meanwhile (which shift offsets: one may come twice, same id) are never lost."""
    cursor = sync.list_cursors.get("policy_decisions")
    after = cursor.previous(org["org_id"]) if cursor else None
    if sync.is_absent(POLICIES, org["org_slug"]):
        return
    path = f"/v2/owner/{org['org_id']}/context/config/decision"
    params = {"after": after} if isinstance(after, str) and after else {}
    subject = POLICIES.subject("organisation", org["org_slug"])
    offset, full, newest = 0, 0, (after, parse_time(after))
    while True:
        page = sync.client.get(path, {**params, "offset": str(offset)} if offset else params, subject=subject)
        if page is None:
            if offset == 0:
                sync.mark_absent(POLICIES, org["org_slug"])
            return  # nothing advanced: the next sync asks again
        decisions = [d for d in page if isinstance(d, dict)] if isinstance(page, list) else []
        for decision in decisions:
            when = parse_time(decision.get("created_at"))
            if when is not None and (newest[1] is None or when > newest[1]):
                newest = (decision["created_at"], when)
            yield with_keys(decision, **_owner(org))
        full = full or len(decisions)
        if not decisions or len(decisions) < full:
            break
        offset += len(decisions)
    if cursor and newest[0]:
        cursor.advance(org["org_id"], newest[0])


def _github_app_projects(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    """Readable projects that may have pipeline definitions: GitHub App ones (`circleci/` slugs); the others
    answer 404, so they are not asked."""
    for parent in _readable_projects(sync):
        project = sync.crawl.project(parent["project_slug"]) or {}
        if parent["project_slug"].startswith("circleci/") and project.get("id"):
            yield {"project_slug": parent["project_slug"], "project_id": project["id"]}


def _definitions(sync: "SyncStreams", parent: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return (with_keys(d, project_id=parent["project_id"], project_slug=parent["project_slug"]) for d in sync.definitions(parent) or ())


def _definition_parents(sync: "SyncStreams") -> Iterable[Mapping[str, Any]]:
    for project in _github_app_projects(sync):
        for definition in sync.definitions(project) or ():
            if definition.get("id"):
                yield {**project, "pipeline_definition_id": definition["id"]}


def _triggers(sync: "SyncStreams", parent: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    path = f"/v2/projects/{parent['project_id']}/pipeline-definitions/{parent['pipeline_definition_id']}/triggers"
    items = sync.feature_list(DEFINITIONS, "project", parent["project_slug"], path)
    return (with_keys(t, pipeline_definition_id=parent["pipeline_definition_id"], project_id=parent["project_id"]) for t in items or ())


def _schedules(sync: "SyncStreams", parent: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    slug = parent["project_slug"]
    return (with_keys(item, project_slug=slug) for item in sync.feature_list(SCHEDULES, "project", slug, f"/v2/project/{slug}/schedule") or ())


def _webhooks(sync: "SyncStreams", parent: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return (with_keys(hook, project_slug=parent["project_slug"]) for hook in sync.webhooks(parent["project_slug"]) or ())


GOVERNANCE_STREAMS = (
    ListStream("deploy_environments", ("id",), _organizations, _deploy_items("environments")),
    ListStream("deploy_components", ("id",), _organizations, _deploy_items("components")),
    ListStream("deploy_component_versions", ("component_id", "environment_id", "name"), _organizations, _component_versions, "last_deployed_at"),
    ListStream("project_schedules", ("id",), _readable_projects, _schedules),
    ListStream("pipeline_definitions", ("id",), _github_app_projects, _definitions),
    ListStream("pipeline_triggers", ("id",), _definition_parents, _triggers),
    ListStream("policy_settings", ("owner_id",), _organizations, _policy_settings),
    ListStream("policy_bundles", ("owner_id", "name"), _organizations, _policy_bundles),
    ListStream("policy_decisions", ("id",), _organizations, _policy_decisions, "created_at"),
    ListStream("org_groups", ("id",), _organizations, _org_items(GROUPS, "/v2/organizations/{org_id}/groups", {"limit": "100"})),
    ListStream("url_orb_allow_list", ("id",), _organizations, _org_items(ORB_ALLOW_LIST, "/v2/organization/{org_id}/url-orb-allow-list")),
    ListStream("webhooks", ("id",), _readable_projects, _webhooks),
)
LIST_STREAMS = LIST_STREAMS + GOVERNANCE_STREAMS


# --- activity streams ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActivityStream:
    """An incremental stream whose records come from the crawl's work on each pipeline it wants."""

    name: str
    primary_key: tuple[str, ...]
    # The record field destinations order a record's versions by (a workflow is emitted running, then again
    # finished); the stream's progress itself is the cursor's state, kept per pipeline.
    cursor_field: str
    needs: frozenset[str]
    revisits: bool  # looks again at pipelines that were unfinished, since their workflows may finish
    records: Callable[["SyncStreams", Consumer, Delivered], Iterable[Mapping[str, Any]]]
    planner: Optional[Callable[["SyncStreams", Consumer], Callable[[PipelineWork], Any]]] = None
    whole_pipeline: bool = False  # judges a pipeline on all its finished workflows once one of them changed


def _pipelines(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    return [with_keys(item.work.pipeline, org_slug=item.work.feed.org_slug)]


def _workflows(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    return consumer.changed_workflows(item.work)


def _jobs(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    work = item.work
    for workflow in consumer.terminal_workflows_taken(work):
        for job in work.jobs.get(workflow["id"], ()):
            yield with_keys(job, workflow_id=workflow["id"], pipeline_id=work.pipeline["id"], project_slug=workflow.get("project_slug") or work.project_slug)


def _pipeline_configs(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    work = item.work
    return [with_keys(work.config, pipeline_id=work.pipeline["id"], project_slug=work.project_slug)] if work.config else []


def _job_details(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    work = item.work
    for workflow, job in work.build_jobs(consumer.terminal_workflows_taken(work)):
        details = work.job_details.get(job["id"])
        if isinstance(details, dict):
            yield with_keys(details, job_id=job["id"], project_slug=work.job_project(workflow, job), workflow_id=workflow["id"], pipeline_id=work.pipeline["id"])


def _job_steps(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    """One record per step of a v1.1 build, in the order CircleCI ran them (the position is the step's index)."""
    work = item.work
    for workflow, job in work.build_jobs(consumer.terminal_workflows_taken(work)):
        steps = work.job_steps.get(job["id"])
        for index, step in enumerate(steps if isinstance(steps, list) else ()):
            if isinstance(step, Mapping):
                yield {
                    "step_index": index,
                    "name": step.get("name"),
                    "actions": step.get("actions") or [],
                    "job_id": job["id"],
                    "job_number": job["job_number"],
                    "project_slug": work.job_project(workflow, job),
                    "workflow_id": workflow["id"],
                    "pipeline_id": work.pipeline["id"],
                }


def _job_keys(work: PipelineWork, workflow: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "job_id": job["id"],
        "job_number": job["job_number"],
        "project_slug": work.job_project(workflow, job),
        "workflow_id": workflow["id"],
        "pipeline_id": work.pipeline["id"],
    }


def _job_tests(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    """Every test of every page, numbered across pages; a failure message over 4 KB is cut, and flagged."""
    work = item.work
    for workflow, job in work.build_jobs(consumer.terminal_workflows_taken(work)):
        for index, test in enumerate(work.job_tests.get(job["id"]) or ()):
            message, cut = truncate_message(test.get("message"))
            yield {**test, "message": message, "message_truncated": cut, "test_index": index, **_job_keys(work, workflow, job)}


def _job_artifacts(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    """Path and node of each artifact; the signed `url` (it grants access) was dropped when fetched."""
    work = item.work
    for workflow, job in work.build_jobs(consumer.terminal_workflows_taken(work)):
        for artifact in work.job_artifacts.get(job["id"]) or ():
            yield {**{k: v for k, v in artifact.items() if k != "url"}, **_job_keys(work, workflow, job)}


def _first_named_users(sync: "SyncStreams", consumer: Consumer) -> Callable[[PipelineWork], Any]:
    """users: the people behind the workflows and jobs emitted in this sync, each read once; a user belongs to
    the first pipeline (in feed order) that names it, so a done pipeline never leaves its user unread."""
    seen: set[str] = set()
    lock = threading.Lock()

    def plan(work: PipelineWork) -> list[str]:
        people: list[Any] = []
        for workflow in consumer.changed_workflows(work):
            people += [workflow.get(key) for key in ("started_by", "canceled_by", "errored_by")]
            if is_terminal(workflow):
                for job in work.jobs.get(workflow["id"], ()):
                    people += [job.get("approved_by"), job.get("canceled_by")]
        with lock:
            new = [p for p in dict.fromkeys(people) if isinstance(p, str) and p and p not in seen]
            seen.update(new)
        return new

    return plan


def _users(sync: "SyncStreams", consumer: Consumer, item: Delivered) -> Iterable[Mapping[str, Any]]:
    for user_id in item.plan:
        yield from _whole(sync.client.get(f"/v2/user/{user_id}", subject=Subject("user", user_id)))


ACTIVITY_STREAMS = (
    ActivityStream("pipelines", ("id",), "created_at", frozenset(), False, _pipelines),
    ActivityStream("workflows", ("id",), "stopped_at", frozenset({WORKFLOWS}), True, _workflows),
    ActivityStream("jobs", ("id",), "stopped_at", frozenset({WORKFLOWS, JOBS}), True, _jobs),
    ActivityStream("pipeline_configs", ("pipeline_id",), "pipeline_id", frozenset({CONFIG}), False, _pipeline_configs),
    ActivityStream("job_details", ("job_id",), "stopped_at", frozenset({WORKFLOWS, JOBS, JOB_DETAILS}), True, _job_details),
    ActivityStream("job_steps", ("job_id", "step_index"), "job_number", frozenset({WORKFLOWS, JOBS, JOB_STEPS}), True, _job_steps),
    ActivityStream("job_tests", ("job_id", "test_index"), "job_number", frozenset({WORKFLOWS, JOBS, JOB_TESTS}), True, _job_tests),
    ActivityStream("job_artifacts", ("job_id", "node_index", "path"), "job_number", frozenset({WORKFLOWS, JOBS, JOB_ARTIFACTS}), True, _job_artifacts),
    ActivityStream("users", ("id",), "id", frozenset({WORKFLOWS, JOBS}), True, _users, _first_named_users),
    ActivityStream(
        "security_controls",
        ("record_id",),
        "evaluated_at",
        frozenset({WORKFLOWS, JOBS, CONFIG, PROJECT, JOB_TESTS, JOB_ARTIFACTS}),
        True,
        lambda sync, consumer, item: sync.security_controls.records(consumer, item),
        lambda sync, consumer: sync.security_controls.planner(consumer),
        whole_pipeline=True,
    ),
)
STREAM_NAMES = tuple(s.name for s in LIST_STREAMS) + tuple(s.name for s in ACTIVITY_STREAMS)


# --- CDK plumbing ----------------------------------------------------------------------------------------------
class ListPartition(Partition):
    def __init__(self, stream_name: str, parent: Mapping[str, Any], read: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self._stream_name = stream_name
        self._parent = parent
        self._read = read

    def read(self) -> Iterable[Record]:
        for data in self._read():
            yield Record(data=data, stream_name=self._stream_name)
        yield end_of(self)

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return dict(self._parent)

    def stream_name(self) -> str:
        return self._stream_name

    def __hash__(self) -> int:
        return id(self)


class ListPartitions(PartitionGenerator):
    def __init__(self, sync: "SyncStreams", stream: ListStream) -> None:
        self._sync = sync
        self._stream = stream

    def generate(self) -> Iterable[Partition]:
        for parent in self._stream.parents(self._sync):
            yield ListPartition(self._stream.name, parent, lambda parent=parent: self._stream.read(self._sync, parent))


class WorkPartition(Partition):
    """A few pipelines' work for one activity stream; `units` are what its cursor counts done once emitted."""

    def __init__(self, sync: "SyncStreams", stream: ActivityStream, consumer: Consumer, items: list[Delivered]) -> None:
        self._sync = sync
        self._stream = stream
        self._consumer = consumer
        self._items = items
        self.units = [item.unit for item in items]

    def read(self) -> Iterable[Record]:
        try:
            for item in self._items:
                for data in self._stream.records(self._sync, self._consumer, item):
                    yield Record(data=data, stream_name=self._stream.name)
            yield end_of(self)
        finally:
            for item in self._items:
                item.work.release_slot()

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return {"pipeline_ids": [item.work.pipeline.get("id") for item in self._items]}

    def stream_name(self) -> str:
        return self._stream.name

    def __hash__(self) -> int:
        return id(self)


class WorkPartitions(PartitionGenerator):
    """An activity stream's partitions: its inbox of work from the crawl, in feed order, a few pipelines each."""

    def __init__(self, sync: "SyncStreams", stream: ActivityStream, consumer: Optional[Consumer]) -> None:
        self._sync = sync
        self._stream = stream
        self._consumer = consumer

    def generate(self) -> Iterable[Partition]:
        if self._consumer is None:  # not selected in this sync: described by discover, never read
            return
        inbox = self._consumer.inbox
        self._sync.crawl.start()
        try:
            while True:
                item = inbox.get()
                if item is END:
                    return
                if isinstance(item, CrawlFailed):
                    raise item.error
                batch = [item]
                while len(batch) < BATCH:
                    try:
                        following = inbox.get_nowait()
                    except queue.Empty:
                        break
                    if not isinstance(following, Delivered):  # END or a failure: always the last item
                        inbox.put(following)
                        break
                    batch.append(following)
                yield WorkPartition(self._sync, self._stream, self._consumer, batch)
        finally:
            self._sync.crawl.detach(self._consumer)


@dataclass
class SyncStreams:
    """What the streams of one sync share, built once by the source and handed to each stream."""

    client: CircleCIClient
    crawl: ActivityCrawl
    security_controls: SecurityControls
    consumers: dict[str, Consumer]  # the selected activity streams' sides of the crawl
    list_cursors: dict[str, KeyedCursor] = field(default_factory=dict)  # incremental list streams selected so
    _absent: set[tuple[str, str]] = field(default_factory=set)  # (feature, owner) that answered 403/404
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def identity(self) -> Any:
        return self.client.get("/v2/me", subject=Subject("identity", "of the token"), keep=True)

    # --- features an account may lack: asked until one endpoint says 403/404, then skipped -----------------------
    def is_absent(self, feature: Feature, owner: str) -> bool:
        with self._lock:
            return (feature.name, owner) in self._absent

    def mark_absent(self, feature: Feature, owner: str) -> None:
        with self._lock:
            self._absent.add((feature.name, owner))

    def feature_list(
        self, feature: Feature, kind: str, owner: str, path: str, params: Optional[Mapping[str, str]] = None, keep: bool = False
    ) -> Optional[list[dict[str, Any]]]:
        """Every item of a list of `feature`, or None when the account lacks it (one warning per owner)."""
        if self.is_absent(feature, owner):
            return None
        subject = feature.subject(kind, owner)
        if keep:
            items = self.client.kept_list(path, params, subject=subject)
        else:
            listing = self.client.items(path, params, subject=subject)
            items = list(listing)
            items = items if listing.readable else None
        if items is None:
            self.mark_absent(feature, owner)
        return items

    def feature_get(self, feature: Feature, kind: str, owner: str, path: str) -> Any:
        """One small answer of `feature`, kept for the sync (a stream and a control read it), or None."""
        if self.is_absent(feature, owner):
            return None
        body = self.client.get(path, subject=feature.subject(kind, owner), keep=True)
        if body is None:
            self.mark_absent(feature, owner)
        return body

    # --- answers a stream and a control share (kept: each URL once a sync) ------------------------------------
    def deploy_list(self, org: Mapping[str, Any], what: str) -> Optional[list[dict[str, Any]]]:
        """The organisation's deploy `environments` or `components` (page-size is required by the API)."""
        params = {"org-id": org["org_id"], "page-size": "100"}
        return self.feature_list(DEPLOYS, "organisation", org["org_slug"], f"/v2/deploy/{what}", params, keep=True)

    def component_versions(self, org: Mapping[str, Any], component_id: Any, environment_id: Any) -> Optional[list[dict[str, Any]]]:
        path = f"/v2/deploy/components/{component_id}/versions"
        # Kept only when the security_controls stream also reads them: versions grow with deploy history.
        keep = self.security_controls.selected
        return self.feature_list(DEPLOYS, "organisation", org["org_slug"], path, {"environment-id": str(environment_id)}, keep=keep)

    def policy_settings(self, org: Mapping[str, Any]) -> Any:
        return self.feature_get(POLICIES, "organisation", org["org_slug"], f"/v2/owner/{org['org_id']}/context/config/decision/settings")

    def policies(self, org: Mapping[str, Any]) -> Optional[list[dict[str, Any]]]:
        """Every policy of the organisation's bundle ({name: [Policy]}), or None when config policies are absent."""
        body = self.feature_get(POLICIES, "organisation", org["org_slug"], f"/v2/owner/{org['org_id']}/context/config/policy-bundle")
        if not isinstance(body, Mapping):
            return None
        return [p for policies in body.values() if isinstance(policies, list) for p in policies if isinstance(p, dict)]

    def definitions(self, project: Mapping[str, Any]) -> Optional[list[dict[str, Any]]]:
        path = f"/v2/projects/{project['project_id']}/pipeline-definitions"
        return self.feature_list(DEFINITIONS, "project", project["project_slug"], path, keep=True)

    def webhooks(self, project_slug: str) -> Optional[list[dict[str, Any]]]:
        """The project's webhooks, without their signing secret (dropped from every answer handed on)."""
        project = self.crawl.project(project_slug)
        if not isinstance(project, Mapping) or not project.get("id"):
            return None
        params = {"scope-type": "project", "scope-id": str(project["id"])}
        hooks = self.feature_list(WEBHOOKS, "project", project_slug, "/v2/webhook", params, keep=True)
        return None if hooks is None else [{k: v for k, v in hook.items() if k not in SECRET_FIELDS} for hook in hooks]


def build_stream(
    sync: SyncStreams,
    name: str,
    cursor: Optional[Cursor],
    message_repository: Any,
) -> DefaultStream:
    """The CDK stream `name`; an activity stream's consumer must be registered in `sync.consumers`."""
    logger = logging.getLogger(f"airbyte.{name}")
    for stream in LIST_STREAMS:
        if stream.name == name:
            return DefaultStream(
                partition_generator=ListPartitions(sync, stream),
                name=name,
                json_schema=lambda name=name: packaged_schema(name),
                primary_key=list(stream.primary_key),
                cursor_field=CursorField(stream.cursor_field) if stream.cursor_field else None,
                logger=logger,
                cursor=(cursor if stream.cursor_field and cursor else None) or FinalStateCursor(name, None, message_repository),
            )
    activity = next(s for s in ACTIVITY_STREAMS if s.name == name)
    return DefaultStream(
        partition_generator=WorkPartitions(sync, activity, sync.consumers.get(name)),
        name=name,
        json_schema=lambda name=name: packaged_schema(name),
        primary_key=list(activity.primary_key),
        cursor_field=CursorField(activity.cursor_field),
        logger=logger,
        cursor=cursor or FinalStateCursor(name, None, message_repository),
    )
