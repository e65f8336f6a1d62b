"""The rule catalogue: packaged YAML data plus user rules that add to or override it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

import yaml

from .results import ControlResult
from .knowledge import KnowledgeBase, load_knowledge_base
from .patterns import Pattern, compile_pattern

MATCHER_FIELDS = ("orb", "orb_version", "orb_command", "orb_job", "job_name", "step_name", "step_type", "run", "context", "filters",
                  "approval", "switched_on", "imports_orb")
PARAMETER_CONDITIONS = ("matches", "not", "present", "equals")
SCAN_CONTROLS = ("dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning")
DERIVED_CONTROLS = ("approval_gate_before_deploy", "tests_before_deploy", "scans_before_deploy")
DEPLOY = "deploy"


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    description: str
    frameworks: tuple[dict, ...]
    scope: str = "pipeline"
    derived: bool = False
    internal: bool = False
    named_step: Pattern | None = None  # a step so named, running commands nothing explains, makes it `unknown`
    signals_needed: int = 1  # deploy: how many different weak signals (rules with a `signal`) make a deploy together


@dataclass
class Rule:
    id: str
    control: str
    description: str = ""
    orb: Pattern | None = None
    orb_version: Pattern | None = None  # the version the `orbs` section pins the orb to (`dev:alpha`, `5.1.0`)
    orb_command: Pattern | None = None  # an orb job a workflow invokes or an orb command a step runs
    orb_job: Pattern | None = None  # an orb job a workflow invokes (not a step's orb command)
    job_name: Pattern | None = None
    step_name: Pattern | None = None
    step_type: Pattern | None = None
    run: Pattern | None = None
    context: Pattern | None = None
    filters: Pattern | None = None  # every ref the job's filters restrict it to (`branch:main`, `tag:/^v.*/`) matches
    approval: Pattern | None = None  # the name of a `type: approval` job the job requires directly matches
    switched_on: Pattern | None = None  # the name of a parameter the job or orb command is given as true (`snyk-scan: true`)
    imports_orb: Pattern | None = None  # an orb the configuration's `orbs` section imports, by registry name
    unless: Pattern | None = None
    parameters: dict[str, dict] = field(default_factory=dict)
    signal: str | None = None  # deploy rules: the kind of weak signal this is (none: the rule alone shows a deploy)
    source: str = "packaged"

    @property
    def is_step_rule(self) -> bool:
        """Rules about commands/step names only look at steps."""
        return bool(self.run or self.step_name or self.step_type)

    @property
    def is_orb_rule(self) -> bool:
        return bool(self.orb or self.orb_version or self.orb_command or self.orb_job)


@dataclass(frozen=True)
class NotDeploy:
    """What a job may do that is not a deploy, whatever it is called (catalogue.yaml `not_deploy`)."""

    step_types: Pattern
    programs: frozenset[str]  # report uploaders
    housekeeping: frozenset[str]  # programs that only move files or commits around
    orbs: Pattern
    orb_commands: Pattern
    names: Pattern
    work_names: Pattern  # a step so named builds, tests or lints ...
    shipping_words: Pattern  # ... unless its name also says it ships
    teardowns: dict[str, frozenset[str]]  # program -> subcommands that tear down what it deployed
    local_clusters: dict[str, tuple[tuple[str, ...], ...]]  # program -> subcommands, as words, that start a cluster in the job


@dataclass
class Catalogue:
    version: str
    controls: dict[str, Control]
    rules: list[Rule]
    knowledge: KnowledgeBase
    not_deploy: NotDeploy
    programs: frozenset[str]  # what a `run` may call through a variable named for it (`$CARGO audit`)
    required_controls: list[str] = field(default_factory=list)

    def frameworks(self, control_id: str) -> list[dict]:
        control = self.controls.get(control_id)
        if control is None:
            raise KeyError(f"unknown control {control_id!r}")
        return [dict(f) for f in control.frameworks]

    def rules_for(self, control_id: str) -> tuple[Rule, ...]:
        return self._rules_by_control.get(control_id, ())

    @cached_property
    def _rules_by_control(self) -> dict[str, tuple[Rule, ...]]:
        """Each control's rules in catalogue order, one tuple each (a matcher remembers results per tuple)."""
        by_control: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_control.setdefault(rule.control, []).append(rule)
        return {control: tuple(rules) for control, rules in by_control.items()}

    def pipeline_controls(self) -> list[str]:
        return [c.id for c in self.controls.values() if c.scope == "pipeline" and not c.internal]

    def result(self, control: str, status: str, evidence: Any = None, reason: str = "") -> ControlResult:
        """A control's result, with its title, framework ids and this catalogue's version."""
        return ControlResult(control=control, status=status, evidence=list(evidence or []), reason=reason,
                             title=self.controls[control].title, frameworks=self.frameworks(control),
                             catalogue_version=self.version)


def _compile(rule_id: str, name: str, value: Any) -> Pattern | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"rule {rule_id!r}: {name} must be a non-empty regex string")
    try:
        return compile_pattern(value)
    except ValueError as exc:
        raise ValueError(f"rule {rule_id!r}: {name} is not a valid regex ({exc})") from None


def _parse_parameters(rule_id: str, value: Any) -> dict[str, dict]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"rule {rule_id!r}: parameters must be a mapping of parameter -> condition")
    parsed: dict[str, dict] = {}
    for pname, cond in value.items():
        if isinstance(cond, (str, int, float, bool)):
            cond = {"equals": cond}
        if not isinstance(cond, dict) or not cond:
            raise ValueError(f"rule {rule_id!r}: parameter {pname!r} condition must be a mapping")
        unknown = set(cond) - set(PARAMETER_CONDITIONS)
        if unknown:
            raise ValueError(
                f"rule {rule_id!r}: parameter {pname!r} has unknown condition(s) {sorted(unknown)}; "
                f"use {list(PARAMETER_CONDITIONS)}"
            )
        out: dict[str, Any] = {}
        for key in ("matches", "not"):
            if key in cond:
                out[key] = _compile(rule_id, f"parameters.{pname}.{key}", str(cond[key]))
        if "present" in cond:
            if not isinstance(cond["present"], bool):
                raise ValueError(f"rule {rule_id!r}: parameters.{pname}.present must be true/false")
            out["present"] = cond["present"]
        if "equals" in cond:
            out["equals"] = str(cond["equals"]).lower()
        parsed[str(pname)] = out
    return parsed


def build_rule(raw: Any, controls: dict[str, Control], source: str) -> Rule:
    if not isinstance(raw, dict):
        raise ValueError(f"{source} rule must be a mapping, got {type(raw).__name__}")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise ValueError(f"{source} rule is missing a string 'id'")
    control = raw.get("control")
    if control not in controls:
        raise ValueError(
            f"rule {rule_id!r}: unknown control {control!r}; expected one of {sorted(controls)}"
        )
    if controls[control].derived or controls[control].scope != "pipeline":
        raise ValueError(f"rule {rule_id!r}: control {control!r} is computed, rules cannot target it")
    allowed = set(MATCHER_FIELDS) | {"id", "control", "description", "unless", "parameters", "signal"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"rule {rule_id!r}: unknown field(s) {sorted(unknown)}")
    signal = raw.get("signal")
    if signal is not None and (control != DEPLOY or not isinstance(signal, str) or not signal.strip()):
        raise ValueError(f"rule {rule_id!r}: signal must be a non-empty string, and only deploy rules have one")
    kwargs = {name: _compile(rule_id, name, raw.get(name)) for name in MATCHER_FIELDS}
    if not any(kwargs.values()):
        raise ValueError(
            f"rule {rule_id!r}: needs at least one matcher of {list(MATCHER_FIELDS)}"
        )
    return Rule(
        id=rule_id,
        control=control,
        description=str(raw.get("description") or ""),
        unless=_compile(rule_id, "unless", raw.get("unless")),
        parameters=_parse_parameters(rule_id, raw.get("parameters")),
        signal=signal,
        source=source,
        **kwargs,
    )


def _packaged_data() -> dict:
    text = resources.files("source_circleci_ccm.controls").joinpath("catalogue.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def load_catalogue(
    custom_rules: list[dict] | None = None, required_controls: list[str] | None = None
) -> Catalogue:
    """Packaged catalogue plus ``custom_rules`` (same id overrides, new id adds)."""
    data = _packaged_data()
    controls: dict[str, Control] = {}
    for c in data["controls"]:
        controls[c["id"]] = Control(
            id=c["id"],
            title=c.get("title", c["id"]),
            description=c.get("description", ""),
            frameworks=tuple(c.get("frameworks") or ()),
            scope=c.get("scope", "pipeline"),
            derived=bool(c.get("derived")),
            internal=bool(c.get("internal")),
            named_step=_compile(c["id"], "named_step", c.get("named_step")),
            signals_needed=int(c.get("signals_needed", 1)),
        )
    rules: dict[str, Rule] = {}
    for raw in data["rules"]:
        rule = build_rule(raw, controls, "packaged")
        rules[rule.id] = rule
    if custom_rules is not None:
        if not isinstance(custom_rules, list):
            raise ValueError("custom rules must be a list of rule mappings")
        for raw in custom_rules:
            rule = build_rule(raw, controls, "custom")
            rules[rule.id] = rule  # same id overrides the packaged rule
    required = list(required_controls or [])
    for cid in required:
        if cid not in controls or controls[cid].internal:
            raise ValueError(f"required control {cid!r} is not in the catalogue")
    knowledge = load_knowledge_base(SCAN_CONTROLS)
    return Catalogue(
        version=str(data["version"]), controls=controls, rules=list(rules.values()),
        knowledge=knowledge, not_deploy=_not_deploy(data["not_deploy"]),
        programs=knowledge.programs() | frozenset(data["programs"]), required_controls=required,
    )


def _not_deploy(raw: dict) -> NotDeploy:
    return NotDeploy(
        step_types=_compile("not_deploy", "step_types", raw["step_types"]),
        programs=frozenset(raw["programs"]),
        housekeeping=frozenset(raw["housekeeping"]),
        orbs=_compile("not_deploy", "orbs", raw["orbs"]),
        orb_commands=_compile("not_deploy", "orb_commands", raw["orb_commands"]),
        names=_compile("not_deploy", "names", raw["names"]),
        work_names=_compile("not_deploy", "work_names", raw["work_names"]),
        shipping_words=_compile("not_deploy", "shipping_words", raw["shipping_words"]),
        teardowns={program: frozenset(subcommands) for program, subcommands in raw["teardowns"].items()},
        local_clusters={program: tuple(tuple(s.split()) for s in subcommands)
                        for program, subcommands in raw["local_clusters"].items()},
    )


def load_rules_file(text: str) -> list[dict]:
    """Read a user rules file: either a list of rules or a mapping with a ``rules`` list."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"rules file is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict):
        data = data.get("rules")
    if not isinstance(data, list):
        raise ValueError("rules file must be a list of rules or a mapping with a 'rules' list")
    return data
