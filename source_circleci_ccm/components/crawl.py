"""The walk over CircleCI activity that every activity stream shares: organisations, feeds of pipelines,
their workflows and jobs.

Each list is fetched once per sync (the session shares answers between streams) and the per-pipeline
and per-workflow reads fan out over a worker pool, so a stream three levels down does not wait for
its ancestors one request at a time.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, TypeVar

import orjson
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_circleci_ccm.components.progress import parse_time
from source_circleci_ccm.components.skips import SkipReporter
from source_circleci_ccm.components.slugs import settings_project_path, v1_project_path
from source_circleci_ccm.config import org_slug_of_project

TERMINAL_WORKFLOW_STATUSES = frozenset({"success", "failed", "error", "canceled", "not_run", "unauthorized"})
# A pipeline in one of these states may still get workflows.
UNSETTLED_PIPELINE_STATES = frozenset({"setup-pending", "setup", "pending"})

T = TypeVar("T")
R = TypeVar("R")


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
    org_slug_param: str  # the `org-slug` query parameter, empty for a project feed


def is_terminal(workflow: Mapping[str, Any]) -> bool:
    return workflow.get("status") in TERMINAL_WORKFLOW_STATUSES


def has_unfinished_work(pipeline: Mapping[str, Any], workflows: Optional[list[dict[str, Any]]]) -> bool:
    if workflows is None:  # unreadable (restricted or aged out): nothing will change that we could see
        return False
    if not workflows:
        return pipeline.get("state") in UNSETTLED_PIPELINE_STATES
    return not all(is_terminal(workflow) for workflow in workflows)


def next_page_token(body: Any, seen_tokens: set[str], stop_below: Optional[float] = None) -> Optional[str]:
    """The token of the next page, or None: no token, a token already followed (no loops), or
    (newest-first lists) the page already reaches below `stop_below`."""
    if not isinstance(body, Mapping):
        return None
    token = body.get("next_page_token")
    if not token or not isinstance(token, str) or token in seen_tokens:
        return None
    if stop_below is not None:
        items = body.get("items") or []
        oldest = parse_time(items[-1].get("created_at")) if items and isinstance(items[-1], Mapping) else None
        if oldest is not None and oldest < stop_below:
            return None
    return token


def page_items(body: Any) -> Iterator[dict[str, Any]]:
    """The objects in a page's `items` list; nothing when `items` is missing or not a list."""
    items = body.get("items") if isinstance(body, Mapping) else None
    return (item for item in items if isinstance(item, dict)) if isinstance(items, list) else iter(())


class CircleCIApi:
    """JSON GETs sent through the manifest's requester, so they get the same auth, retries and error handling
    as every stream. Each answer is parsed once for the whole crawl (several routers walk the same pages);
    callers treat the parsed bodies as read-only."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester
        self._answers: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, Any]] = {}

    def get(self, path: str, params: Optional[Mapping[str, str]] = None) -> Any:
        """The parsed body, or None when CircleCI answered 400/403/404 (the session has already warned)."""
        return self.fetch(path, params)[1]

    def fetch(self, path: str, params: Optional[Mapping[str, str]] = None) -> tuple[int, Any]:
        """(HTTP status, parsed body or None)."""
        key = (path, tuple(sorted((params or {}).items())))
        answer = self._answers.get(key)
        if answer is None:
            # Relative to url_base (…/api): a leading slash would make urljoin drop the /api prefix.
            response = self._requester.send_request(path=path.lstrip("/"), request_params=dict(params or {}))
            if response is None:
                return 0, None
            answer = (response.status_code, orjson.loads(response.content) if response.ok else None)
            self._answers[key] = answer
        return answer

    def items(self, path: str, params: Optional[Mapping[str, str]] = None, stop_below: Optional[float] = None) -> "Listing":
        """Every item of a paginated list, following `next_page_token`."""
        return self.rest_of(path, params, self.get(path, params), stop_below)

    def rest_of(
        self, path: str, params: Optional[Mapping[str, str]], first: Any, stop_below: Optional[float] = None
    ) -> "Listing":
        """The items of a list whose first page is `first`, and of the pages after it."""
        listing, seen, body = Listing(page_items(first)), set(), first
        while (token := next_page_token(body, seen, stop_below)) is not None:
            seen.add(token)
            body = self.get(path, {**dict(params or {}), "page-token": token})
            if body is None:  # CircleCI rejected the page token (the session has warned)
                listing.complete = False
                break
            listing.extend(page_items(body))
        return listing


class Listing(list):  # type: ignore[type-arg]
    """The items of a paginated list. `complete` is False when CircleCI rejected a page token part-way: the
    items read are kept, and what was not read must not be counted done."""

    complete = True


class ActivityCrawl:
    def __init__(self, api: CircleCIApi, config: Mapping[str, Any], workers: int, skips: SkipReporter) -> None:
        self._api = api
        self._skips = skips
        self._config = config
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="circleci-fanout")
        self._lock = threading.Lock()
        self._organizations: Optional[list[Organization]] = None
        self._restricted_projects: set[str] = set()
        self._projects_lock = threading.Lock()
        self._projects: Optional[list[str]] = None

    # --- organisations and feeds ----------------------------------------------------------------------
    def collaborations(self) -> list[dict[str, Any]]:
        """The token's organisations (the crawl reads their slug, id and name; the stream normalises vcs_type)."""
        body = self._api.get("/v2/me/collaborations")
        return [item for item in body or [] if isinstance(item, dict)]

    def organizations(self) -> list[Organization]:
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
        unknown = [slug for slug in wanted if slug not in visible]
        if unknown and self._config.get("org_slugs") and any(s in self._config["org_slugs"] for s in unknown):
            known = ", ".join(sorted(s for s in visible if s)) or "none"
            raise AirbyteTracedException(
                message=(
                    f"org_slugs names organisations the token cannot see: {', '.join(unknown)}. "
                    f"Organisations visible to this token: {known}. Fix the slug or add the token's account to the organisation."
                ),
                failure_type=FailureType.config_error,
            )
        return [
            Organization(slug=slug, id=visible.get(slug, {}).get("id"), name=visible.get(slug, {}).get("name"))
            for slug in wanted
        ]

    def feeds(self) -> list[Feed]:
        projects = self._config.get("project_slugs") or []
        if projects:
            return [
                Feed(key=slug, org_slug=org_slug_of_project(slug), path=f"/v2/project/{slug}/pipeline", org_slug_param="")
                for slug in projects
            ]
        return [Feed(key=org.slug, org_slug=org.slug, path="/v2/pipeline", org_slug_param=org.slug) for org in self.organizations()]

    # --- activity ---------------------------------------------------------------------------------------
    def pipelines(self, feed: Feed, stop_below: Optional[float]) -> Listing:
        params = {"org-slug": feed.org_slug_param} if feed.org_slug_param else {}
        pipelines = self._api.items(feed.path, params, stop_below=stop_below)
        self._skips.note_pipelines(pipelines)
        return pipelines

    def workflows(self, pipeline: Mapping[str, Any]) -> Optional[Listing]:
        """The pipeline's workflows, or None when unreadable (aged out, or its project is restricted)."""
        path = f"/v2/pipeline/{pipeline['id']}/workflow"
        return self._rest_of_list(path, self._pipeline_get(pipeline, path))

    def config(self, pipeline: Mapping[str, Any]) -> Optional[dict[str, Any]]:
        body = self._pipeline_get(pipeline, f"/v2/pipeline/{pipeline['id']}/config")
        return body if isinstance(body, dict) else None

    def _pipeline_get(self, pipeline: Mapping[str, Any], path: str) -> Any:
        if self.is_restricted(pipeline):
            return None
        status, body = self._api.fetch(path)
        if status == 403 and pipeline.get("project_slug"):
            with self._lock:
                self._restricted_projects.add(pipeline["project_slug"])
        return body

    def is_restricted(self, pipeline: Mapping[str, Any]) -> bool:
        """Its project already answered 403 in this sync: every other pipeline of it would too, so none is asked."""
        return pipeline.get("project_slug") in self._restricted_projects

    def jobs(self, workflow_id: str) -> Optional[Listing]:
        return self._readable_list(f"/v2/workflow/{workflow_id}/job")

    def _readable_list(self, path: str) -> Optional[Listing]:
        return self._rest_of_list(path, self._api.get(path))

    def _rest_of_list(self, path: str, first: Any) -> Optional[Listing]:
        """All items of a list whose first page is `first` (None: unreadable)."""
        return None if first is None else self._api.rest_of(path, None, first)

    # --- projects and contexts (full-refresh evidence) ----------------------------------------------------
    def projects(self) -> list[str]:
        """Distinct project slugs: those configured in `project_slugs`, then those of every pipeline the feeds
        list (newest first, from `start_date` on). The pages are the ones the pipelines stream reads, so
        with it selected they cost nothing more."""
        with self._projects_lock:
            if self._projects is None:
                slugs = dict.fromkeys(self._config.get("project_slugs") or [])
                start = parse_time(self._config.get("start_date"))
                for feed in self.feeds():
                    for pipeline in self.pipelines(feed, start):
                        slug = pipeline.get("project_slug")
                        if slug and (start is None or (parse_time(pipeline.get("created_at")) or 0.0) >= start):
                            slugs.setdefault(slug)
                self._projects = list(slugs)
            return self._projects

    def project(self, project_slug: str) -> Optional[dict[str, Any]]:
        """`GET /v2/project/{slug}`, or None when the token cannot read it (the session has warned)."""
        body = self._api.get(f"/v2/project/{project_slug}")
        return body if isinstance(body, dict) else None

    def contexts(self, org: Organization) -> list[dict[str, Any]]:
        """The organisation's contexts: the `/v2/context?owner-id=` pages the contexts stream reads."""
        return self._api.items("/v2/context", {"owner-id": org.id}) if org.id else []

    # --- what security_controls evaluates: the same URLs the evidence streams read ----------------------
    def job_steps(self, project_slug: str, job_number: int) -> Optional[list[dict[str, Any]]]:
        body = self._api.get(f"/v1.1/project/{v1_project_path(project_slug)}/{job_number}")
        steps = body.get("steps") if isinstance(body, dict) else None
        return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else None

    def project_settings(self, project_slug: str) -> Optional[dict[str, Any]]:
        body = self._api.get(f"/v2/project/{settings_project_path(project_slug)}/settings")
        return body if isinstance(body, dict) else None

    def context_env_vars(self, context_id: str) -> list[dict[str, Any]]:
        return self._api.items(f"/v2/context/{context_id}/environment-variable")

    def context_restrictions(self, context_id: str) -> list[dict[str, Any]]:
        return self._api.items(f"/v2/context/{context_id}/restrictions")

    def fan_out(self, fetch: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """(item, fetch(item)) in the order of `items`, fetched concurrently on the sync's worker pool."""
        items = list(items)
        return zip(items, self._pool.map(fetch, items))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

