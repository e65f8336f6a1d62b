"""Settings and fault-injection knobs of the CircleCI API simulator."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Faults:
    """Fault injection. All off by default. Decided per (method, URL, attempt) from ``seed``."""

    error_5xx_rate: float = 0.0  # 500/502/503 with a JSON or HTML body
    html_error_rate: float = 0.0  # 5xx with an HTML page
    reset_rate: float = 0.0  # close the socket without a response
    slow_rate: float = 0.0  # sleep slow_seconds before answering
    slow_seconds: float = 5.0
    truncated_rate: float = 0.0  # 200, JSON body cut in half (Content-Length matches the bytes sent)
    non_json_rate: float = 0.0  # 200 with an <html> body
    throttle_rate: float = 0.0  # 429 {"message": "Rate limit exceeded."}
    retry_after_mode: str = "seconds"  # "seconds" | "none" | "reset-only"
    stale_page_token_status: int = 0  # 0 off; 400/404: every request with page-token answers it
    fail_first_attempt_only: bool = True  # a URL is faulted at most once, then answers normally
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> "Faults":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SimulatorSettings:
    seed: int = 7
    orgs: int = 2
    projects_per_org: int = 2
    pipelines_per_project: int = 15
    max_workflows_per_pipeline: int = 3  # 1..3 workflows a pipeline, mean ~2
    fanout_jobs: int = 25  # size of the matrix/fan-out workflow (jobs lists > 20 paginate)
    restricted_projects: Optional[int] = None  # total; None = one per org
    aged_out_fraction: float = 0.05
    running_fraction: float = 0.03
    errored_fraction: float = 0.01  # pipelines in state "errored" with no workflows
    contexts_first_org: int = 25  # > 20 so the context list paginates
    contexts_per_org: int = 6
    users: int = 8
    org_kinds: Optional[tuple] = None  # e.g. ("gh", "bb", "circleci"); None = derived from orgs
    page_size: int = 20
    latency_ms: float = 0.0
    rate_limit_rps: float = 0.0
    # How the quota comes back: "bucket" refills continuously (burst = one second's worth), "window" refills
    # all at once every `rate_limit_window_seconds`. What RateLimit-Reset says: "until-full" (seconds until the
    # quota is whole again), "until-next" (until the next request is allowed), "epoch" (that moment, epoch s).
    rate_limit_kind: str = "bucket"
    rate_limit_reset: str = "until-full"
    rate_limit_window_seconds: float = 5.0
    token: str = "sim-token-0123456789abcdef"
    collaborations_vcs_key: str = "vcs_type"  # or "vcs-type"
    faults: Faults = field(default_factory=Faults)
    anchor: Optional[float] = None  # epoch the generated history is dated back from (None: the start time)
    # Deployment and governance features (issue 12); see governance.FEATURE_ABSENT for how absence answers.
    deploy_orgs: Optional[tuple] = None  # indices of orgs with deploys; None = every org; others answer 403
    policy_orgs: Optional[tuple] = None  # indices of orgs whose plan has config policies; None = all but the last
    features_off: tuple = ()  # account-wide absent features: deploy, policy, groups, url_orb_allow_list,
    #                           schedules, webhooks, pipeline_definitions
    feature_absent_status: Optional[dict] = None  # e.g. {"deploy": 404}: answer an absent feature with this status

    @classmethod
    def preset(cls, name: str, **overrides) -> "SimulatorSettings":
        presets = {
            "tiny": dict(orgs=2, projects_per_org=2, pipelines_per_project=15, org_kinds=("gh", "circleci")),
            "small": dict(orgs=3, projects_per_org=3, pipelines_per_project=45, org_kinds=("gh", "bb", "circleci")),
            # The bench organisation: 2 orgs, 20 projects, ~2,000 pipelines. A history of that size spans
            # months, so only its newest ~1% are still running or on hold at any moment.
            "bench": dict(
                orgs=2,
                projects_per_org=10,
                pipelines_per_project=100,
                restricted_projects=2,
                running_fraction=0.01,
                org_kinds=("gh", "circleci"),
                users=20,
            ),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; use one of {sorted(presets)}")
        values = dict(presets[name])
        values.update(overrides)
        return cls(**values)
