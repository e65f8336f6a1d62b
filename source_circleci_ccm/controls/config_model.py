"""Turn a parsed CircleCI config into what rules look at.

Only jobs that some workflow invokes are considered.  Each invoked workflow job
becomes a ``WorkflowJob`` (a node of its workflow's ``requires`` graph) with a
list of ``Unit``s: the job itself (name, orb job, parameters, contexts) and the
steps it runs (local ``commands`` expanded, orb commands kept as references).
Works on source configs (orbs not expanded) and compiled ones (steps inlined): what CircleCI resolves when
it compiles a config is resolved here too (`<<:` merges and aliases by the YAML loader; reusable commands, inline orbs,
job and pipeline parameters, matrix jobs, `when`/`unless` with conditions known from parameters), so a
source config and its compiled form give the same units.  `run` commands are read as a shell reads them
(shell.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any, Callable, TypeVar

from .shell import Command, commands

T = TypeVar("T")
MAX_COMMAND_DEPTH = 20
MAX_UNITS_PER_JOB = 5000
MAX_MATRIX_JOBS = 256
MAX_INLINE_ORB_DEPTH = 4  # inline orbs within inline orbs: real configs nest one deep
# Commands read per config: real configs have a few thousand; past this a hostile one is not read further
# (the model says so, and controls not found become `unknown`), which keeps evaluation linear and bounded.
MAX_COMMANDS = 50_000
# Workflow jobs (invocations, matrix expansions included) read per config: real configs have up to a few hundred;
# past this a hostile one is not read further, for the same reason.
MAX_WORKFLOW_JOBS = 3_000
# `deploy` is CircleCI's deprecated twin of `run` (same keys, same semantics): its commands are read alike.
RUN_STEPS = ("run", "deploy")
_PARAM_RE = re.compile(r"<<\s*parameters\.([\w-]+)\s*>>")
_PIPELINE_PARAM_RE = re.compile(r"<<\s*pipeline\.parameters\.([\w-]+)\s*>>")
_AFTER_PARAM = re.compile(r"^(post|after)([-_]|$)|[-_](post|after)$")
# An orb parameter named for a command (`command`, `test-command`, `becommand`, `build_cmd`, `script`) holds a
# shell command the orb runs: it is read as a `run` step of its own.
_COMMAND_PARAM = re.compile(r"(command|cmd|script)s?$", re.IGNORECASE)
_MATRIX_PARAM_RE = re.compile(r"<<\s*matrix\.([\w-]+)\s*>>")


@dataclass
class Unit:
    where: str
    job: str
    job_key: str
    is_job: bool = False
    step: str | None = None
    step_index: int | None = None
    step_type: str | None = None
    orb: str | None = None
    orb_version: str | None = None  # as the `orbs` section pins it, pipeline parameters filled in
    orb_ref: str | None = None
    run: str | None = None  # the commands, one per line, wrappers taken off (what `run` rules search)
    source: str | None = None  # the `run` text as written (parameters substituted), for people to read
    commands: list[Command] = field(default_factory=list)
    workdir: str | None = None  # `run` steps: their own `working_directory`, when they set one
    image: str | None = None  # job units: the executor's primary image
    params: dict = field(default_factory=dict)
    contexts: list[str] = field(default_factory=list)
    refs: tuple[str, ...] = ()  # job units: what its filters restrict it to (`branch:main`, `tag:/^v.*/`); () any branch
    approvals: tuple[str, ...] = ()  # job units: its `requires` entries that name `type: approval` jobs
    _content_key: tuple | None = field(default=None, repr=False, compare=False)

    def content_key(self) -> tuple:
        """What rules can see of a unit besides its job's name, contexts, filters and approvals: equal for the same
        step of every invocation of a job, and for the job units of invocations with the same parameters."""
        if self._content_key is None:
            self._content_key = (self.is_job, self.step_type, self.step, self.run, self.orb, self.orb_version, self.orb_ref,
                                 repr(self.params) if self.params else "")
        return self._content_key


@dataclass
class WorkflowJob:
    workflow: str
    index: int
    key: str
    name: str
    requires: list[str]
    type: str | None
    params: dict
    contexts: list[str]
    filters: Any
    alias: str = ""  # matrix expansions: the name `requires` uses for all of them (CircleCI's `alias`)
    units: list[Unit] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"workflows.{self.workflow}.jobs[{self.index}]"

    @property
    def is_approval(self) -> bool:
        return self.type == "approval"


@dataclass
class Workflow:
    name: str
    jobs: list[WorkflowJob]
    scheduled: bool = False

    def __post_init__(self) -> None:
        # Every `requires` entry is looked up: by dictionary, so a workflow of many jobs stays linear.
        self._by = ({}, {}, {})  # name, key, matrix alias -> jobs
        self._approval_refs: dict[str, bool] = {}
        for job in self.jobs:
            for index, value in zip(self._by, (job.name, job.key, job.alias)):
                if value:
                    index.setdefault(value, []).append(job)

    def resolve(self, ref: str) -> list[WorkflowJob]:
        """The jobs a `requires` entry names: by name, else by job key, else every expansion of a matrix alias."""
        return next((index[ref] for index in self._by if ref in index), [])

    def approvals_held_by(self, job: WorkflowJob) -> list[str]:
        """The `requires` entries of ``job`` that name `type: approval` jobs: it waits for a person to approve them."""
        return [ref for ref in job.requires if self._names_approval(ref)]

    def _names_approval(self, ref: str) -> bool:
        if ref not in self._approval_refs:  # a matrix alias stands for many jobs: look once per entry name
            self._approval_refs[ref] = any(parent.is_approval for parent in self.resolve(ref))
        return self._approval_refs[ref]

    def first_upstream(self, own: Callable[[WorkflowJob], T | None]) -> list[T | None]:
        """For each job (by index), the first ``own(job)`` found among the jobs it requires, directly or through
        them, depth first in `requires` order.  Each job and each distinct `requires` entry is settled once, so
        a long chain or a wide fan-in costs time linear in the workflow; a cycle (CircleCI rejects them)
        contributes nothing."""
        settled: dict[tuple[str, Any], T | None] = {}
        for job in self.jobs:
            root = ("job", job.index)
            if root in settled:
                continue
            stack = [(root, self._upstream_of(root, own))]
            in_progress = {root}
            value: T | None = None
            while stack:
                node, frame = stack[-1]
                try:
                    child = frame.send(value)
                except StopIteration as done:
                    settled[node] = done.value
                    in_progress.discard(node)
                    stack.pop()
                    value = done.value
                    continue
                if child in settled or child in in_progress:
                    value = settled.get(child)
                else:
                    in_progress.add(child)
                    stack.append((child, self._upstream_of(child, own)))
                    value = None
        return [settled[("job", job.index)] for job in self.jobs]

    def _upstream_of(self, node: tuple[str, Any], own: Callable[[WorkflowJob], T | None]):
        """A frame of first_upstream: yields the nodes whose value it needs, in order; returns the first found."""
        kind, key = node
        if kind == "job":
            for ref in self.jobs[key].requires:
                value = yield ("ref", ref)
                if value is not None:
                    return value
            return None
        for parent in self.resolve(key):
            value = own(parent)
            if value is None:
                value = yield ("job", parent.index)
            if value is not None:
                return value
        return None


@dataclass
class ConfigModel:
    orbs: dict[str, str]
    workflows: list[Workflow]
    setup: bool
    truncated: str = ""  # why part of the config was not read, when it was not

    def invoked_jobs(self) -> list[WorkflowJob]:
        return [j for wf in self.workflows for j in wf.jobs]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _orb_name(value: Any, alias: str) -> str:
    if isinstance(value, str):
        return value.split("@", 1)[0].strip()
    return f"inline/{alias}"


def _defaults(definition: Any) -> dict:
    params = definition.get("parameters") if isinstance(definition, dict) else None
    out = {}
    if isinstance(params, dict):
        for name, spec in params.items():
            if isinstance(spec, dict) and "default" in spec:
                out[str(name)] = spec["default"]
    return out


@dataclass
class _Namespace:
    """The jobs, commands and executors a reference can name from where it is written: the config's own, or an
    inline orb's (an `orbs:` entry that is a definition, not `org/name@version`), whose elements the config names
    `alias/element` and the orb itself names without its alias."""

    path: str  # where its definitions are: "" for the config, `orbs.ALIAS.` for an inline orb
    jobs: dict
    commands: dict
    executors: dict
    orbs: dict[str, str]  # alias -> registry name of each orb it imports
    orb_versions: dict[str, str]
    inline: dict[str, "_Namespace"]

    def lookup(self, kind: str, ref: str) -> tuple[dict, "_Namespace"] | None:
        """The job, command or executor ``ref`` names, with the namespace it is defined in; None when it is a
        registry orb's or nothing's.  A compiled config keeps inline orbs' jobs under `alias/job` keys of its own."""
        definition = getattr(self, kind).get(ref)
        if isinstance(definition, dict):
            return definition, self
        alias, slash, rest = ref.partition("/")
        inner = self.inline.get(alias) if slash else None
        return inner.lookup(kind, rest) if inner else None

    def orb_of(self, ref: str) -> tuple[str | None, str | None]:
        """The registry orb (name, version) an `alias/element` reference calls, through inline orbs' imports."""
        alias, slash, rest = ref.partition("/")
        if slash and alias in self.inline and "/" in rest:
            return self.inline[alias].orb_of(rest)
        return self.orbs.get(alias), self.orb_versions.get(alias)


class _Builder:
    def __init__(self, data: dict, programs: frozenset[str]):
        self.data = data
        self.programs = programs
        self.pipeline_params = _defaults(data)
        self.root = self._namespace(data, "", 0)
        self.commands_left = MAX_COMMANDS
        self.jobs_left = MAX_WORKFLOW_JOBS
        self.truncated = ""
        self._steps_read: dict[tuple[str, str], list[Unit]] = {}  # (job, parameters) -> its step units

    # -- text substitution -------------------------------------------------
    def _subst(self, text: str, scope: dict) -> str:
        def param(m: re.Match) -> str:
            value = scope.get(m.group(1))
            return m.group(0) if value is None or isinstance(value, (dict, list)) else str(value)

        def pipeline(m: re.Match) -> str:
            value = self.pipeline_params.get(m.group(1))
            return m.group(0) if value is None or isinstance(value, (dict, list)) else str(value)

        text = _PARAM_RE.sub(param, text)
        return _PIPELINE_PARAM_RE.sub(pipeline, text)

    def _subst_job(self, text: str, scope: dict) -> str:
        """Job parameters only: what a `when` step's condition is decided by (pipeline parameters vary by trigger)."""
        def param(m: re.Match) -> str:
            value = scope.get(m.group(1))
            return m.group(0) if value is None or isinstance(value, (dict, list)) else str(value)
        return _PARAM_RE.sub(param, text)

    def _namespace(self, data: dict, path: str, depth: int) -> _Namespace:
        def section(key: str) -> dict:
            return data.get(key) if isinstance(data.get(key), dict) else {}
        orbs = section("orbs")
        inline = {str(a): self._namespace(v, f"{path}orbs.{a}.", depth + 1)
                  for a, v in orbs.items() if isinstance(v, dict) and depth < MAX_INLINE_ORB_DEPTH}
        return _Namespace(
            path=path, jobs=section("jobs"), commands=section("commands"), executors=section("executors"),
            orbs={str(a): _orb_name(v, str(a)) for a, v in orbs.items()},
            # `tools: org/tools@<< pipeline.parameters.dev-orb-version >>` pins the version a trigger passes in
            orb_versions={str(a): self._subst(v.split("@", 1)[1].strip(), {})
                          for a, v in orbs.items() if isinstance(v, str) and "@" in v},
            inline=inline)

    # -- steps -------------------------------------------------------------
    def _steps(self, steps: Any, base: str, wj: WorkflowJob, scope: dict, out: list[Unit], depth: int,
               ns: _Namespace | None = None):
        ns = ns or self.root
        if depth > MAX_COMMAND_DEPTH:
            return
        for i, step in enumerate(_as_list(steps)):
            if len(out) >= MAX_UNITS_PER_JOB:
                return
            where = f"{base}[{i}]"
            if isinstance(step, str):
                name, args = step, {}
            elif isinstance(step, dict) and len(step) >= 1:
                name, args = next(iter(step.items()))
                name = str(name)
            else:
                continue
            common = dict(job=wj.name, job_key=wj.key, contexts=wj.contexts)
            if name in RUN_STEPS:
                if isinstance(args, str):
                    command, step_name, workdir = args, None, None
                elif isinstance(args, dict):
                    command, step_name, workdir = args.get("command"), args.get("name"), args.get("working_directory")
                else:
                    continue
                out.append(self._run_unit(f"{where}.{name}", name, self._subst(str(command or ""), scope),
                                          wj, step_index=len(out),
                                          step=self._subst(str(step_name), scope) if step_name else None,
                                          workdir=self._subst(str(workdir), scope) if workdir else None))
            elif name in ("when", "unless") and isinstance(args, dict):
                holds = _truth(args.get("condition"), lambda text: self._subst_job(text, scope))
                if holds is None or holds == (name == "when"):  # unknown until run time: it may run
                    self._steps(args.get("steps"), f"{where}.{name}.steps", wj, scope, out, depth + 1, ns)
            elif name == "steps" and isinstance(args, str):
                m = _PARAM_RE.fullmatch(args.strip())
                if m and isinstance(scope.get(m.group(1)), list):
                    self._steps(scope[m.group(1)], f"{where}.steps", wj, scope, out, depth + 1, ns)
            elif command := ns.lookup("commands", name):
                definition, home = command
                inner = dict(_defaults(definition))
                if isinstance(args, dict):
                    inner.update({str(k): self._resolve_value(v, scope) for k, v in args.items()})
                self._steps(definition.get("steps"), f"{home.path}commands.{name.rsplit('/', 1)[-1]}.steps", wj, inner,
                            out, depth + 1, home)
            elif "/" in name:
                params = {str(k): self._resolve_value(v, scope) for k, v in args.items()} if isinstance(args, dict) else {}
                step_name = params.get("name") if isinstance(params.get("name"), str) else None
                orb, orb_version = ns.orb_of(name)
                out.append(Unit(where=where, step=step_name, step_index=len(out), step_type="orb_command",
                                orb=orb, orb_version=orb_version, orb_ref=name, params=params, **common))
                out.extend(self._command_parameters(params, where, wj, step_index=out[-1].step_index))
            else:
                step_name = args.get("name") if isinstance(args, dict) and isinstance(args.get("name"), str) else None
                out.append(Unit(where=where, step=step_name, step_index=len(out), step_type=name, **common))

    def _run_unit(self, where: str, step_type: str, source: str, wj: WorkflowJob, step_index: int | None,
                  step: str | None = None, workdir: str | None = None) -> Unit:
        read = self._read(source)
        return Unit(where=where, step=step, step_index=step_index, step_type=step_type,
                    run="\n".join(c.line for c in read), source=source, commands=read, workdir=workdir,
                    job=wj.name, job_key=wj.key, contexts=wj.contexts)

    def _command_parameters(self, params: dict, where: str, wj: WorkflowJob, step_index: int | None) -> list[Unit]:
        """The commands an orb job or command is given to run (`test-command: go test ./...`), as `run` steps at
        ``step_index``: where the orb runs them among its own steps is not in the config."""
        return [self._run_unit(f"{where}.{param}", "run", value, wj, step_index)
                for param, value in params.items()
                if isinstance(value, str) and value.strip() and _COMMAND_PARAM.search(param)]

    def _read(self, text: str) -> list[Command]:
        if self.commands_left <= 0:
            self.truncated = f"the configuration runs more than {MAX_COMMANDS} commands; the rest were not read"
            return []
        read = commands(text, limit=self.commands_left, programs=self.programs)
        self.commands_left -= max(len(read), 1)
        if self.commands_left <= 0:
            self.truncated = f"the configuration runs more than {MAX_COMMANDS} commands; the rest were not read"
        return read

    def _image(self, definition: dict, ns: _Namespace) -> str | None:
        """The primary image a job runs in: its own `docker:` or its named executor's."""
        executor = definition.get("executor")
        if isinstance(executor, dict):
            executor = executor.get("name")
        named = ns.lookup("executors", executor) if isinstance(executor, str) else None
        source = named[0] if named else definition
        docker = source.get("docker") if isinstance(source, dict) else None
        first = docker[0] if isinstance(docker, list) and docker else None
        image = first.get("image") if isinstance(first, dict) else None
        return image if isinstance(image, str) else None

    def _resolve_value(self, value: Any, scope: dict) -> Any:
        if isinstance(value, str):
            m = _PARAM_RE.fullmatch(value.strip())
            if m and m.group(1) in scope:
                return scope[m.group(1)]
            return self._subst(value, scope)
        return value

    # -- workflows ---------------------------------------------------------
    def build(self) -> ConfigModel:
        workflows = []
        raw_wfs = self.data.get("workflows") if isinstance(self.data.get("workflows"), dict) else {}
        if not raw_wfs and isinstance(self.root.jobs.get("build"), dict):
            raw_wfs = {"(implicit)": {"jobs": ["build"]}}  # 2.x without workflows runs the `build` job
        for wf_name, wf in raw_wfs.items():
            if not isinstance(wf, dict):
                continue  # e.g. `version: 2`
            # Any trigger may set pipeline parameters, so only a literal condition decides here (a compiled config
            # has the pipeline's own values in place).
            keep = lambda text: text  # noqa: E731
            if _truth(wf.get("when"), keep) is False or _truth(wf.get("unless"), keep) is True:
                continue
            jobs = []
            for entry in _as_list(wf.get("jobs")):
                if isinstance(entry, str):
                    key, params = entry, {}
                elif isinstance(entry, dict) and entry:
                    key, params = next(iter(entry.items()))
                    params = params if isinstance(params, dict) else {}
                else:
                    continue
                if self.jobs_left == 0:
                    self.truncated = self.truncated or (f"the configuration invokes more than {MAX_WORKFLOW_JOBS} "
                                                        "workflow jobs; the rest were not read")
                    break
                for name, alias, values in _matrix(str(key), params, min(MAX_MATRIX_JOBS, self.jobs_left)):
                    self.jobs_left -= 1
                    jobs.append(self._workflow_job(str(wf_name), len(jobs), str(key), name, alias, params, values))
            workflow = Workflow(name=str(wf_name), jobs=_runnable(jobs), scheduled=bool(wf.get("triggers")))
            for wj in jobs:
                wj.units[0].approvals = tuple(workflow.approvals_held_by(wj))
            workflows.append(workflow)
        return ConfigModel(orbs=self.root.orbs, workflows=workflows, setup=bool(self.data.get("setup")),
                           truncated=self.truncated)

    def _workflow_job(self, workflow: str, index: int, key: str, name: str, alias: str, params: dict,
                      values: dict) -> WorkflowJob:
        requires = []
        for r in _as_list(params.get("requires")):
            if isinstance(r, dict):
                requires.extend(str(k) for k in r)
            else:
                requires.append(str(r))
        requires = [_fill_matrix(r, values) for r in requires]  # `requires: [build-<< matrix.v >>]`: its own pair
        contexts = [str(c) for c in _as_list(params.get("context"))]
        extra = {str(k): v for k, v in params.items()
                 if k not in ("requires", "context", "filters", "type", "matrix", "name")}
        extra.update(values)
        wj = WorkflowJob(
            workflow=workflow, index=index, key=key, name=name, requires=requires, type=params.get("type"),
            params=extra, contexts=contexts, filters=params.get("filters"), alias=alias,
        )
        self._units(wj)
        return wj

    def _units(self, wj: WorkflowJob) -> None:
        if wj.is_approval:
            wj.units.append(Unit(where=wj.where, job=wj.name, job_key=wj.key, is_job=True,
                                 params=wj.params, contexts=wj.contexts))
            return
        found = self.root.lookup("jobs", wj.key)
        orb, orb_version = self.root.orb_of(wj.key) if "/" in wj.key else (None, None)
        wj.units.append(Unit(where=wj.where, job=wj.name, job_key=wj.key, is_job=True,
                             orb=orb, orb_version=orb_version, orb_ref=wj.key if "/" in wj.key else None,
                             params=wj.params, contexts=wj.contexts, refs=_refs(wj.filters)))
        if orb and not found:
            # An orb job's own steps are not in the config, but the steps and commands the config hands it are (a
            # `steps` parameter, `pre-steps`, `post-steps`, a `test-command`): they run in that job.
            wj.units.extend(self._command_parameters(wj.params, wj.where, wj, step_index=None))
            for param, value in wj.params.items():
                if is_step_list(value):
                    start = len(wj.units)
                    self._steps(value, f"{wj.where}.{param}", wj, {}, wj.units, 0)
                    if _AFTER_PARAM.search(param):
                        # `post-steps`, `after-apply`: they run after the orb's own work, whose place among the
                        # steps the config does not show, so they are ordered before nothing in the job
                        for unit in wj.units[start:]:
                            unit.step_index = None
            return
        if not found:
            return
        definition, home = found
        wj.units[0].image = self._image(definition, home)
        # A job invoked again with the same parameters (by another workflow, or under another name) runs the
        # same steps: they are read once and copied, which keeps a config of many invocations linear and cheap.
        invocation = (wj.key, repr(wj.params))
        steps = self._steps_read.get(invocation)
        read_count = sum(max(len(unit.commands), 1) for unit in steps or () if unit.step_type in RUN_STEPS)
        if steps is not None and self.commands_left > read_count:
            self.commands_left -= read_count  # as reading them again would
            wj.units.extend(replace(unit, job=wj.name, job_key=wj.key, contexts=wj.contexts) for unit in steps)
            return
        scope = _defaults(definition)
        scope.update(wj.params)
        # `pre-steps` and `post-steps` a workflow gives any job run before and after its own steps
        pre, post = wj.params.get("pre-steps"), wj.params.get("post-steps")
        if is_step_list(pre):
            self._steps(pre, f"{wj.where}.pre-steps", wj, {}, wj.units, 0)
        self._steps(definition.get("steps"), f"{home.path}jobs.{wj.key.rsplit('/', 1)[-1] if home.path else wj.key}.steps",
                    wj, scope, wj.units, 0, home)
        if is_step_list(post):
            self._steps(post, f"{wj.where}.post-steps", wj, {}, wj.units, 0)
        self._steps_read[invocation] = wj.units[1:]


def is_step_list(value: Any) -> bool:
    """A parameter value that is a list of steps: `- run: ...`, `- checkout`, `- orb/command: {...}`."""
    if not isinstance(value, list) or not any(isinstance(v, dict) for v in value):
        return False
    return all(isinstance(v, str) or (isinstance(v, dict) and len(v) == 1) for v in value)


def _matrix(key: str, params: dict, limit: int) -> list[tuple[str, str, dict]]:
    """(name, matrix alias, parameter values) of each job a workflow entry stands for: one (no alias), or one
    per matrix combination, the first ``limit`` of them."""
    name = str(params.get("name") or key)
    matrix = params.get("matrix")
    grid = matrix.get("parameters") if isinstance(matrix, dict) else None
    if not isinstance(grid, dict) or not grid:
        return [(name, "", {})]
    named_by_values = bool(_MATRIX_PARAM_RE.search(name))
    alias = str(matrix.get("alias") or (key if named_by_values else name))
    # an expansion's name gives the values in the order of the parameters' names, not as written (`version`, `platform`
    # make `build-macos-0.1`: support.circleci.com/hc/en-us/articles/360046060714)
    axes = sorted((str(p), _as_list(v)) for p, v in grid.items())
    # An `exclude` entry names one whole combination; looked up by key, and every combination passed over is one
    # excluded, so the loop ends after `limit` plus as many as are excluded whatever the size of the grid.
    excluded = {_combination(e) for e in _as_list(matrix.get("exclude")) if isinstance(e, dict)}
    out = []
    for passed, combination in enumerate(product(*(values for _, values in axes))):
        if len(out) >= limit or passed >= limit + len(excluded):
            break
        values = {p: v for (p, _), v in zip(axes, combination)}
        if _combination(values) in excluded:
            continue
        # CircleCI fills `<< matrix.x >>` into a `name` that uses them; else an expansion is `<alias>-<value>-<value>`
        # (alias defaults to the job name)
        expanded = (_fill_matrix(name, values) if named_by_values
                    else f"{alias}-" + "-".join(str(v) for v in combination))
        out.append((expanded, alias, values))
    return out


def _combination(values: dict) -> frozenset:
    return frozenset((str(k), repr(v)) for k, v in values.items())


def _fill_matrix(text: str, values: dict) -> str:
    """``text`` with `<< matrix.x >>` replaced by this expansion's value of x."""
    if not values or "<<" not in text:
        return text
    return _MATRIX_PARAM_RE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


_EVERYTHING = {".*", ".+"}


def _never_runs(filters: Any) -> bool:
    """`branches: ignore: /.*/` and no tag filter that lets a tag through: nothing starts the job (CircleCI runs a
    job on tags only when `tags` has `only` or `ignore`), a common way to switch a job off."""
    if not isinstance(filters, dict) or not isinstance(filters.get("branches"), dict):
        return False
    if not {_ref_pattern(b) for b in _as_list(filters["branches"].get("ignore"))} & _EVERYTHING:
        return False
    tags = filters.get("tags") if isinstance(filters.get("tags"), dict) else {}
    ignored_tags = {_ref_pattern(t) for t in _as_list(tags.get("ignore"))}
    return not _as_list(tags.get("only")) and (not ignored_tags or bool(ignored_tags & _EVERYTHING))


def _runnable(jobs: list[WorkflowJob]) -> list[WorkflowJob]:
    """The jobs that can run: not those whose filters let nothing start them, nor any job that requires one."""
    off = [wj for wj in jobs if _never_runs(wj.filters)]
    if not off:
        return jobs
    dependents: dict[str, list[WorkflowJob]] = {}
    for wj in jobs:
        for required in wj.requires:
            dependents.setdefault(required, []).append(wj)
    dropped = {id(wj) for wj in off}
    while off:
        wj = off.pop()
        for name in {wj.name, wj.alias} - {""}:
            for dependent in dependents.pop(name, ()):
                if id(dependent) not in dropped:
                    dropped.add(id(dependent))
                    off.append(dependent)
    return [wj for wj in jobs if id(wj) not in dropped]


def _refs(filters: Any) -> tuple[str, ...]:
    """The branches and tags a workflow job's `filters` restrict it to, as `branch:NAME` and `tag:PATTERN`.

    Empty when it runs on any branch.  CircleCI runs a job on a tag only when `tags: only` says so, and on
    every branch unless `branches` says otherwise; regex entries keep their pattern without `/`, `^` and `$`.
    """
    if not isinstance(filters, dict):
        return ()
    branches = filters.get("branches") if isinstance(filters.get("branches"), dict) else {}
    tags = filters.get("tags") if isinstance(filters.get("tags"), dict) else {}
    only = [_ref_pattern(b) for b in _as_list(branches.get("only"))]
    if not only and not any(_ref_pattern(b) in (".*", ".+") for b in _as_list(branches.get("ignore"))):
        return ()
    return tuple([f"branch:{b}" for b in only] + [f"tag:{_ref_pattern(t)}" for t in _as_list(tags.get("only"))])


def _ref_pattern(value: Any) -> str:
    text = str(value).strip()
    if len(text) > 1 and text.startswith("/") and text.endswith("/"):
        text = text[1:-1].removeprefix("^").removesuffix("$")
    return text


def _truth(condition: Any, subst) -> bool | None:
    """A `when`/`unless` condition's value when parameters decide it; None when only a run can (e.g. the branch)."""
    if condition is None:
        return None
    if isinstance(condition, bool):
        return condition
    if isinstance(condition, (int, float)):
        return bool(condition)
    if isinstance(condition, str):
        value = subst(condition).strip()
        if "<<" in value:
            return None
        return value.lower() not in ("", "false", "0", "no", "off", "null")
    if isinstance(condition, dict) and len(condition) == 1:
        (op, arg), = condition.items()
        if op == "not":
            inner = _truth(arg, subst)
            return None if inner is None else not inner
        if op in ("and", "or") and isinstance(arg, list):
            values = [_truth(a, subst) for a in arg]
            decisive = op == "or"  # `or` is settled by one True, `and` by one False
            if decisive in values:
                return decisive
            return None if None in values else not decisive
        if op == "equal" and isinstance(arg, list):
            values = [subst(a).strip() if isinstance(a, str) else a for a in arg]
            if any(isinstance(v, str) and "<<" in v for v in values):
                return None
            return all(str(v) == str(values[0]) for v in values)
    return None


def build_model(data: dict, programs: frozenset[str] = frozenset()) -> ConfigModel:
    """The model of a parsed config; ``programs`` are those a `run` may call through a variable named for them
    (`$CARGO audit`)."""
    return _Builder(data, programs).build()
