"""Evaluate a CircleCI config (and optionally its execution) against the catalogue."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from functools import cached_property

from .catalogue import DEPLOY, SCAN_CONTROLS, Catalogue
from .config_model import RUN_STEPS, ConfigModel, Unit, Workflow, WorkflowJob, build_model
from .deploys import fixture_applies, job_deploy_evidence
from .execution import apply_execution
from .knowledge import Tool
from .matching import Matcher, unit_evidence
from .results import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, ControlResult, evidence
from .safe_yaml import Unparseable, parse_config
from .shell import NO_OP_PROGRAMS, SETUP_PROGRAMS

STEP_CONTROLS = SCAN_CONTROLS + ("automated_tests",)
INSTALLED_THEN_OPAQUE = "installed in a security-named step, run through an opaque command"


def _job_matches(catalogue: Catalogue, wj: WorkflowJob, matcher: Matcher) -> dict[str, list[dict]]:
    """Evidence for each step control and for deploy found in one invoked workflow job.

    The knowledge base names the scanners a step's commands or orb call run; catalogue rules add what a
    tool table cannot say (orb parameters, tests, names).  One piece of evidence per unit and control.
    Deploys weigh several signals of the whole job (deploys.py).
    """
    found: dict[str, list[dict]] = {control: [] for control in STEP_CONTROLS + (DEPLOY,)}
    if wj.is_approval:
        return found
    found[DEPLOY] = job_deploy_evidence(catalogue, wj, matcher)
    knowledge = catalogue.knowledge
    tools_seen: set[str] = set()
    for unit in wj.units:
        hits = [hit for command in unit.commands for hit in knowledge.command_hits(command)]
        if unit.orb and unit.orb_ref:
            hits.extend(knowledge.orb_hits(unit.orb, unit.orb_ref))
        if not hits and unit.step and not all(knowledge.sets_up(c) for c in unit.commands):
            hits = knowledge.name_hits(unit.step)  # an opaque step whose name says which scanner it runs
        for hit in hits:
            tools_seen.add(hit.tool)
            if not any(e["where"] == unit.where for e in found[hit.control]):
                found[hit.control].append(unit_evidence(unit, wj, f"kb.{hit.tool}", hit.matched))
        for control in STEP_CONTROLS:
            ev = found[control]
            if ev and ev[-1]["where"] == unit.where:
                continue
            for rule, matched in matcher.matches(catalogue.rules_for(control), unit):
                if hits and control == "automated_tests" and rule.step_name and not rule.run:
                    continue  # a step named "test code" or "Run Hadolint test" that runs a scanner is that scan
                ev.append(unit_evidence(unit, wj, rule.id, matched))
                break
    _installed_scanners_run_opaquely(catalogue, wj, found)
    job = wj.units[0]
    runs = any(unit.commands for unit in wj.units[1:])
    if _does_nothing(wj):  # only echoes: a job named `publish` or `test` that publishes or tests nothing
        found[DEPLOY], found["automated_tests"] = [], []
    if runs or job.orb_ref:  # a job named as a scan (`twistlock-scan-image`, "Gitleaks secrets scan") that runs
        for hit in knowledge.name_hits(job.job):
            if hit.tool not in tools_seen and not found[hit.control]:
                found[hit.control].append(unit_evidence(job, wj, f"kb.{hit.tool}", f"job name {hit.matched}"))
    if job.image and runs:
        # A job that runs its steps in a scanner's image runs that scanner, unless its steps already show how.
        for hit in knowledge.image_hits(job.image):
            if hit.tool not in tools_seen:
                found[hit.control].append(unit_evidence(job, wj, f"kb.{hit.tool}", hit.matched))
    return found


def _installed_scanners_run_opaquely(catalogue: Catalogue, wj: WorkflowJob,
                                     found: dict[str, list[dict]]) -> None:
    """Credit a scanner installed and then run through a command nothing explains, in a step or job named as its
    scan (`pip3 install bandit` then `make scan` in a step "Run security scan"; `make install-hadolint`, then a
    step "Linting Dockerfile" running `make lint`; a job "Security Checks" that installs cargo-deny, then runs
    `cargo xtask security-checks`): the name and the install together say what the opaque command runs, as a
    reader of the config would take it."""
    knowledge = catalogue.knowledge
    job_name = wj.units[0].job
    explained = {e["where"] for ev in found.values() for e in ev}
    installs: list[tuple[Tool, str, Unit]] = []  # (scanner, install command, step), in order, not yet credited
    for unit in wj.units[1:]:
        for command in unit.commands:
            tools = knowledge.installed(command)
            if tools is not None:
                installs.extend((tool, command.line, unit) for tool in tools)
                continue
            if (not installs or unit.where in explained or command.argv[0] in NO_OP_PROGRAMS
                    or command.argv[0] in SETUP_PROGRAMS or knowledge.command_hits(command)):
                continue
            for install in list(installs):
                tool, install_line, install_unit = install
                named = _named_as_scan(catalogue, tool.control, unit.step, job_name)
                if named:
                    found[tool.control].append(unit_evidence(unit, wj, f"kb.{tool.id}",
                                                             f"{install_line} in {named}, then {command.line}",
                                                             how=INSTALLED_THEN_OPAQUE))
                    installs.remove(install)


def _named_as_scan(catalogue: Catalogue, control: str, step: str | None, job: str) -> str | None:
    """The step (when given) or job name that says it runs a ``control`` scan, and not that it sets one up."""
    pattern, knowledge = catalogue.controls[control].named_step, catalogue.knowledge
    for kind, name in (("step", step), ("job", job)):
        # job keys join words with `_` (`scan_for_vulnerabilities`): read them as the words they are
        if (name and pattern is not None and pattern.search(name.replace("_", " "))
                and not knowledge.names_set_up(name)):
            return f"{kind} {name!r}"
    return None


def _does_nothing(wj: WorkflowJob) -> bool:
    """Every step of the job is a `run` whose commands only print or exit."""
    steps = [unit for unit in wj.units[1:] if unit.step_type not in ("checkout", "attach_workspace")]
    return bool(steps) and all(unit.step_type in RUN_STEPS and all(c.argv[0] in NO_OP_PROGRAMS for c in unit.commands)
                               for unit in steps)


def _first_index(ev: list[dict]) -> float:
    indexes = [e["step_index"] for e in ev if e.get("step_index") is not None]
    if any(e.get("step_index") is None for e in ev):
        return float("inf")  # deploy by job name / orb job: the whole job deploys
    return min(indexes) if indexes else float("inf")


def _strip(ev: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "step_index"} for e in ev]


class _Analysis:
    def __init__(self, catalogue: Catalogue, model: ConfigModel):
        self.catalogue = catalogue
        self.model = model
        self.found: dict[tuple[str, int], dict[str, list[dict]]] = {}
        matcher = Matcher(model.orbs.values())
        for wf in model.workflows:
            for wj in wf.jobs:
                self.found[(wf.name, wj.index)] = _job_matches(catalogue, wj, matcher)
            for index in fixture_applies(catalogue.not_deploy, wf.jobs):
                self.found[(wf.name, index)][DEPLOY] = []
        self._upstream: dict[tuple[int, tuple[str, ...]], list] = {}

    def of(self, wj: WorkflowJob, control: str) -> list[dict]:
        return self.found[(wj.workflow, wj.index)][control]

    def deploy_jobs(self) -> list[tuple[Workflow, WorkflowJob]]:
        return [(wf, wj) for wf in self.model.workflows for wj in wf.jobs if self.of(wj, DEPLOY)]

    @cached_property
    def opaque_named_steps(self) -> list[tuple[WorkflowJob, Unit, str]]:
        """Steps whose commands no scan evidence explains, each with a name that says what it does: the step's
        own name, or the build target or package script it calls (`make vulncheck`), in job order; worked out
        once for every control."""
        knowledge = self.catalogue.knowledge
        out = []
        for wj in self.model.invoked_jobs():
            # the command of a step credited from the scanner it installed is still opaque for the other scans
            explained = {e["where"] for control in SCAN_CONTROLS for e in self.of(wj, control)
                         if e.get("how") != INSTALLED_THEN_OPAQUE}
            for unit in wj.units[1:]:
                # A step that only prints (`echo "TODO: enable snyk"`) shows there is no scan: `fail`, not `unknown`.
                opaque = any(command.argv[0] not in NO_OP_PROGRAMS for command in unit.commands)
                if not opaque or unit.where in explained:
                    continue
                names = [unit.step] if unit.step else []
                names += [name for command in unit.commands for name in knowledge.work_names(command)]
                out.extend((wj, unit, name) for name in names if not knowledge.names_set_up(name))
        return out

    def upstream(self, wf: Workflow, controls: tuple[str, ...]) -> list[dict | None]:
        """Per job of ``wf``: evidence of one of ``controls`` in a job it requires, directly or transitively
        (the first found, depth first); computed once per workflow and control set."""
        key = (id(wf), controls)
        if key not in self._upstream:
            self._upstream[key] = wf.first_upstream(
                lambda job: next((e for control in controls for e in self.of(job, control)), None))
        return self._upstream[key]

    def before(self, wf: Workflow, deploy: WorkflowJob, controls: tuple[str, ...]) -> list[dict]:
        """Evidence that one of ``controls`` runs before ``deploy`` (a job it requires, or an earlier step)."""
        found = self.upstream(wf, controls)[deploy.index]
        if found is not None:
            return [found]
        limit = _first_index(self.of(deploy, DEPLOY))
        return [e for control in controls for e in self.of(deploy, control)
                if e.get("step_index") is not None and e["step_index"] < limit]


def _step_control(analysis: _Analysis, control: str) -> ControlResult:
    ev = [e for wj in analysis.model.invoked_jobs() for e in analysis.of(wj, control)]
    if ev:
        return analysis.catalogue.result(control, PASS, _strip(ev))
    if analysis.model.setup:
        return analysis.catalogue.result(control, UNKNOWN, reason="setup (dynamic) config: the continuation config that runs the jobs is not visible")
    if analysis.model.truncated:
        return analysis.catalogue.result(control, UNKNOWN, reason=analysis.model.truncated)
    named = _named_opaque_step(analysis, control)
    if named is not None:
        name, ev = named
        return analysis.catalogue.result(control, UNKNOWN, [ev],
                       reason=f"{name!r} in job {ev['job']!r} names this control, but what step {ev['where']} runs, "
                              f"{ev['matched']!r}, the configuration does not show: check what it runs, "
                              "or add a custom rule for it")
    return analysis.catalogue.result(control, FAIL, reason="no invoked job matches any rule for this control")


def _named_opaque_step(analysis: _Analysis, control: str) -> tuple[str, dict] | None:
    """A step named as a ``control`` scan (`Security`, `Snyk`, `make vulncheck`) whose commands no rule or tool
    explains: the name, and the step as evidence."""
    pattern = analysis.catalogue.controls[control].named_step
    if pattern is None:
        return None
    return next(((name, _strip([unit_evidence(unit, wj, "unknown.named-opaque-step",
                                              unit.source.strip().split("\n", 1)[0])])[0])
                 for wj, unit, name in analysis.opaque_named_steps if pattern.search(name)), None)


def _approval(analysis: _Analysis, deploys) -> ControlResult:
    cat = analysis.catalogue
    control = "approval_gate_before_deploy"
    if not deploys:
        return _no_deploy(analysis, control)
    ev = []
    gates: dict[int, list] = {}  # per workflow: the first approval on each job's requires path
    for wf, dj in deploys:
        if id(wf) not in gates:
            gates[id(wf)] = wf.first_upstream(lambda job: job if job.is_approval else None)
        gate = gates[id(wf)][dj.index]
        if gate is None:
            continue
        why = analysis.of(dj, DEPLOY)[0]  # what makes the gated job a deploy, so a reader can check it gates one
        ev.append(evidence(gate.where, job=dj.name, step=None, orb=None, rule_id="approval.type-approval",
                           matched=f"{gate.name} (type: approval) -> {dj.name}", workflow=wf.name,
                           approval_job=gate.name, deploy_rule_id=why["rule_id"], deploy_matched=why["matched"]))
    if ev:
        return cat.result(control, PASS, ev)
    if analysis.model.truncated:
        return cat.result(control, UNKNOWN, reason=analysis.model.truncated)
    names = ", ".join(sorted({dj.name for _, dj in deploys}))[:200]
    return cat.result(control, FAIL, reason=f"no type: approval job on the requires path of any deploy job ({names})")


def _no_deploy(analysis: _Analysis, control: str) -> ControlResult:
    if analysis.model.setup:
        return analysis.catalogue.result(control, UNKNOWN, reason="setup (dynamic) config: deploy jobs are not visible")
    if analysis.model.truncated:
        return analysis.catalogue.result(control, UNKNOWN, reason=analysis.model.truncated)
    return analysis.catalogue.result(control, NOT_APPLICABLE, reason="no deploy job found")


def _every_deploy(analysis: _Analysis, deploys, control: str, needed: tuple[str, ...], what: str) -> ControlResult:
    if not deploys:
        return _no_deploy(analysis, control)
    ev, missing = [], []
    for wf, dj in deploys:
        found = analysis.before(wf, dj, needed)
        if found:
            ev.append(dict(_strip(found[:1])[0], deploy_job=dj.name, deploy_where=dj.where))
        else:
            missing.append(f"{wf.name}/{dj.name}")
    if analysis.model.truncated:  # the jobs not read may be deploys, or what the deploys read require
        return analysis.catalogue.result(control, UNKNOWN, ev, reason=analysis.model.truncated)
    if missing:
        return analysis.catalogue.result(control, FAIL, ev,
                       reason=f"deploy job(s) without {what} before them: {', '.join(missing)}"[:300])
    return analysis.catalogue.result(control, PASS, ev)


def deploy_evidence(analysis: _Analysis) -> list[dict]:
    return [dict(_strip(analysis.of(dj, DEPLOY)[:1])[0]) for _, dj in analysis.deploy_jobs()]


def evaluate_model(catalogue: Catalogue, model: ConfigModel) -> tuple[dict[str, ControlResult], list[dict]]:
    analysis = _Analysis(catalogue, model)
    results = {control: _step_control(analysis, control) for control in STEP_CONTROLS}
    deploys = analysis.deploy_jobs()
    results["approval_gate_before_deploy"] = _approval(analysis, deploys)
    results["tests_before_deploy"] = _every_deploy(analysis, deploys, "tests_before_deploy",
                                                   ("automated_tests",), "a test job")
    results["scans_before_deploy"] = _every_deploy(analysis, deploys, "scans_before_deploy",
                                                   SCAN_CONTROLS, "a security scan")
    return results, deploy_evidence(analysis)


def _pipeline_controls(catalogue: Catalogue) -> list[str]:
    return [c for c in catalogue.pipeline_controls()]


def evaluate_config(config_text: str, catalogue: Catalogue, *, executed_jobs: list[dict] | None = None,
                    executed_steps: dict[int, list[dict]] | None = None,
                    include_deploy: bool = False) -> dict[str, ControlResult]:
    """Evaluate every pipeline control for one config.

    Returns ``{control_id: ControlResult}``.  With ``include_deploy`` the
    internal ``deploy`` detection is returned too (pass = some job deploys).
    """
    with _without_cycle_collection():
        parsed = parse_config(config_text)
        if isinstance(parsed, Unparseable):
            return _unparseable(catalogue, parsed, include_deploy)
        model = build_model(parsed.data, catalogue.programs)
        results, deploy_ev = evaluate_model(catalogue, model)
    if executed_jobs is not None:
        apply_execution(results, executed_jobs, executed_steps or {})
    if include_deploy:
        results[DEPLOY] = catalogue.result(DEPLOY, PASS if deploy_ev else NOT_APPLICABLE, deploy_ev,
                                  reason="" if deploy_ev else "no deploy job found")
    return {c: results[c] for c in _pipeline_controls(catalogue) if c in results} | (
        {DEPLOY: results[DEPLOY]} if include_deploy else {})


@contextmanager
def _without_cycle_collection():
    """Parsing and evaluating build many small objects without cycles, which reference counting frees; the
    cycle collector's passes over them grow with the heap and made a large configuration's evaluation
    super-linear (4 s instead of 1.4 s to load 1 MB of YAML), so it is paused meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _unparseable(catalogue: Catalogue, parsed: Unparseable, include_deploy: bool) -> dict[str, ControlResult]:
    out = {c: catalogue.result(c, UNKNOWN, reason=f"config could not be parsed: {parsed.reason}")
           for c in _pipeline_controls(catalogue)}
    if include_deploy:
        out[DEPLOY] = catalogue.result(DEPLOY, UNKNOWN, reason=parsed.reason)
    return out
