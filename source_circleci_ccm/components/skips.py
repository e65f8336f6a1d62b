"""Warnings for what a sync skips: a restricted project, an aged-out pipeline, a stale page token.

The manifest's error handler ignores 400/403/404 so one unreadable object never fails a sync; this
module is what turns each ignored answer into a warning that names the object and says why, once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from typing import Optional
from urllib.parse import parse_qs, unquote, urlencode, urlparse

import requests

from source_circleci_ccm.components.slugs import v2_project_slug

LOGGER = logging.getLogger("airbyte")

_RULES: list[tuple[re.Pattern[str], str, str]] = [
    # (path pattern, subject, why) — first match wins; {0} is the captured name
    (
        re.compile(r"/v2/project/(.+)/settings$"),
        "project settings of {0}",
        "the settings endpoint is experimental and this CircleCI answered {status}; the project's other evidence is still read",
    ),
    (
        re.compile(r"/v2/project/(.+?)/(?:pipeline|envvar|checkout-key|job/\d+)$"),
        "project {0}",
        "{cause}",
    ),
    (re.compile(r"/v2/project/(.+)$"), "project {0}", "{cause}"),
    (
        re.compile(r"/v2/pipeline/([^/]+)/(workflow|config)$"),
        "pipeline {0}",
        "{aged_out}",
    ),
    (re.compile(r"/v2/workflow/([^/]+)/job$"), "workflow {0}", "{cause}"),
    (re.compile(r"/v1\.1/project/(.+)$"), "job steps of {0}", "{cause}"),
    (re.compile(r"/v2/user/([^/]+)$"), "user {0}", "{cause}"),
    (re.compile(r"/v2/context/([^/]+)/.+$"), "context {0}", "{cause}"),
    (re.compile(r"/v2/pipeline$"), "organisation {org}", "CircleCI does not know it or the token cannot see it"),
]

_CAUSE = {
    403: "CircleCI answered 403: the token's account is not a member of this project. Add it to the project's "
    "team in CircleCI (or to the organisation) to collect its evidence",
    404: "CircleCI answered 404: it does not exist or the token's account cannot see it. Add the account to the "
    "project's team in CircleCI if it should be visible",
    400: "CircleCI answered 400",
}

# Pipelines older than about 90 days keep their list entry but lose workflows and config.
_AGED_OUT = "CircleCI answered 404: pipelines older than about 90 days no longer serve their workflows or configuration"
_RESTRICTED_PIPELINE = "CircleCI answered 403: the token's account is not a member of this pipeline's project"

_PIPELINE_PART = re.compile(r"/v2/pipeline/([^/]+)/")

# Skips that are routine and only counted, not warned one by one (a 404 there: an aged-out pipeline).
_QUIET = re.compile(r"/v2/pipeline/[^/]+/config$")


class SkipReporter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned: set[tuple[str, int]] = set()
        self._project_of_pipeline: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def note_pipelines(self, pipelines: list[dict]) -> None:
        """Remember each pipeline's project, so a 403 on its workflows is reported once for the project."""
        with self._lock:
            for pipeline in pipelines:
                if pipeline.get("id") and pipeline.get("project_slug"):
                    self._project_of_pipeline[pipeline["id"]] = pipeline["project_slug"]

    def report(self, response: requests.Response) -> None:
        url = urlparse(response.url)
        path = unquote(url.path)
        query = parse_qs(url.query)
        status = response.status_code
        message = _circleci_message(response)
        if "page-token" in query:
            # Name the list whole (`/v2/pipeline?org-slug=gh/acme`): two organisations' feeds share a path.
            rest = urlencode([(k, v) for k, values in query.items() if k != "page-token" for v in values], safe="/")
            listing = f"{path}?{rest}" if rest else path
            subject = f"the remaining pages of {listing}"
            why = (
                f"CircleCI rejected the page token with {status}{message}; paging stopped there and the records "
                "read so far are kept"
            )
            kind = "stale page token"
        else:
            subject, why, kind = _describe(path, query, status)
            why += message
            restricted = _PIPELINE_PART.search(path) if status == 403 else None
            if restricted and restricted.group(1) in self._project_of_pipeline:
                subject = f"project {self._project_of_pipeline[restricted.group(1)]}"
                why = _CAUSE[403] + message
        with self._lock:
            self.counts[kind] += 1
            if (status == 404 and _QUIET.search(path)) or (subject, status) in self._warned:
                return
            self._warned.add((subject, status))
        LOGGER.warning(f"Skipped {subject}: {why}.")

    def summary(self) -> Optional[str]:
        if not self.counts:
            return None
        parts = ", ".join(f"{count} {kind}" for kind, count in sorted(self.counts.items()))
        return f"Skipped during this sync (each named in an earlier warning unless routine): {parts}."


def _describe(path: str, query: dict[str, list[str]], status: int) -> tuple[str, str, str]:
    for pattern, subject_template, why_template in _RULES:
        match = pattern.search(path)
        if not match:
            continue
        name = _v2_spelling(match.group(1))
        org = query.get("org-slug", ["?"])[0]
        if why_template == "{aged_out}":
            why = _AGED_OUT if status == 404 else _RESTRICTED_PIPELINE
            kind = "aged-out pipeline answer" if status == 404 else "restricted pipeline answer"
            if match.group(2) == "config":
                kind = "pipeline configs unavailable"
        else:
            why = why_template.format(status=status, cause=_CAUSE.get(status, f"CircleCI answered {status}"))
            kind = f"{subject_template.split(' ')[0]} answers {status}"
        return subject_template.format(name, org=org), why, kind
    return path, _CAUSE.get(status, f"CircleCI answered {status}"), f"other answers {status}"


def _v2_spelling(name: str) -> str:
    """Settings and v1.1 paths spell the provider out (`github/acme/api`, `github/acme/api/42`); warnings use
    the `gh/acme/api` users see everywhere else (a job number, if any, stays at the end)."""
    parts = name.split("/")
    if parts[0] not in ("github", "bitbucket") or len(parts) < 3:
        return name
    return "/".join([v2_project_slug("/".join(parts[:3]))] + parts[3:])


def _circleci_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f' ("{str(message)[:200]}")' if message else ""
