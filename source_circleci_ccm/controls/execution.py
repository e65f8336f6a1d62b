"""Check declared scans/tests against what really ran (workflow jobs and v1.1 steps)."""
from __future__ import annotations

from .catalogue import SCAN_CONTROLS
from .results import FAIL, PASS, ControlResult, evidence

CHECKED_CONTROLS = SCAN_CONTROLS + ("automated_tests",)
_OK_JOB = {"success", "fixed"}


def _action_failed(action: dict) -> bool:
    code = action.get("exit_code")
    return bool(action.get("failed")) or action.get("status") in ("failed", "timedout", "infrastructure_fail") \
        or (code is not None and code != 0)


def _step_for(steps: list[dict], name: str | None) -> dict | None:
    if not name:
        return None
    for step in steps or []:
        if isinstance(step, dict) and str(step.get("name", "")).strip() == name.strip():
            return step
    return None


def _check(item: dict, jobs_by_name: dict[str, dict], executed_steps: dict) -> tuple[bool, dict]:
    """Return (ran_and_passed, evidence about the execution) for one declared evidence item."""
    job_name = item.get("job")
    run = jobs_by_name.get(job_name)
    if run is None:
        return False, evidence(item["where"], job=job_name, step=item.get("step"), orb=item.get("orb"),
                               rule_id=item.get("rule_id"), matched=item.get("matched"),
                               execution="the job did not run")
    status = str(run.get("status") or "")
    number = run.get("job_number")
    steps = executed_steps.get(number) or executed_steps.get(str(number)) or []
    step = _step_for(steps, item.get("step"))
    failed_actions = [a for a in (step or {}).get("actions", []) if isinstance(a, dict) and _action_failed(a)]
    if step is None:  # no matching step name: judge by any failed action in the job
        failed_actions = [a for s in steps if isinstance(s, dict) for a in s.get("actions", [])
                          if isinstance(a, dict) and _action_failed(a)] if status not in _OK_JOB else []
    ok = status in _OK_JOB and not failed_actions
    detail = "ran and passed" if ok else (
        f"ran and failed (job status {status or 'unknown'}"
        + (f", step exit code {failed_actions[0].get('exit_code')}" if failed_actions else "") + ")")
    ev = evidence(f"executed job {job_name} #{number}", job=job_name,
                  step=(step or {}).get("name", item.get("step")), orb=item.get("orb"),
                  rule_id=item.get("rule_id"), matched=item.get("matched"), execution=detail,
                  job_status=status, job_number=number,
                  step_status=(failed_actions[0].get("status") if failed_actions else
                               ((step or {}).get("actions") or [{}])[0].get("status") if step else None))
    return ok, ev


def apply_execution(results: dict[str, ControlResult], executed_jobs: list[dict], executed_steps: dict) -> None:
    jobs_by_name = {str(j.get("name")): j for j in executed_jobs or [] if isinstance(j, dict)}
    for control in CHECKED_CONTROLS:
        result = results.get(control)
        if result is None or result.status != PASS:
            continue
        passed, problems = [], []
        for item in result.evidence:
            ok, ev = _check(item, jobs_by_name, executed_steps)
            (passed if ok else problems).append((item, ev))
        if passed:
            result.evidence = [e for pair in passed for e in pair] + [ev for _, ev in problems]
        else:
            result.status = FAIL
            result.evidence = [e for pair in problems for e in pair]
            result.reason = "declared in config but " + "; ".join(sorted({ev["execution"] for _, ev in problems}))
