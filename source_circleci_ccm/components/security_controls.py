"""Records of the `security_controls` stream: control results with their evidence, per pipeline and per project.

Pure functions over what the sync already fetched (config, workflows, jobs, steps, settings, contexts);
the router decides which pipelines to evaluate and the retriever feeds these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from source_circleci_ccm.controls import Catalogue, ControlResult, evaluate_config, evaluate_contexts, evaluate_project_settings
from source_circleci_ccm.controls.results import UNKNOWN

PIPELINE, PROJECT = "pipeline", "project"


@dataclass
class PipelineEvidence:
    """What the sync knows of one pipeline."""

    pipeline: Mapping[str, Any]
    config: Optional[Mapping[str, Any]]  # GET /v2/pipeline/{id}/config, None when unreadable
    workflows: Optional[list[dict[str, Any]]]  # None when unreadable
    jobs: list[dict[str, Any]] = field(default_factory=list)  # jobs of its finished workflows, each with workflow_id
    steps: Optional[dict[int, list[dict[str, Any]]]] = None  # job_number -> v1.1 steps, when job_steps is selected


def pipeline_records(catalogue: Catalogue, evidence: PipelineEvidence, evaluated_at: str) -> list[dict[str, Any]]:
    results = _evaluate(catalogue, evidence)
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
    executed = evidence.jobs if evidence.workflows and any(_finished(w) for w in evidence.workflows) else None
    return evaluate_config(text, catalogue, executed_jobs=executed, executed_steps=evidence.steps)


def _finished(workflow: Mapping[str, Any]) -> bool:
    return workflow.get("stopped_at") is not None


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
