"""The walk over CircleCI activity that every activity stream takes its records from.

The crawl lists each feed's pipelines newest first (every feed side by side), and for each pipeline some
selected stream wants, fetches once what those streams need (workflows, jobs, config, job details and steps,
the project) on a pool of `num_workers` threads. It hands that `PipelineWork` to each stream that wants it,
in feed order, and lets it go once every one of them has read it. At most `window` pipelines' answers are
held at once: when the window is full the crawl waits for the slowest stream, so memory does not grow with
history. Nothing is kept for the rest of the sync but what is small (organisations, projects, contexts).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_circleci_ccm.components import skips
from source_circleci_ccm.components.client import CircleCIClient
from source_circleci_ccm.components.progress import StreamProgress, Unit, parse_time
from source_circleci_ccm.components.skips import Subject
from source_circleci_ccm.components.slugs import settings_project_path, v1_project_path
from source_circleci_ccm.config import org_slug_of_project

TERMINAL_WORKFLOW_STATUSES = frozenset({"success", "failed", "error", "canceled", "not_run", "unauthorized"})
# A pipeline in one of these states may still get workflows.
UNSETTLED_PIPELINE_STATES = frozenset({"setup-pending", "setup", "pending"})
DEFAULT_WINDOW = 64  # pipelines whose answers may be held at once, whatever the history's size

# What a stream may need of a pipeline, beyond the pipeline itself.
WORKFLOWS, JOBS, CONFIG, JOB_DETAILS, JOB_STEPS, PROJECT = "workflows", "jobs", "config", "job_details", "job_steps", "project"
JOB_TESTS, JOB_ARTIFACTS = "job_tests", "job_artifacts"  # every page of a build job's test metadata / artifact list


@dataclass(frozen=True)
class Organization:
    slug: str
    id: Optional[str]
    name: Optional[str]


@dataclass(frozen=True)
class Feed:
    """Where pipelines are listed, newest first: an organisation, or one project when `project_slugs` is set."""

    key: str
    org_slug: str
    path: str
    params: tuple[tuple[str, str], ...]
    subject: Subject


def is_terminal(workflow: Mapping[str, Any]) -> bool:
    return workflow.get("status") in TERMINAL_WORKFLOW_STATUSES


def has_unfinished_work(pipeline: Mapping[str, Any], workflows: Optional[list[dict[str, Any]]]) -> bool:
    if workflows is None:  # unreadable (restricted or aged out): nothing will change that we could see
        return False
    if not workflows:
        return pipeline.get("state") in UNSETTLED_PIPELINE_STATES
    return not all(is_terminal(workflow) for workflow in workflows)


def created_at(pipeline: Mapping[str, Any]) -> float:
    return parse_time(pipeline.get("created_at")) or 0.0


@dataclass(eq=False)
class PipelineWork:
    """One pipeline's answers, fetched once for every stream that takes them."""

    feed: Feed
    pipeline: dict[str, Any]
    is_new: dict[str, bool]  # per taking stream: the pipeline was never fully processed by it
    workflows: Optional[list[dict[str, Any]]] = None  # None when unreadable
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # workflow id -> jobs (terminal workflows)
    config: Optional[dict[str, Any]] = None
    job_details: dict[str, Any] = field(default_factory=dict)  # job id -> GET /v2/project/{slug}/job/{number}
    job_steps: dict[str, Any] = field(default_factory=dict)  # job id -> v1.1 steps
    job_tests: dict[str, Optional[list[dict[str, Any]]]] = field(default_factory=dict)  # job id -> tests (None: unreadable)
    job_artifacts: dict[str, Optional[list[dict[str, Any]]]] = field(default_factory=dict)  # job id -> artifacts
    project: Optional[dict[str, Any]] = None
    lists_complete: bool = True  # False when a workflow or job list was cut by a rejected page token
    holders: int = 0
    release_slot: Callable[[], None] = lambda: None

    @property
    def project_slug(self) -> Optional[str]:
        return self.pipeline.get("project_slug")

    def build_jobs(self, workflows: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(workflow, job) for every build job with a number of these workflows (approval jobs have none)."""
        for workflow in workflows:
            for job in self.jobs.get(workflow["id"], ()):
                if job.get("type") != "approval" and job.get("job_number") is not None:
                    yield workflow, job

    def job_project(self, workflow: Mapping[str, Any], job: Mapping[str, Any]) -> Optional[str]:
        return job.get("project_slug") or workflow.get("project_slug") or self.project_slug

    def release(self) -> None:
        """One taking stream is done with it; the last one frees its place in the window."""
        self.holders -= 1  # only ever called under the crawl's window lock (see ActivityCrawl._release)


class Consumer:
    """An activity stream's side of the crawl: which pipelines it wants, what it needs fetched for them,
    which workflows it takes, and its inbox of work in feed order. The stream's cursor owns its progress."""

    def __init__(
        self,
        name: str,
        progress: StreamProgress,
        needs: frozenset[str],
        revisits: bool,
        plan: Optional[Callable[[PipelineWork], Any]] = None,
        whole_pipeline: bool = False,
    ) -> None:
        self.name = name
        self.progress = progress
        self.needs = needs
        self.revisits = revisits  # it looks again at pipelines that were unfinished (workflows may finish)
        self.whole_pipeline = whole_pipeline  # it judges a pipeline on all its finished workflows once one changed
        # Decisions that depend on feed order (the first pipeline naming a user, the newest one on the default
        # branch): taken when the work is handed over, in feed order, and read with it.
        self.plan = plan or (lambda work: None)
        self.inbox: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self.attached = True

    def wants(self, feed: Feed, pipeline: Mapping[str, Any]) -> bool:
        when = created_at(pipeline)
        return self.progress.is_new(feed.key, when) or (self.revisits and self.progress.is_revisited(feed.key, when))

    def changed_workflows(self, work: PipelineWork) -> list[dict[str, Any]]:
        """The pipeline's workflows this stream has not emitted as they are now: all of a new pipeline, else
        those created (re-runs) or finished since the last sync."""
        if work.is_new.get(self.name):
            return list(work.workflows or [])
        return [w for w in work.workflows or [] if self.progress.changed_since_last_sync(w.get("created_at"), w.get("stopped_at") if is_terminal(w) else None)]

    def takes_config(self, work: PipelineWork) -> bool:
        """A configuration never changes: read for a new pipeline, or one judged again now that it ran."""
        if CONFIG not in self.needs:
            return False
        return bool(work.is_new.get(self.name)) or (self.revisits and bool(self.changed_workflows(work)))

    def terminal_workflows_taken(self, work: PipelineWork) -> list[dict[str, Any]]:
        """Workflows whose jobs this stream reads: those that reached a terminal state since the last sync."""
        if JOBS not in self.needs:
            return []
        if self.whole_pipeline:
            changed = work.is_new.get(self.name) or bool(self.changed_workflows(work))
            return [w for w in work.workflows or [] if is_terminal(w)] if changed else []
        return [w for w in self.changed_workflows(work) if is_terminal(w)]


class Delivered:
    """A stream's inbox item: work, the stream's plan for it, and the unit of its progress it counts against."""

    __slots__ = ("work", "plan", "unit")

    def __init__(self, work: PipelineWork, plan: Any, unit: Unit) -> None:
        self.work = work
        self.plan = plan
        self.unit = unit


class CrawlFailed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


END = object()


class ActivityCrawl:
    def __init__(
        self,
        client: CircleCIClient,
        config: Mapping[str, Any],
        consumers: list[Consumer],
        *,
        discover_projects: bool,
        workers: int,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self._client = client
        self._config = config
        self._consumers = consumers
        self._discover_projects = discover_projects
        self._start = parse_time(config.get("start_date"))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="circleci-fanout")
        self.window = window
        self._window = threading.Condition(threading.RLock())
        self._held = 0
        self.peak_held = 0  # the most pipelines' answers held at once in this sync (bounded by the window)
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.finished = False
        self._restricted_projects: set[str] = set()
        self._projects = _GrowingList(config.get("project_slugs") or [])
        self._organizations: Optional[list[Organization]] = None

    # --- organisations and feeds ----------------------------------------------------------------------
    def collaborations(self) -> list[dict[str, Any]]:
        body = self._client.get("/v2/me/collaborations", subject=Subject("list", "of the token's organisations"), keep=True)
        return [item for item in body or [] if isinstance(item, dict)] if isinstance(body, list) else []

    def organizations(self) -> list[Organization]:
        """Those in `org_slugs` (and of `project_slugs`), else every organisation the token's account belongs to."""
        with self._lock:
            if self._organizations is None:
                self._organizations = self._resolve_organizations()
            return self._organizations

    def _resolve_organizations(self) -> list[Organization]:
        visible = {item.get("slug"): item for item in self.collaborations()}
        wanted = list(self._config.get("org_slugs") or [])
        for project_slug in self._config.get("project_slugs") or []:
            org = org_slug_of_project(project_slug)
            if org not in wanted:
                wanted.append(org)
        if not wanted:
            wanted = [slug for slug in visible if slug]
        unknown = [slug for slug in wanted if slug not in visible and slug in (self._config.get("org_slugs") or [])]
        if unknown:
            known = ", ".join(sorted(s for s in visible if s)) or "none"
            raise AirbyteTracedException(
                message=(
                    f"org_slugs names organisations the token cannot see: {', '.join(unknown)}. "
                    f"Organisations visible to this token: {known}. Fix the slug or add the token's account to the organisation."
                ),
                failure_type=FailureType.config_error,
            )
        return [Organization(slug=slug, id=visible.get(slug, {}).get("id"), name=visible.get(slug, {}).get("name")) for slug in wanted]

    def feeds(self) -> list[Feed]:
        projects = self._config.get("project_slugs") or []
        if projects:
            return [
                Feed(key=slug, org_slug=org_slug_of_project(slug), path=f"/v2/project/{slug}/pipeline", params=(), subject=skips.project(slug))
                for slug in projects
            ]
        return [
            Feed(
                key=org.slug,
                org_slug=org.slug,
                path="/v2/pipeline",
                params=(("org-slug", org.slug),),
                subject=Subject("organisation", org.slug, reasons=((404, "CircleCI does not know it or the token cannot see it"),)),
            )
            for org in self.organizations()
        ]

    def contexts(self, org: Organization) -> list[dict[str, Any]]:
        """The organisation's contexts (`/v2/context?owner-id=`), read once a sync."""
        if not org.id:
            return []
        return self._client.kept_items("/v2/context", {"owner-id": org.id}, subject=Subject("contexts of organisation", org.slug))

    def project(self, slug: str) -> Optional[dict[str, Any]]:
        """`GET /v2/project/{slug}`, read once a sync; None when the token cannot read it."""
        body = self._client.get(f"/v2/project/{slug}", subject=skips.project(slug), keep=True)
        return body if isinstance(body, dict) else None

    def settings(self, project_slug: str) -> Any:
        """`GET /v2/project/{provider}/{org}/{repo}/settings`, read once a sync; None when unavailable."""
        path = settings_project_path(project_slug)
        return self._client.get(f"/v2/project/{path}/settings", subject=skips.project_settings(path), keep=True)

    def context_items(self, context_id: str, endpoint: str) -> list[dict[str, Any]]:
        """A context's `environment-variable` names or `restrictions`, read once a sync."""
        return self._client.kept_items(f"/v2/context/{context_id}/{endpoint}", subject=Subject("context", context_id))

    def projects(self) -> Iterator[str]:
        """Distinct project slugs: those configured in `project_slugs`, then those of every pipeline the feeds
        list from `start_date` on, as the crawl meets them."""
        self.start()
        return iter(self._projects)

    # --- running ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start listing every feed side by side (once; the first stream to read calls it)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="circleci-crawl", daemon=True).start()

    def _run(self) -> None:
        try:
            feeds = self.feeds()
            threads = [threading.Thread(target=self._list_feed_safely, args=(feed,), name=f"circleci-feed-{i}", daemon=True) for i, feed in enumerate(feeds)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if self._failure is None:
                for consumer in self._consumers:
                    consumer.progress.all_listed()
        except BaseException as error:  # noqa: BLE001 - handed to every stream, which raises it
            self._fail(error)
        finally:
            self._projects.close()
            for consumer in self._consumers:
                consumer.inbox.put(CrawlFailed(self._failure) if self._failure is not None else END)
            self.finished = True

    _failure: Optional[BaseException] = None

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = error
            self._stopped = True

    def _list_feed_safely(self, feed: Feed) -> None:
        try:
            self._list_feed(feed)
        except BaseException as error:  # noqa: BLE001
            self._fail(error)

    def _list_feed(self, feed: Feed) -> None:
        floors = [consumer.progress.floor(feed.key) for consumer in self._consumers]
        if self._discover_projects:
            floors.append(self._start if self._start is not None else float("-inf"))
        floor = min(floors, default=float("-inf"))
        listing = self._client.items(feed.path, dict(feed.params), subject=feed.subject, stop_below=None if floor == float("-inf") else floor)
        in_flight: deque[Future[PipelineWork]] = deque()
        oldest = float("inf")
        for pipeline in listing:
            if self._stopped:
                return
            oldest = min(oldest, created_at(pipeline))
            self._note_project(pipeline)
            is_new = {c.name: c.progress.is_new(feed.key, created_at(pipeline)) for c in self._consumers if c.attached and c.wants(feed, pipeline)}
            if not is_new:
                continue
            self._take_window_slot(in_flight)
            work = PipelineWork(feed=feed, pipeline=pipeline, is_new=is_new)
            in_flight.append(self._pool.submit(self._fetch, work))
        while in_flight:
            self._deliver(in_flight.popleft().result())
        for consumer in self._consumers:
            consumer.progress.feed_listed(feed.key, None if listing.complete else oldest)

    def _note_project(self, pipeline: Mapping[str, Any]) -> None:
        slug = pipeline.get("project_slug")
        if slug and self._discover_projects and (self._start is None or created_at(pipeline) >= self._start):
            self._projects.add(slug)

    # --- the window ---------------------------------------------------------------------------------------
    def _take_window_slot(self, in_flight: deque[Future[PipelineWork]]) -> None:
        """Wait for room in the window, handing this feed's finished work on meanwhile (streams free room)."""
        while True:
            with self._window:
                if self._held < self.window:
                    self._held += 1
                    self.peak_held = max(self.peak_held, self._held)
                    return
                if not in_flight:
                    self._window.wait(timeout=0.5)
                    if self._stopped:
                        raise _Stopped()
                    continue
            self._deliver(in_flight.popleft().result())

    def _release(self, work: PipelineWork) -> None:
        with self._window:  # re-entrant: a Condition over an RLock
            work.release()
            if work.holders == 0:
                self._held -= 1
                self._window.notify_all()

    def _deliver(self, work: PipelineWork) -> None:
        """Hand the work to each stream that wants it, in feed order, with the unit it counts against."""
        unfinished = has_unfinished_work(work.pipeline, work.workflows)
        with self._window:  # against `detach`: a stream that stopped reading gets nothing more
            takers = [c for c in self._consumers if c.name in work.is_new and c.attached]
            work.holders = len(takers)
            work.release_slot = lambda: self._release(work)
            if not takers:
                self._held -= 1
                self._window.notify_all()
                return
            for consumer in takers:
                unit = consumer.progress.open_unit(
                    work.feed.key,
                    created_at(work.pipeline),
                    pending=consumer.revisits and unfinished,
                    countable=work.lists_complete or not consumer.revisits,
                )
                consumer.inbox.put(Delivered(work, consumer.plan(work), unit))

    def detach(self, consumer: Consumer) -> None:
        """A stream that stopped reading (it failed, or the sync is ending): its work is let go, now and later."""
        with self._window:
            consumer.attached = False
            held = []
            while True:
                try:
                    item = consumer.inbox.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, Delivered):
                    held.append(item.work)
        for work in held:
            self._release(work)

    # --- fetching one pipeline's answers (on the pool) -----------------------------------------------------
    def _fetch(self, work: PipelineWork) -> PipelineWork:
        takers = [c for c in self._consumers if c.name in work.is_new]
        needs = frozenset().union(*(c.needs for c in takers))
        pipeline, slug = work.pipeline, work.project_slug
        if PROJECT in needs and slug:
            work.project = self.project(slug)
        if needs & {WORKFLOWS, JOBS} and not self._is_restricted(slug):
            work.workflows = self._read_list(work, f"/v2/pipeline/{pipeline['id']}/workflow", skips.pipeline(pipeline["id"], slug))
        if any(c.takes_config(work) for c in takers) and not self._is_restricted(slug):
            work.config = self._client.get(f"/v2/pipeline/{pipeline['id']}/config", subject=skips.pipeline_config(pipeline["id"], slug))
        if work.workflows is None or JOBS not in needs:
            return work
        workflows_with_jobs = {w["id"]: w for c in takers for w in c.terminal_workflows_taken(work)}
        for workflow_id in workflows_with_jobs:
            jobs = self._read_list(work, f"/v2/workflow/{workflow_id}/job", Subject("workflow", workflow_id))
            if jobs is not None:
                work.jobs[workflow_id] = jobs
        for need, answers, fetch in (
            (JOB_DETAILS, work.job_details, self._job_details),
            (JOB_STEPS, work.job_steps, self._job_steps),
            (JOB_TESTS, work.job_tests, lambda project, number: self._job_list(project, number, JOB_TESTS)),
            (JOB_ARTIFACTS, work.job_artifacts, lambda project, number: self._job_list(project, number, JOB_ARTIFACTS)),
        ):
            # Each build job once, whichever streams want it: those of the workflows they take.
            wanted = {j["id"]: (w, j) for c in takers if need in c.needs for w, j in work.build_jobs(c.terminal_workflows_taken(work))}
            for job_id, (workflow, job) in wanted.items():
                project = work.job_project(workflow, job)
                if project:
                    answers[job_id] = fetch(project, job["job_number"])
        return work

    def _job_details(self, project: str, number: Any) -> Any:
        return self._client.get(f"/v2/project/{project}/job/{number}", subject=skips.project(project))

    def _job_steps(self, project: str, number: Any) -> Optional[list[Any]]:
        body = self._client.get(f"/v1.1/project/{v1_project_path(project)}/{number}", subject=Subject("job steps of", f"{project}/{number}"))
        return body.get("steps") if isinstance(body, dict) else None

    def _job_list(self, project: str, number: Any, need: str) -> Optional[list[dict[str, Any]]]:
        """Every page of a build job's `tests` or `artifacts`; None when CircleCI does not serve it (404: aged
        out). An artifact's signed `url` grants access to it: it is dropped here, before anything holds it."""
        endpoint = "tests" if need == JOB_TESTS else "artifacts"
        subject = Subject(f"job {endpoint} of", f"{project}/{number}", quiet_statuses=frozenset({404}), counted_as=f"job {endpoint} unavailable")
        listing = self._client.items(f"/v2/project/{project}/{number}/{endpoint}", subject=subject)
        items = [item if need == JOB_TESTS else {k: v for k, v in item.items() if k != "url"} for item in listing]
        return items if listing.readable else None

    def _read_list(self, work: PipelineWork, path: str, subject: Subject) -> Optional[list[dict[str, Any]]]:
        listing = self._client.items(path, subject=subject)
        items = list(listing)
        if not listing.readable:
            if listing.status == 403 and work.project_slug:
                with self._lock:
                    self._restricted_projects.add(work.project_slug)
            return None
        work.lists_complete &= listing.complete
        return items

    def _is_restricted(self, project_slug: Optional[str]) -> bool:
        """Its project already answered 403 in this sync: every other pipeline of it would too, so none is asked."""
        return project_slug in self._restricted_projects

    def close(self) -> None:
        self._fail(_Stopped())
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Stopped(Exception):
    """The sync is ending (or failed elsewhere): the crawl stops listing."""


class _GrowingList:
    """Distinct items added as the crawl meets them; iterating waits for more until the crawl closes it."""

    def __init__(self, initial: list[str]) -> None:
        self._items = list(dict.fromkeys(initial))
        self._seen = set(self._items)
        self._closed = False
        self._changed = threading.Condition()

    def add(self, item: str) -> None:
        with self._changed:
            if item not in self._seen:
                self._seen.add(item)
                self._items.append(item)
                self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[str]:
        index = 0
        while True:
            with self._changed:
                while index >= len(self._items) and not self._closed:
                    self._changed.wait()
                if index >= len(self._items):
                    return
                item = self._items[index]
            index += 1
            yield item
