"""Match catalogue rules against config units."""
from __future__ import annotations

from .catalogue import Rule
from .config_model import Unit, WorkflowJob
from .results import evidence

# A `run` rule's `unless` vetoes the command line that matched, and the search goes on after it; a step
# whose every line is vetoed is given up on after this many, so the search stays linear in the step.
MAX_VETOED_LINES = 20


def _search_run(rule: Rule, text: str) -> str | None:
    """The first command line of ``text`` that ``rule.run`` matches and ``rule.unless`` does not veto."""
    pos = 0
    for _ in range(MAX_VETOED_LINES):
        m = rule.run.search(text, pos)
        if m is None:
            return None
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        end = len(text) if end == -1 else end
        line = text[start:end].strip()
        if not (rule.unless and rule.unless.search(line)):
            return line
        pos = end + 1
    return None


def _params_ok(rule: Rule, params: dict) -> bool:
    for name, cond in rule.parameters.items():
        present = name in params and params[name] is not None
        value = str(params.get(name)).lower() if present else None
        if "present" in cond and cond["present"] != present:
            return False
        if "matches" in cond and (not present or not cond["matches"].search(value)):
            return False
        if "not" in cond and present and cond["not"].search(value):
            return False
        if "equals" in cond and value != cond["equals"]:
            return False
    return True


def match_rule(rule: Rule, unit: Unit) -> str | None:
    """Return the matched text when every matcher of ``rule`` matches ``unit``."""
    if rule.is_step_rule and unit.is_job:
        return None
    if not rule.is_step_rule and not rule.is_orb_rule and not unit.is_job:
        return None  # job-level rule: judged once on the job itself
    examined: list[str] = []
    matched: str | None = None
    if rule.orb:
        if not unit.orb or not rule.orb.search(unit.orb):
            return None
        matched = unit.orb_ref or unit.orb
    for pattern, jobs_only in ((rule.orb_command, False), (rule.orb_job, True)):
        if pattern is None:
            continue
        if not unit.orb_ref or (jobs_only and not unit.is_job):
            return None
        candidates = [unit.orb_ref]
        if unit.orb:
            candidates.append(f"{unit.orb}/{unit.orb_ref.split('/', 1)[-1]}")
        if not any(pattern.search(c) for c in candidates):
            return None
        matched = unit.orb_ref
    if rule.job_name:
        names = [n for n in dict.fromkeys((unit.job, unit.job_key)) if n]  # ordered: evidence is the same each run
        hit = next((n for n in names if rule.job_name.search(n)), None)
        if hit is None:
            return None
        examined.extend(names)
        matched = matched or hit
    if rule.step_type:
        if not unit.step_type or not rule.step_type.search(unit.step_type):
            return None
        matched = matched or unit.step_type
    if rule.step_name:
        if not unit.step or not rule.step_name.search(unit.step):
            return None
        examined.append(unit.step)
        matched = unit.step
    if rule.run:
        if not unit.run:
            return None
        matched = _search_run(rule, unit.run)
        if matched is None:
            return None
        examined.extend(n for n in (unit.step, unit.job) if n)  # what a command does is often told only by names
    if rule.context:
        hit = next((c for c in unit.contexts if rule.context.search(c)), None)
        if hit is None:
            return None
        matched = matched or hit
    if rule.filters:
        if not unit.refs or not all(rule.filters.search(ref) for ref in unit.refs):
            return None
        matched = matched or ", ".join(unit.refs)
    if rule.approval:
        hit = next((name for name in unit.approvals if rule.approval.search(name)), None)
        if hit is None:
            return None
        matched = matched or hit
    if rule.parameters and not _params_ok(rule, unit.params):
        return None
    if rule.unless and any(rule.unless.search(t) for t in examined):
        return None
    return matched or unit.where


def unit_evidence(unit: Unit, wj: WorkflowJob, rule_id: str, matched: str, **extra) -> dict:
    """Evidence that ``rule_id`` matched ``unit`` of workflow job ``wj`` (`step_index` orders it in its job)."""
    return evidence(unit.where, job=wj.name, step=unit.step, orb=unit.orb or unit.orb_ref, rule_id=rule_id,
                    matched=matched, workflow=wj.workflow, step_index=unit.step_index, **extra)
