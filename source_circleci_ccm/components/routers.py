"""Partition routers: which organisations, pipelines and workflows each stream reads in this sync.

Activity routers decide from the crawl (shared by every stream, so nothing is fetched twice) and from
the stream's own progress (what earlier syncs finished, what was still running). Each slice names
the records to emit in `extra_fields.emit_ids` where a list answer holds records already emitted.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState

from source_circleci_ccm.components.context import SyncContext
from source_circleci_ccm.components.crawl import ActivityCrawl, Feed, has_unfinished_work, is_terminal
from source_circleci_ccm.components.progress import StreamProgress, parse_time
from source_circleci_ccm.components.slugs import settings_project_path, v1_project_path


@dataclass
class _CrawlRouter(PartitionRouter):
    """Shared plumbing: the sync context, the crawl, no request options of its own, no parent state."""

    requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.stream_name: str = parameters.get("stream_name") or parameters.get("name") or ""
        self.context.use_requester(self.requester)

    @property
    def context(self) -> SyncContext:
        return SyncContext.current(self.config)

    @property
    def crawl(self) -> ActivityCrawl:
        return self.context.crawl()

    def get_request_params(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_headers(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_json(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def set_initial_state(self, stream_state: StreamState) -> None:
        """State is read by the stream's ActivityCursor, not handed down by the CDK."""

    def get_stream_state(self) -> Optional[Mapping[str, StreamState]]:
        return None


@dataclass
class OrganizationPartitionRouter(_CrawlRouter):
    """One slice per organisation: those in `org_slugs`, else every one the token collaborates with."""

    def stream_slices(self) -> Iterable[StreamSlice]:
        for org in self.crawl.organizations():
            if org.id:
                yield StreamSlice(partition={"org_slug": org.slug, "org_id": org.id}, cursor_slice={})


@dataclass
class ActivityPartitionRouter(_CrawlRouter):
    """Base of the routers whose stream is incremental over pipelines; its cursor is an ActivityCursor.

    `cursor_field` is the record field destinations order a record's versions by (a workflow is emitted
    running, then again finished); the stream's progress itself is kept per pipeline, not by this field."""

    cursor_field: str = "created_at"

    @property
    def progress(self) -> StreamProgress:
        return self.context.progress(self.stream_name)

    def stream_slices(self) -> Iterable[StreamSlice]:
        progress = self.progress
        # A feed is paged one page after another: listing every feed side by side overlaps the waits.
        listings = self.crawl.fan_out(lambda feed: self.crawl.pipelines(feed, progress.floor(feed.key)), self.crawl.feeds())
        for feed, pipelines in listings:
            if not pipelines.complete:  # a rejected page token cut the feed: what is below it is not done
                progress.feed_cut(feed.key, min((_created_at(p) for p in pipelines), default=float("inf")))
            yield from self.feed_slices(feed, progress, pipelines)
            progress.feed_generated(feed.key)
        progress.all_generated()

    def feed_slices(self, feed: Feed, progress: StreamProgress, pipelines: list[dict[str, Any]]) -> Iterable[StreamSlice]:
        """The slices of one feed, given its pipelines newest first down to the stream's floor."""
        raise NotImplementedError


def _created_at(pipeline: Mapping[str, Any]) -> float:
    return parse_time(pipeline.get("created_at")) or 0.0


@dataclass
class FeedPartitionRouter(ActivityPartitionRouter):
    """pipelines: one slice per feed, naming the pipelines not emitted by an earlier sync."""

    def feed_slices(self, feed: Feed, progress: StreamProgress, pipelines: list[dict[str, Any]]) -> Iterable[StreamSlice]:
        floor = progress.floor(feed.key)
        new = [p for p in pipelines if progress.is_new(feed.key, _created_at(p))]
        if not new:
            return
        unit = progress.open_unit(feed.key, floor, max(_created_at(p) for p in new))
        progress.add_partition(unit)
        progress.unit_generated(unit)
        yield StreamSlice(
            partition={"feed": feed.key, "path": feed.path, "org_slug_param": feed.org_slug_param},
            cursor_slice={},
            extra_fields={
                "unit": unit,
                "org_slug": feed.org_slug,
                "stop_below": None if floor == float("-inf") else floor,
                "emit_ids": [p["id"] for p in new],
            },
        )

    def get_request_params(self, stream_slice: Optional[StreamSlice] = None, **kwargs: Any) -> Mapping[str, Any]:
        org_slug = (stream_slice or {}).get("org_slug_param")
        return {"org-slug": org_slug} if org_slug else {}


@dataclass
class PipelineConfigPartitionRouter(ActivityPartitionRouter):
    """pipeline_configs: one slice per pipeline not processed by an earlier sync (a config never changes).
    An aged-out pipeline answers 404; the session counts it quietly and the sync goes on."""

    def feed_slices(self, feed: Feed, progress: StreamProgress, pipelines: list[dict[str, Any]]) -> Iterable[StreamSlice]:
        for pipeline in pipelines:
            created_at = _created_at(pipeline)
            if not progress.is_new(feed.key, created_at) or self.crawl.is_restricted(pipeline):
                continue
            unit = progress.open_unit(feed.key, created_at, created_at)
            progress.add_partition(unit)
            progress.unit_generated(unit)
            yield StreamSlice(
                partition={"pipeline_id": pipeline["id"]},
                cursor_slice={},
                extra_fields={"unit": unit, "project_slug": pipeline.get("project_slug")},
            )


Emitted = list[tuple[dict[str, Any], Optional[list[dict[str, Any]]]]]  # (workflow, its jobs if read)


@dataclass
class VisitedPipelineRouter(ActivityPartitionRouter):
    """Visits the pipelines that are new or were unfinished at the last sync. On the crawl's worker pool it
    reads their workflows and, for streams that need them, the jobs of the workflows that reached a
    terminal state: so the stream's own reads are answers already fetched, and the fan-out runs at
    `num_workers` whatever the CDK's threads are doing. Each subclass turns a visited pipeline into slices."""

    needs_jobs = True

    def feed_slices(self, feed: Feed, progress: StreamProgress, pipelines: list[dict[str, Any]]) -> Iterable[StreamSlice]:
        def read(pipeline: Mapping[str, Any]) -> tuple[Optional[list[dict[str, Any]]], Emitted]:
            workflows = self.crawl.workflows(pipeline)
            is_new = progress.is_new(feed.key, _created_at(pipeline))
            changed = [w for w in workflows or [] if is_new or _changed(progress, w)]
            return workflows, [(w, self.crawl.jobs(w["id"]) if self.needs_jobs and is_terminal(w) else None) for w in changed]

        for pipeline, (workflows, emitted) in self.crawl.fan_out(read, self._to_visit(feed, progress, pipelines)):
            created_at = _created_at(pipeline)
            unit = progress.open_unit(feed.key, created_at, created_at, pending=has_unfinished_work(pipeline, workflows))
            for stream_slice in self.pipeline_slices(pipeline, emitted, unit, progress.is_new(feed.key, created_at)):
                progress.add_partition(unit)
                yield stream_slice
            lists = [workflows] + [jobs for _, jobs in emitted]
            if all(listing is None or listing.complete for listing in lists):
                progress.unit_generated(unit)
            # else a list was cut by a rejected page token: the pipeline stays open, not done, and is read again

    @staticmethod
    def _to_visit(feed: Feed, progress: StreamProgress, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for p in pipelines if progress.is_new(feed.key, _created_at(p)) or progress.is_revisited(feed.key, _created_at(p))]

    def pipeline_slices(self, pipeline: Mapping[str, Any], emitted: Emitted, unit: int, is_new: bool) -> Iterable[StreamSlice]:
        raise NotImplementedError


@dataclass
class PipelinePartitionRouter(VisitedPipelineRouter):
    """workflows: one slice per visited pipeline, naming its workflows that are new or finished since the last sync."""

    needs_jobs = False

    def pipeline_slices(self, pipeline, emitted, unit, is_new):  # type: ignore[no-untyped-def]
        if emitted:
            yield StreamSlice(
                partition={"pipeline_id": pipeline["id"]},
                cursor_slice={},
                extra_fields={"unit": unit, "emit_ids": [workflow["id"] for workflow, _ in emitted]},
            )


@dataclass
class WorkflowPartitionRouter(VisitedPipelineRouter):
    """jobs: one slice per workflow that reached a terminal state since the last sync (never before)."""

    def pipeline_slices(self, pipeline, emitted, unit, is_new):  # type: ignore[no-untyped-def]
        for workflow, _ in emitted:
            if is_terminal(workflow):
                yield StreamSlice(
                    partition={"workflow_id": workflow["id"]},
                    cursor_slice={},
                    extra_fields={
                        "unit": unit,
                        "pipeline_id": pipeline["id"],
                        "project_slug": workflow.get("project_slug") or pipeline.get("project_slug"),
                    },
                )


def _changed(progress: StreamProgress, workflow: Mapping[str, Any]) -> bool:
    """Created since the last sync (a re-run), or finished since it."""
    stopped_at = workflow.get("stopped_at") if is_terminal(workflow) else None
    return progress.changed_since_last_sync(workflow.get("created_at"), stopped_at)


@dataclass
class BuildJobPartitionRouter(VisitedPipelineRouter):
    """job_details and job_steps: one slice per build job of a workflow that reached a terminal state since
    the last sync (the jobs stream's rule). Approval jobs have no job number and are never requested."""

    def pipeline_slices(self, pipeline, emitted, unit, is_new):  # type: ignore[no-untyped-def]
        for workflow, jobs in emitted:
            for job in jobs or []:
                number = job.get("job_number")
                if job.get("type") == "approval" or number is None:
                    continue
                project_slug = job.get("project_slug") or workflow.get("project_slug") or pipeline.get("project_slug")
                if not project_slug:
                    continue
                yield StreamSlice(
                    partition={
                        "job_id": job["id"],
                        "project_slug": project_slug,
                        "job_number": number,
                        "v1_project": v1_project_path(project_slug),
                    },
                    cursor_slice={},
                    extra_fields={"unit": unit, "workflow_id": workflow["id"], "pipeline_id": pipeline["id"]},
                )


@dataclass
class UserPartitionRouter(VisitedPipelineRouter):
    """users: the people behind the workflows and jobs emitted in this sync (`started_by`, `canceled_by`,
    `errored_by` of workflows; `approved_by`, `canceled_by` of jobs), each read once per sync.

    Pipelines are visited newest first and a user's slice belongs to the first pipeline that names it:
    a pipeline is only counted done once the users it names are read, so a sync stopped part-way never
    leaves a done pipeline whose user was not read."""

    def stream_slices(self) -> Iterable[StreamSlice]:
        self._seen_users: set[str] = set()
        yield from super().stream_slices()

    def pipeline_slices(self, pipeline, emitted, unit, is_new):  # type: ignore[no-untyped-def]
        for workflow, jobs in emitted:
            people = [workflow.get(key) for key in ("started_by", "canceled_by", "errored_by")]
            for job in jobs or []:
                people += [job.get("approved_by"), job.get("canceled_by")]
            for user_id in people:
                if not user_id or not isinstance(user_id, str) or user_id in self._seen_users:
                    continue
                self._seen_users.add(user_id)
                yield StreamSlice(partition={"user_id": user_id}, cursor_slice={}, extra_fields={"unit": unit})


@dataclass
class SecurityControlsPartitionRouter(VisitedPipelineRouter):
    """security_controls: one slice per pipeline to evaluate (new, or with workflows finished since the last
    sync, so execution evidence is now known), and one per project when first met, for its project-level
    controls. The newest evaluated pipeline on a project's default branch also gives the project roll-up."""

    def stream_slices(self) -> Iterable[StreamSlice]:
        self._rolled_up: set[str] = set()
        self._projects_met: set[str] = set()
        yield from super().stream_slices()

    def pipeline_slices(self, pipeline, emitted, unit, is_new):  # type: ignore[no-untyped-def]
        slug = pipeline.get("project_slug")
        project = self.crawl.project(slug) if slug else None
        if slug and slug not in self._projects_met:
            self._projects_met.add(slug)
            yield StreamSlice(
                partition={"project_slug": slug},
                cursor_slice={},
                extra_fields={"unit": unit, "kind": "project", "readable": project is not None},
            )
        if not (is_new or emitted):
            return
        default_branch = ((project or {}).get("vcs_info") or {}).get("default_branch")
        branch = (pipeline.get("vcs") or {}).get("branch")
        rollup = bool(default_branch) and branch == default_branch and slug not in self._rolled_up
        if rollup:
            self._rolled_up.add(slug)
        yield StreamSlice(
            partition={"pipeline_id": pipeline["id"]},
            cursor_slice={},
            extra_fields={"unit": unit, "kind": "pipeline", "pipeline": dict(pipeline), "rollup": rollup},
        )


@dataclass
class ProjectPartitionRouter(_CrawlRouter):
    """projects and their settings, env vars and checkout keys: one slice per project seen in the feeds'
    pipelines or configured, when the token can read it (`GET /v2/project/{slug}`, asked once per sync;
    a restricted project is warned about once and its other endpoints are not asked)."""

    def stream_slices(self) -> Iterable[StreamSlice]:
        for slug, project in self.crawl.fan_out(self.crawl.project, self.crawl.projects()):
            if project is None:
                continue
            yield StreamSlice(
                partition={"project_slug": slug, "settings_project": settings_project_path(slug)}, cursor_slice={}
            )


@dataclass
class ContextPartitionRouter(_CrawlRouter):
    """context_env_vars and context_restrictions: one slice per context of each organisation, from the
    `/v2/context?owner-id=` pages the contexts stream reads."""

    def stream_slices(self) -> Iterable[StreamSlice]:
        for org in self.crawl.organizations():
            for context in self.crawl.contexts(org):
                if context.get("id"):
                    yield StreamSlice(partition={"context_id": context["id"], "org_slug": org.slug}, cursor_slice={})
