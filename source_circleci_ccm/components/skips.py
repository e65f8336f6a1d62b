"""Warnings for what a sync skips: a restricted project, an aged-out pipeline, a stale page token.

One unreadable object never fails a sync. The client reports each 400/403/404 here with the object it
asked about (`Subject`), so the warning names it and says why, once, and the sync's summary counts it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Optional

LOGGER = logging.getLogger("airbyte")

MEMBERSHIP_403 = (
    "CircleCI answered 403: the token's account is not a member of this project. Add it to the project's team in "
    "CircleCI (or to the organisation) to collect its evidence"
)
MISSING_404 = (
    "CircleCI answered 404: it does not exist or the token's account cannot see it. Add the account to the "
    "project's team in CircleCI if it should be visible"
)
AGED_OUT_404 = "CircleCI answered 404: pipelines older than about 90 days no longer serve their workflows or configuration"
EXPERIMENTAL_SETTINGS = (
    "the settings endpoint is experimental and this CircleCI answered {status}; the project's other evidence is still read"
)


@dataclass(frozen=True)
class Subject:
    """What a request asked about: named in its skip warning, counted by `kind` in the summary."""

    kind: str  # e.g. "project", "pipeline", "pipeline config", "project settings", "workflow", "user", "context"
    name: str
    # A reason per status where the generic one would mislead (an aged-out pipeline, an experimental endpoint).
    reasons: tuple[tuple[int, str], ...] = ()
    quiet_statuses: frozenset[int] = frozenset()  # routine answers: counted, not warned one by one
    counted_as: Optional[str] = None  # the summary's word for these skips, when not "<kind> answers <status>"
    project_slug: Optional[str] = None  # a 403 about it means its whole project is out of reach: name the project

    def reason(self, status: int) -> str:
        for code, text in self.reasons:
            if code == status:
                return text.format(status=status)
        return {403: MEMBERSHIP_403, 404: MISSING_404}.get(status, f"CircleCI answered {status}")

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def project(slug: str) -> Subject:
    return Subject("project", slug)


def pipeline(pipeline_id: str, project_slug: Optional[str]) -> Subject:
    """A pipeline's workflows: 404 once it aged out; 403 means its whole project is out of reach."""
    return Subject("pipeline", pipeline_id, reasons=((404, AGED_OUT_404),), project_slug=project_slug)


def pipeline_config(pipeline_id: str, project_slug: Optional[str]) -> Subject:
    return Subject(
        "pipeline config",
        pipeline_id,
        reasons=((404, AGED_OUT_404),),
        quiet_statuses=frozenset({404}),
        counted_as="pipeline configs unavailable",
        project_slug=project_slug,
    )


def project_settings(settings_path: str) -> Subject:
    return Subject("project settings of", settings_path, reasons=((403, EXPERIMENTAL_SETTINGS), (404, EXPERIMENTAL_SETTINGS)))


class SkipReporter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned: set[tuple[str, int]] = set()
        self.counts: Counter[str] = Counter()

    def skipped(self, subject: Subject, status: int, circleci_message: str = "") -> None:
        """A request about `subject` answered `status`: warn once per subject and status, count always."""
        if status == 403 and subject.project_slug:
            subject = project(subject.project_slug)
        quoted = f' ("{circleci_message[:200]}")' if circleci_message else ""
        kind = subject.counted_as or f"{subject.kind} answers {status}"
        self._note(kind, str(subject), status, subject.reason(status) + quoted, status in subject.quiet_statuses)

    def page_token_rejected(self, listing: str, status: int, circleci_message: str = "") -> None:
        quoted = f' ("{circleci_message[:200]}")' if circleci_message else ""
        why = f"CircleCI rejected the page token with {status}{quoted}; paging stopped there and the records read so far are kept"
        self._note("stale page token", f"the remaining pages of {listing}", status, why, quiet=False)

    def _note(self, kind: str, subject: str, status: int, why: str, quiet: bool) -> None:
        with self._lock:
            self.counts[kind] += 1
            if quiet or (subject, status) in self._warned:
                return
            self._warned.add((subject, status))
        LOGGER.warning(f"Skipped {subject}: {why}.")

    def summary(self) -> Optional[str]:
        if not self.counts:
            return None
        parts = ", ".join(f"{count} {kind}" for kind, count in sorted(self.counts.items()))
        return f"Skipped during this sync (each named in an earlier warning unless routine): {parts}."
