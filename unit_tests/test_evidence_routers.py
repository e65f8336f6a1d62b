"""Partition routers of the deeper-evidence streams, over a fake crawl: what each asks for and which
pipeline's progress each slice counts against."""

from __future__ import annotations

from typing import Any, Optional

from source_circleci_ccm.components.crawl import Feed, Listing, Organization
from source_circleci_ccm.components.progress import StreamProgress, parse_time
from source_circleci_ccm.components.routers import (
    BuildJobPartitionRouter,
    ContextPartitionRouter,
    PipelineConfigPartitionRouter,
    ProjectPartitionRouter,
    UserPartitionRouter,
)

FEED = Feed(key="gh/acme", org_slug="gh/acme", path="/v2/pipeline", org_slug_param="gh/acme")
ADA, BOB, CAT = "user-ada", "user-bob", "user-cat"


def pipeline(pid: str, created_at: str, project: str = "gh/acme/api") -> dict[str, Any]:
    return {"id": pid, "created_at": created_at, "project_slug": project, "state": "created"}


def workflow(wid: str, status: str = "success", **fields: Any) -> dict[str, Any]:
    return {"id": wid, "status": status, "created_at": "2026-11-01T00:00:00Z", "stopped_at": "2026-11-01T00:10:00Z", **fields}


def build(jid: str, number: Optional[int], **fields: Any) -> dict[str, Any]:
    job = {"id": jid, "type": "build", "project_slug": "gh/acme/api", **fields}
    if number is not None:
        job["job_number"] = number
    return job


def approval(jid: str, **fields: Any) -> dict[str, Any]:
    return {"id": jid, "type": "approval", "approval_request_id": jid, "project_slug": "gh/acme/api", **fields}


class FakeCrawl:
    def __init__(self, pipelines=(), workflows=None, jobs=None, projects=(), readable=(), contexts=None) -> None:
        self._pipelines = list(pipelines)
        self._workflows = workflows or {}
        self._jobs = jobs or {}
        self._projects = list(projects)
        self._readable = set(readable)
        self._contexts = contexts or {}
        self.asked: list[str] = []

    def feeds(self):
        return [FEED]

    def organizations(self):
        return [Organization(slug=slug, id=f"id-{slug}", name=slug) for slug in self._contexts]

    def pipelines(self, feed, stop_below):
        return Listing(self._pipelines)

    def workflows(self, pipeline):
        self.asked.append(f"workflows {pipeline['id']}")
        found = self._workflows.get(pipeline["id"])
        return None if found is None else Listing(found)

    def is_restricted(self, pipeline):
        return False

    def jobs(self, workflow_id):
        self.asked.append(f"jobs {workflow_id}")
        found = self._jobs.get(workflow_id)
        return None if found is None else Listing(found)

    def projects(self):
        return self._projects

    def project(self, slug):
        self.asked.append(f"project {slug}")
        return {"slug": slug} if slug in self._readable else None

    def contexts(self, org):
        return self._contexts[org.slug]

    def fan_out(self, fetch, items):
        items = list(items)
        return zip(items, [fetch(item) for item in items])


def router(cls, crawl: FakeCrawl, progress: Optional[StreamProgress] = None):
    instance = cls(requester=None, config={}, parameters={"name": "test"})  # type: ignore[arg-type]
    instance.__class__ = type(cls.__name__, (cls,), {"crawl": crawl, "progress": progress or StreamProgress(None, start=None, lookback_seconds=86400)})
    return instance


def test_users_are_sliced_once_and_belong_to_the_newest_pipeline_that_names_them() -> None:
    newer, older = pipeline("p2", "2026-11-02T00:00:00Z"), pipeline("p1", "2026-11-01T00:00:00Z")
    crawl = FakeCrawl(
        pipelines=[newer, older],
        workflows={"p2": [workflow("w2", started_by=BOB)], "p1": [workflow("w1", started_by=BOB, canceled_by=ADA)]},
        jobs={"w2": [approval("a2", approved_by=ADA)], "w1": [build("b1", 7, canceled_by=CAT)]},
    )
    progress = StreamProgress(None, start=None, lookback_seconds=86400)
    slices = list(router(UserPartitionRouter, crawl, progress).stream_slices())

    owner = {s.partition["user_id"]: progress._by_id[s.extra_fields["unit"]].high for s in slices}
    assert owner == {BOB: parse_time(newer["created_at"]), ADA: parse_time(newer["created_at"]), CAT: parse_time(older["created_at"])}


def test_users_of_an_unfinished_workflow_are_read_but_its_jobs_are_not() -> None:
    crawl = FakeCrawl(pipelines=[pipeline("p1", "2026-11-01T00:00:00Z")], workflows={"p1": [workflow("w1", status="on_hold", started_by=ADA)]})
    slices = list(router(UserPartitionRouter, crawl).stream_slices())

    assert [s.partition["user_id"] for s in slices] == [ADA]
    assert "jobs w1" not in crawl.asked


def test_build_jobs_router_skips_approval_jobs_and_jobs_that_never_got_a_number() -> None:
    crawl = FakeCrawl(
        pipelines=[pipeline("p1", "2026-11-01T00:00:00Z", project="bb/acme/api")],
        workflows={"p1": [workflow("w1")]},
        jobs={"w1": [build("b1", 11, project_slug="bb/acme/api"), approval("a1"), build("b2", None, status="blocked")]},
    )
    slices = list(router(BuildJobPartitionRouter, crawl).stream_slices())

    assert [s.partition for s in slices] == [
        {"job_id": "b1", "project_slug": "bb/acme/api", "job_number": 11, "v1_project": "bitbucket/acme/api"}
    ]
    assert slices[0].extra_fields["workflow_id"] == "w1" and slices[0].extra_fields["pipeline_id"] == "p1"


def test_build_jobs_router_waits_for_a_workflow_to_finish() -> None:
    crawl = FakeCrawl(pipelines=[pipeline("p1", "2026-11-01T00:00:00Z")], workflows={"p1": [workflow("w1", status="running")]})
    progress = StreamProgress(None, start=None, lookback_seconds=10**9)

    assert list(router(BuildJobPartitionRouter, crawl, progress).stream_slices()) == []
    assert "jobs w1" not in crawl.asked


def test_pipeline_configs_are_read_only_for_pipelines_no_earlier_sync_processed() -> None:
    state = {"server_time": "2026-11-02T00:00:00Z", "feeds": {"gh/acme": {"done": [[None, "2026-11-01T00:00:00Z"]], "pending_since": "2026-11-01T00:00:00Z"}}}
    crawl = FakeCrawl(pipelines=[pipeline("p3", "2026-11-03T00:00:00Z"), pipeline("p1", "2026-11-01T00:00:00Z")])
    progress = StreamProgress(state, start=None, lookback_seconds=86400)
    slices = list(router(PipelineConfigPartitionRouter, crawl, progress).stream_slices())

    assert [s.partition["pipeline_id"] for s in slices] == ["p3"]
    assert slices[0].extra_fields["project_slug"] == "gh/acme/api"


def test_project_router_slices_each_readable_project_once_with_its_settings_path() -> None:
    crawl = FakeCrawl(projects=["gh/acme/api", "gh/acme/secret", "circleci/o-1/p-1"], readable={"gh/acme/api", "circleci/o-1/p-1"})
    slices = list(router(ProjectPartitionRouter, crawl).stream_slices())

    assert [s.partition for s in slices] == [
        {"project_slug": "gh/acme/api", "settings_project": "github/acme/api"},
        {"project_slug": "circleci/o-1/p-1", "settings_project": "circleci/o-1/p-1"},
    ]


def test_context_router_slices_every_context_of_every_organisation() -> None:
    crawl = FakeCrawl(contexts={"gh/acme": [{"id": "c1"}, {"id": "c2"}], "gh/beta": [{"id": "c3"}]})
    slices = list(router(ContextPartitionRouter, crawl).stream_slices())

    assert [(s.partition["context_id"], s.partition["org_slug"]) for s in slices] == [("c1", "gh/acme"), ("c2", "gh/acme"), ("c3", "gh/beta")]
