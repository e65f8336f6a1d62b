"""Match catalogue rules against config units."""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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


# Where a step name joins several pieces of work ("Run tests & generate reports", "Install deps and run tests").
_NAME_JOINS = re.compile(r"&|;|\band\b|\bthen\b", re.IGNORECASE)  # no `\s*` around it: linear on any name


def _piece_of(name: str, end: int) -> str:
    """The piece of a step name, split where it joins several pieces of work, that holds the character before
    ``end``: a rule's `unless` vetoes the work its `step_name` matched, not the work named beside it."""
    start, stop = 0, len(name)
    for join in _NAME_JOINS.finditer(name):
        if join.end() < end:
            start = join.end()
        elif join.start() >= end:
            stop = join.start()
            break
    return name[start:stop].strip()


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


@dataclass(frozen=True)
class _ContentMatch:
    """What a rule matched in a unit's own content (orb, step, commands, parameters), before the job's name,
    contexts, filters and approvals are looked at."""

    orb_ref: str | None
    step_type: str | None
    text: str | None  # a matched step name or command line, which the evidence shows before anything else


def _match_content(rule: Rule, unit: Unit) -> _ContentMatch | None:
    if rule.is_step_rule and unit.is_job:
        return None
    if not rule.is_step_rule and not rule.is_orb_rule and not unit.is_job:
        return None  # job-level rule: judged once on the job itself
    orb_ref = step_type = text = None
    if rule.orb:
        if not unit.orb or not rule.orb.search(unit.orb):
            return None
        orb_ref = unit.orb_ref or unit.orb
    if rule.orb_version:
        if not unit.orb_version or not rule.orb_version.search(unit.orb_version):
            return None
        orb_ref = unit.orb_ref or unit.orb
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
        orb_ref = unit.orb_ref
    if rule.step_type:
        if not unit.step_type or not rule.step_type.search(unit.step_type):
            return None
        step_type = unit.step_type
    if rule.step_name:
        named = rule.step_name.search(unit.step) if unit.step else None
        if named is None or (rule.unless and rule.unless.search(_piece_of(unit.step, named.end()))):
            return None
        text = unit.step
    if rule.run:
        if not unit.run:
            return None
        text = _search_run(rule, unit.run)
        if text is None:
            return None
    if rule.parameters and not _params_ok(rule, unit.params):
        return None
    if rule.switched_on:
        switch = next((name for name, value in unit.params.items()
                       if rule.switched_on.search(name) and str(value).lower() in ("true", "yes", "on")), None)
        if switch is None:
            return None
        text = f"{unit.orb_ref or unit.job_key}: {switch}: true"
    # a `run` rule's `unless` also reads its step's name: what a command does is often told only by names
    if rule.unless and rule.run and unit.step and rule.unless.search(unit.step):
        return None
    return _ContentMatch(orb_ref, step_type, text)


def _match_job(rule: Rule, unit: Unit, content: _ContentMatch) -> str | None:
    """``content`` matched: the rule's matchers on the job (name, contexts, filters, approvals), and the text
    the evidence shows."""
    job_hit = None
    if rule.job_name:
        names = [n for n in dict.fromkeys((unit.job, unit.job_key)) if n]  # ordered: evidence is the same each run
        job_hit = next((n for n in names if rule.job_name.search(n)), None)
        if job_hit is None or (rule.unless and any(rule.unless.search(n) for n in names)):
            return None
    if rule.run and rule.unless and unit.job and rule.unless.search(unit.job):
        return None  # and its job's name
    matched = content.text or content.orb_ref or job_hit or content.step_type
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
    return matched or unit.where


class Matcher:
    """Matches rules against the units of one configuration, remembering what each unit's own content matched:
    the same step runs in every workflow job that invokes its job (several workflows, a matrix, one job under
    many names), and only the job's name, contexts, filters and approvals differ between them."""

    def __init__(self, imported_orbs: Iterable[str] = ()) -> None:
        self._imported_orbs = tuple(imported_orbs)
        self._content: dict[tuple, list[tuple[Rule, _ContentMatch]]] = {}

    def _imports(self, rule: Rule) -> bool:
        """``rule``'s `imports_orb`, which holds for every unit of the configuration or for none."""
        return rule.imports_orb is None or any(rule.imports_orb.search(orb) for orb in self._imported_orbs)

    def matches(self, rules: tuple[Rule, ...], unit: Unit) -> Iterator[tuple[Rule, str]]:
        """Each of ``rules`` (in order) that matches ``unit``, with the text it matched."""
        key = (id(rules), unit.content_key())
        candidates = self._content.get(key)
        if candidates is None:
            candidates = [(rule, c) for rule in rules
                          if self._imports(rule) and (c := _match_content(rule, unit)) is not None]
            self._content[key] = candidates
        for rule, content in candidates:
            matched = _match_job(rule, unit, content)
            if matched is not None:
                yield rule, matched


def unit_evidence(unit: Unit, wj: WorkflowJob, rule_id: str, matched: str, **extra) -> dict:
    """Evidence that ``rule_id`` matched ``unit`` of workflow job ``wj`` (`step_index` orders it in its job)."""
    return evidence(unit.where, job=wj.name, step=unit.step, orb=unit.orb or unit.orb_ref, rule_id=rule_id,
                    matched=matched, workflow=wj.workflow, step_index=unit.step_index, **extra)
