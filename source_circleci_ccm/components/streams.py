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
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from airbyte_cdk.sources.streams.concurrent.cursor import Cursor, CursorField, FinalStateCursor
from airbyte_cdk.sources.streams.concurrent.default_stream import DefaultStream
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record

from source_circleci_ccm.components import skips
from source_circleci_ccm.components.client import CircleCIClient
from source_circleci_ccm.components.crawl import (
    CONFIG,
    END,
    JOB_DETAILS,
    JOB_STEPS,
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
    ActivityStream("users", ("id",), "id", frozenset({WORKFLOWS, JOBS}), True, _users, _first_named_users),
    ActivityStream(
        "security_controls",
        ("record_id",),
        "evaluated_at",
        frozenset({WORKFLOWS, JOBS, CONFIG, PROJECT}),
        True,
        lambda sync, consumer, item: sync.security_controls.records(consumer, item),
        lambda sync, consumer: sync.security_controls.planner(consumer),
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

    def identity(self) -> Any:
        return self.client.get("/v2/me", subject=Subject("identity", "of the token"), keep=True)


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
                cursor_field=None,
                logger=logger,
                cursor=FinalStateCursor(name, None, message_repository),
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
