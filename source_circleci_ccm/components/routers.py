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
    """Base of the routers whose stream is incremental over pipelines; its cursor is an ActivityCursor."""

    @property
    def progress(self) -> StreamProgress:
        return self.context.progress(self.stream_name)

    def stream_slices(self) -> Iterable[StreamSlice]:
        progress = self.progress
        for feed in self.crawl.feeds():
            yield from self.feed_slices(feed, progress)
            progress.feed_generated(feed.key)
        progress.all_generated()

    def feed_slices(self, feed: Feed, progress: StreamProgress) -> Iterable[StreamSlice]:
        raise NotImplementedError

    def pipelines_to_visit(self, feed: Feed, progress: StreamProgress) -> list[dict[str, Any]]:
        """New pipelines and those still unfinished at the last sync, newest first."""
        visit = []
        for pipeline in self.crawl.pipelines(feed, progress.floor(feed.key)):
            created_at = parse_time(pipeline.get("created_at"))
            if created_at is not None and (progress.is_new(feed.key, created_at) or progress.is_revisited(feed.key, created_at)):
                visit.append(pipeline)
        return visit


@dataclass
class FeedPartitionRouter(ActivityPartitionRouter):
    """pipelines: one slice per feed, naming the pipelines not emitted by an earlier sync."""

    def feed_slices(self, feed: Feed, progress: StreamProgress) -> Iterable[StreamSlice]:
        floor = progress.floor(feed.key)
        new = [p for p in self.crawl.pipelines(feed, floor) if progress.is_new(feed.key, parse_time(p.get("created_at")) or 0.0)]
        newest = max((parse_time(p["created_at"]) for p in new), default=None)
        if newest is None:
            return
        unit = progress.open_unit(feed.key, floor, newest)
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
class PipelinePartitionRouter(ActivityPartitionRouter):
    """workflows: one slice per pipeline visited, naming the workflows that are new or finished since the last sync."""

    def feed_slices(self, feed: Feed, progress: StreamProgress) -> Iterable[StreamSlice]:
        for pipeline, workflows in self.crawl.fan_out(self._workflows_of, self.pipelines_to_visit(feed, progress)):
            created_at = parse_time(pipeline["created_at"]) or 0.0
            unit = progress.open_unit(feed.key, created_at, created_at, pending=has_unfinished_work(pipeline, workflows))
            is_new = progress.is_new(feed.key, created_at)
            emit = [w["id"] for w in workflows or [] if is_new or _changed(progress, w)]
            if emit:
                progress.add_partition(unit)
                yield StreamSlice(
                    partition={"pipeline_id": pipeline["id"]},
                    cursor_slice={},
                    extra_fields={"unit": unit, "emit_ids": emit},
                )
            progress.unit_generated(unit)

    def _workflows_of(self, pipeline: Mapping[str, Any]) -> Optional[list[dict[str, Any]]]:
        return self.crawl.workflows(pipeline["id"])


@dataclass
class WorkflowPartitionRouter(PipelinePartitionRouter):
    """jobs: one slice per workflow that reached a terminal state since the last sync (never before)."""

    def feed_slices(self, feed: Feed, progress: StreamProgress) -> Iterable[StreamSlice]:
        for pipeline, workflows in self.crawl.fan_out(self._workflows_of, self.pipelines_to_visit(feed, progress)):
            created_at = parse_time(pipeline["created_at"]) or 0.0
            unit = progress.open_unit(feed.key, created_at, created_at, pending=has_unfinished_work(pipeline, workflows))
            is_new = progress.is_new(feed.key, created_at)
            for workflow in workflows or []:
                if is_terminal(workflow) and (is_new or _changed(progress, workflow)):
                    progress.add_partition(unit)
                    yield StreamSlice(
                        partition={"workflow_id": workflow["id"]},
                        cursor_slice={},
                        extra_fields={
                            "unit": unit,
                            "pipeline_id": pipeline["id"],
                            "project_slug": workflow.get("project_slug") or pipeline.get("project_slug"),
                        },
                    )
            progress.unit_generated(unit)


def _changed(progress: StreamProgress, workflow: Mapping[str, Any]) -> bool:
    """Created since the last sync (a re-run), or finished since it."""
    stopped_at = workflow.get("stopped_at") if is_terminal(workflow) else None
    return progress.changed_since_last_sync(workflow.get("created_at"), stopped_at)
