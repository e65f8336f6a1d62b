"""Records of the `security_controls` stream: control results with their evidence, per pipeline and per project.

Pure functions over what the sync already fetched (config, workflows, jobs, steps, settings, contexts);
the router decides which pipelines to evaluate and the retriever feeds these functions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from source_circleci_ccm.components.crawl import is_terminal
from source_circleci_ccm.components.progress import format_time
from source_circleci_ccm.config import org_slug_of_project
from source_circleci_ccm.controls import (
    Catalogue,
    ControlResult,
    evaluate_config,
    evaluate_contexts,
    evaluate_project_settings,
    load_catalogue,
    load_rules_file,
)
from source_circleci_ccm.controls.governance import (
    evaluate_config_policies,
    evaluate_deployed_version,
    evaluate_sbom,
    evaluate_tests,
    evaluate_webhooks,
)
from source_circleci_ccm.controls.results import UNKNOWN

PIPELINE, PROJECT, DEPLOYMENT = "pipeline", "project", "deployment"


@dataclass
class PipelineEvidence:
    """What the sync knows of one pipeline."""

    pipeline: Mapping[str, Any]
    config: Optional[Mapping[str, Any]]  # GET /v2/pipeline/{id}/config, None when unreadable
    workflows: Optional[list[dict[str, Any]]]  # None when unreadable
    jobs: list[dict[str, Any]] = field(default_factory=list)  # jobs of its finished workflows, each with workflow_id
    steps: Optional[dict[int, list[dict[str, Any]]]] = None  # job_number -> v1.1 steps, when job_steps is selected
    tests: list[tuple[dict[str, Any], Optional[list[dict[str, Any]]]]] = field(default_factory=list)  # (build job, tests)
    artifacts: list[tuple[dict[str, Any], Optional[list[dict[str, Any]]]]] = field(default_factory=list)  # (build job, artifacts)


def pipeline_results(catalogue: Catalogue, evidence: PipelineEvidence) -> dict[str, ControlResult]:
    """The configuration's controls, then those judged on what ran (test metadata, artifacts)."""
    results = _evaluate(catalogue, evidence)
    finished = bool(evidence.workflows) and all(is_terminal(w) for w in evidence.workflows or [])
    results["tests_passed"] = evaluate_tests(catalogue, evidence.tests, finished)
    text = (evidence.config.get("compiled") or evidence.config.get("source")) if evidence.config else None
    results["sbom_generated"] = evaluate_sbom(catalogue, text, evidence.artifacts)
    return results


def pipeline_records(
    catalogue: Catalogue, evidence: PipelineEvidence, evaluated_at: str, results: Optional[dict[str, ControlResult]] = None
) -> list[dict[str, Any]]:
    results = results if results is not None else _evaluate(catalogue, evidence)
    workflow_ids = sorted({job["workflow_id"] for job in evidence.jobs if job.get("workflow_id")})
    return [
        _record(
            catalogue,
            result,
            scope=PIPELINE,
            project_slug=evidence.pipeline.get("project_slug"),
            pipeline_id=evidence.pipeline.get("id"),
            workflow_id=workflow_ids[0] if len(workflow_ids) == 1 else None,
            branch=(evidence.pipeline.get("vcs") or {}).get("branch"),
            evaluated_at=evaluated_at,
        )
        for result in results.values()
    ]


def project_rollup(pipeline_control_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The project's standing, taken from (the records of) its newest pipeline on the default branch."""
    rolled = []
    for record in pipeline_control_records:
        copy = {**record, "scope": PROJECT}
        copy["record_id"] = _record_id(PROJECT, record["project_slug"], record["control_id"])
        rolled.append(copy)
    return rolled


def unknown_rollup(catalogue: Catalogue, project_slug: str, reason: str, evaluated_at: str) -> list[dict[str, Any]]:
    """A project whose pipelines cannot be evaluated still gets a result for every control: `unknown`, with why."""
    return [
        _record(
            catalogue,
            ControlResult(control=control, status=UNKNOWN, reason=reason),
            scope=PROJECT,
            project_slug=project_slug,
            evaluated_at=evaluated_at,
        )
        for control in catalogue.pipeline_controls()
    ]


def project_level_records(
    catalogue: Catalogue,
    project_slug: str,
    settings: Optional[Mapping[str, Any]],
    contexts: list[dict[str, Any]],
    env_vars_by_context: Mapping[str, list[dict[str, Any]]],
    restrictions_by_context: Mapping[str, list[dict[str, Any]]],
    evaluated_at: str,
) -> list[dict[str, Any]]:
    results = {
        **evaluate_project_settings(settings or {}, catalogue),
        **evaluate_contexts(contexts, dict(env_vars_by_context), dict(restrictions_by_context), catalogue),
    }
    return [
        _record(catalogue, result, scope=PROJECT, project_slug=project_slug, evaluated_at=evaluated_at)
        for result in results.values()
    ]


def _evaluate(catalogue: Catalogue, evidence: PipelineEvidence) -> dict[str, ControlResult]:
    if evidence.config is None:
        return _all_unknown(
            catalogue,
            "the pipeline's configuration could not be read (project not visible to the token, or the pipeline is "
            "older than CircleCI keeps configurations)",
        )
    text = evidence.config.get("compiled") or evidence.config.get("source") or ""
    if not text.strip():
        errors = "; ".join(str(e.get("message")) for e in evidence.pipeline.get("errors") or [] if isinstance(e, Mapping))
        return _all_unknown(catalogue, f"the pipeline has no compiled configuration{': ' + errors if errors else ''}")
    # What ran is judged once every workflow has finished (a job behind a hold has not "failed to run");
    # until then the declared configuration stands, and the pipeline is evaluated again when it finishes.
    finished = bool(evidence.workflows) and all(is_terminal(w) for w in evidence.workflows or [])
    executed = evidence.jobs if finished else None
    return evaluate_config(text, catalogue, executed_jobs=executed, executed_steps=evidence.steps)


def _all_unknown(catalogue: Catalogue, reason: str) -> dict[str, ControlResult]:
    return {control: ControlResult(control=control, status=UNKNOWN, reason=reason) for control in catalogue.pipeline_controls()}


def _record_id(scope: str, subject: Optional[str], control: str) -> str:
    return f"{scope}:{subject}:{control}"


def _record(
    catalogue: Catalogue,
    result: ControlResult,
    *,
    scope: str,
    project_slug: Optional[str],
    evaluated_at: str,
    pipeline_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    branch: Optional[str] = None,
) -> dict[str, Any]:
    return {
        "record_id": _record_id(scope, pipeline_id if scope == PIPELINE else project_slug, result.control),
        "scope": scope,
        "project_slug": project_slug,
        "pipeline_id": pipeline_id,
        "workflow_id": workflow_id,
        "control_id": result.control,
        "status": result.status,
        "required": result.control in catalogue.required_controls,
        "reason": result.reason or None,
        "evidence": [_evidence(item) for item in result.evidence],
        "frameworks": catalogue.frameworks(result.control),
        "branch": branch,
        "evaluated_at": evaluated_at,
        "catalogue_version": catalogue.version,
    }


def deployment_record(catalogue: Catalogue, result: ControlResult, version_key: str, project_slug: Optional[str], pipeline_id: Optional[str], evaluated_at: str) -> dict[str, Any]:
    """One record per live component version (`version_key` = component/environment/version)."""
    record = _record(catalogue, result, scope=DEPLOYMENT, project_slug=project_slug, pipeline_id=pipeline_id, evaluated_at=evaluated_at)
    record["record_id"] = _record_id(DEPLOYMENT, version_key, result.control)
    return record


def _evidence(item: Mapping[str, Any]) -> dict[str, Any]:
    """Declared evidence as the engine gives it, plus `executed` when a run confirmed or contradicted it."""
    record = dict(item)
    if "execution" in item:
        record["executed"] = {
            "job_number": item.get("job_number"),
            "step": item.get("step"),
            "status": item.get("step_status") or item.get("job_status"),
            "outcome": item.get("execution"),
        }
    return record


class SecurityControls:
    """The security_controls stream's view of the crawl: which pipelines it evaluates and the records of each.

    A pipeline is evaluated when it is new, or when a workflow of it finished since the last sync (its
    execution evidence is now known). A project gets its project-level records when first met in a sync, and
    its roll-up from the newest evaluated pipeline on its default branch."""

    def __init__(self, catalogue: Optional[Catalogue], crawl: Any, server_time: Callable[[], Optional[float]], with_steps: bool) -> None:
        self._catalogue = catalogue  # None when the stream is not selected
        self.selected = catalogue is not None
        self.sources: Any = None  # the sync's streams (streams.SyncStreams): deploy, policy and webhook answers
        self._live: dict[str, dict[str, list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]] = {}
        self._live_lock = threading.Lock()
        self._crawl = crawl
        self._server_time = server_time
        self._with_steps = with_steps

    def planner(self, consumer: Any) -> Any:
        met: set[str] = set()
        rolled_up: set[str] = set()
        lock = threading.Lock()

        def plan(work: Any) -> tuple[bool, bool, bool]:
            """(project first met, evaluate the pipeline, roll the project up from it), in feed order."""
            slug = work.project_slug
            evaluate = bool(work.is_new.get(consumer.name)) or bool(consumer.changed_workflows(work))
            default_branch = ((work.project or {}).get("vcs_info") or {}).get("default_branch")
            on_default = bool(default_branch) and (work.pipeline.get("vcs") or {}).get("branch") == default_branch
            with lock:
                first = bool(slug) and slug not in met
                met.add(slug)
                rollup = evaluate and on_default and slug not in rolled_up
                if rollup:
                    rolled_up.add(slug)
            return first, evaluate, rollup

        return plan

    def records(self, consumer: Any, item: Any) -> Iterable[Mapping[str, Any]]:
        work = item.work
        first, evaluate, rollup = item.plan
        evaluated_at = format_time(self._server_time() or time.time()) or ""
        if first and work.project_slug:
            yield from self._project_records(work.project_slug, work.project is not None, evaluated_at)
        if not evaluate:
            return
        evidence = self._evidence(consumer, work)
        results = pipeline_results(self._catalogue, evidence)
        records = pipeline_records(self._catalogue, evidence, evaluated_at, results)
        yield from records
        if rollup:
            yield from project_rollup(records)
        yield from self._deployment_records(work, results, evaluated_at)

    def _deployment_records(self, work: Any, results: dict[str, ControlResult], evaluated_at: str) -> Iterable[Mapping[str, Any]]:
        """deployed_version_controlled for each live component version this pipeline deployed."""
        for version, component, environment in self._live_versions(work.feed.org_slug).get(work.pipeline.get("id"), ()):
            result = evaluate_deployed_version(self._catalogue, version, component, environment, results)
            key = f"{component.get('id')}/{environment.get('id')}/{version.get('name')}"
            yield deployment_record(self._catalogue, result, key, work.project_slug, work.pipeline.get("id"), evaluated_at)

    def _live_versions(self, org_slug: str) -> dict[str, list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]:
        """pipeline id -> the live versions it deployed in the organisation, from the deploy answers the
        deploy streams read (kept: each URL once a sync); built once per organisation."""
        with self._live_lock:
            if org_slug in self._live:
                return self._live[org_slug]
            by_pipeline: dict[str, list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]] = {}
            org = self._org(org_slug)
            if org and self.sources is not None:
                environments = self.sources.deploy_list(org, "environments") or []
                for component in self.sources.deploy_list(org, "components") or [] if environments else []:
                    for environment in environments:
                        for version in self.sources.component_versions(org, component.get("id"), environment.get("id")) or ():
                            if version.get("is_live") and version.get("pipeline_id"):
                                by_pipeline.setdefault(version["pipeline_id"], []).append((version, component, environment))
            self._live[org_slug] = by_pipeline
            return by_pipeline

    def _org(self, org_slug: str) -> Optional[dict[str, Any]]:
        for org in self._crawl.organizations():
            if org.slug == org_slug and org.id:
                return {"org_slug": org.slug, "org_id": org.id}
        return None

    def _evidence(self, consumer: Any, work: Any) -> PipelineEvidence:
        terminal = consumer.terminal_workflows_taken(work)
        jobs = [{**job, "workflow_id": workflow["id"]} for workflow in terminal for job in work.jobs.get(workflow["id"], ())]
        steps = None
        if self._with_steps:
            steps = {
                job["job_number"]: (work.job_steps.get(job["id"]) or [])
                for job in jobs
                if job.get("job_number") is not None and job.get("type") != "approval"
            }
        build_jobs = [job for workflow, job in work.build_jobs(terminal)]
        return PipelineEvidence(
            pipeline=work.pipeline,
            config=work.config,
            workflows=work.workflows,
            jobs=jobs,
            steps=steps,
            tests=[(job, work.job_tests.get(job["id"])) for job in build_jobs],
            artifacts=[(job, work.job_artifacts.get(job["id"])) for job in build_jobs],
        )

    def _project_records(self, project_slug: str, readable: bool, evaluated_at: str) -> Iterable[Mapping[str, Any]]:
        org_slug = org_slug_of_project(project_slug)
        contexts: list[dict[str, Any]] = []
        for org in self._crawl.organizations():
            if org.slug == org_slug:
                contexts = self._crawl.contexts(org)
        ids = [c["id"] for c in contexts if c.get("id")]
        env_vars = {context_id: self._crawl.context_items(context_id, "environment-variable") for context_id in ids}
        restrictions = {context_id: self._crawl.context_items(context_id, "restrictions") for context_id in ids}
        settings = self._crawl.settings(project_slug) if readable else None
        yield from project_level_records(self._catalogue, project_slug, settings, contexts, env_vars, restrictions, evaluated_at)
        governance = []
        org = self._org(org_slug)
        if org and self.sources is not None:
            governance.append(evaluate_config_policies(self._catalogue, org_slug, self.sources.policy_settings(org), self.sources.policies(org)))
        hooks = self.sources.webhooks(project_slug) if readable and self.sources is not None else None
        governance.append(evaluate_webhooks(self._catalogue, project_slug, hooks))
        for result in governance:
            yield _record(self._catalogue, result, scope=PROJECT, project_slug=project_slug, evaluated_at=evaluated_at)
        if not readable:
            reason = (
                f"the token's account cannot read project {project_slug}: add it to the project's team in CircleCI "
                "to evaluate its pipelines"
            )
            yield from unknown_rollup(self._catalogue, project_slug, reason, evaluated_at)


def catalogue_from_config(config: Mapping[str, Any]) -> Catalogue:
    """The packaged rule catalogue plus the user's `custom_rules` (YAML text) and `required_controls`."""
    custom = load_rules_file(config["custom_rules"]) if config.get("custom_rules") else None
    return load_catalogue(custom_rules=custom, required_controls=config.get("required_controls") or None)
