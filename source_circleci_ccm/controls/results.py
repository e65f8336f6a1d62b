"""Result types shared by the evaluators."""
from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, NOT_APPLICABLE, UNKNOWN = "pass", "fail", "not_applicable", "unknown"
STATUSES = (PASS, FAIL, NOT_APPLICABLE, UNKNOWN)
MATCHED_MAX = 200


def trim(text: str | None, limit: int = MATCHED_MAX) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence(where: str, *, job: str | None = None, step: str | None = None, orb: str | None = None,
             rule_id: str | None = None, matched: str | None = None, **extra) -> dict:
    """One piece of evidence: where in the config (or run) and what matched."""
    item = {"where": where, "job": job, "step": step, "orb": orb, "rule_id": rule_id, "matched": trim(matched)}
    item.update(extra)
    return item


@dataclass
class ControlResult:
    control: str
    status: str
    evidence: list[dict] = field(default_factory=list)
    reason: str = ""
    title: str = ""
    frameworks: list[dict] = field(default_factory=list)
    catalogue_version: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_dict(self) -> dict:
        return {
            "control": self.control, "status": self.status, "evidence": list(self.evidence),
            "reason": self.reason, "title": self.title, "frameworks": list(self.frameworks),
            "catalogue_version": self.catalogue_version,
        }
