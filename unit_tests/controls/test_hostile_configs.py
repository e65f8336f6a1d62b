"""Whoever can push a commit shapes the configuration: no configuration may stall a sync.

Evaluation time grows linearly with the configuration: every rule pattern runs on RE2, the knowledge base is
looked up by word, and a `run` is read in one pass with a bounded number of commands.
"""
import json
import re
import time

import pytest

from source_circleci_ccm.controls import evaluate_config, load_catalogue
from source_circleci_ccm.controls.catalogue import MATCHER_FIELDS
from source_circleci_ccm.controls.config_model import MAX_COMMANDS, Workflow, build_model
from source_circleci_ccm.controls.shell import commands

_LITERAL = re.compile(r"[A-Za-z][\w.:-]*")


def _best_time(function, repeat: int = 3) -> float:
    """The fastest of a few runs: the machine is shared, and a linear-time claim is about the work, not the noise."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _config(runs: list[str]) -> str:
    steps = "".join(f"      - run: {json.dumps(text)}\n" for text in runs)
    return f"version: 2.1\njobs:\n  build:\n    docker: [{{image: x}}]\n    steps:\n{steps}workflows:\n  w: {{jobs: [build]}}\n"


def _patterns(catalogue):
    for rule in catalogue.rules:
        for name in (*MATCHER_FIELDS, "unless"):
            if getattr(rule, name) is not None:
                yield f"{rule.id}.{name}", getattr(rule, name)
        for pname, condition in rule.parameters.items():
            for key in ("matches", "not"):
                if key in condition:
                    yield f"{rule.id}.parameters.{pname}.{key}", condition[key]
    for control in catalogue.controls.values():
        if control.named_step is not None:
            yield f"{control.id}.named_step", control.named_step
    for name in ("step_types", "orbs", "orb_commands", "names"):
        yield f"not_deploy.{name}", getattr(catalogue.not_deploy, name)


def _adversarial(pattern_text: str, size: int) -> str:
    """The pattern's own alternatives' words, repeated without ever completing a match the way it wants."""
    words = _LITERAL.findall(pattern_text.replace("\\s", " ").replace("\\b", " ").replace("\\w", "w"))
    unit = " ".join(words) + " "
    return (unit * (size // len(unit) + 1))[:size]


def test_every_catalogue_pattern_searches_adversarial_text_built_from_its_alternatives_in_linear_time(catalogue):
    slow = {}
    for name, pattern in _patterns(catalogue):
        text = _adversarial(pattern.pattern, 256 * 1024)
        start = time.perf_counter()
        pattern.search(text)
        elapsed = time.perf_counter() - start
        if elapsed > 0.25:  # linear: a few ms; the old backtracking rules took seconds at this size
            slow[name] = round(elapsed, 3)
    assert not slow


def test_every_knowledge_base_word_repeated_is_read_and_looked_up_in_linear_time(catalogue):
    knowledge = catalogue.knowledge
    slow = {}
    for tool in knowledge.tools:
        words = [*tool.executables, *tool.subcommands, *(t for ts in tool.tasks.values() for t in ts),
                 *tool.images, *(b for t in tool.tasks for b in knowledge.build_tools.get(t, (t,)))]
        text = _adversarial(" ".join(words) + " npm run docker run sh -c", 64 * 1024)
        start = time.perf_counter()
        for command in commands(text):
            knowledge.command_hits(command)
        elapsed = time.perf_counter() - start
        if elapsed > 0.25:
            slow[tool.id] = round(elapsed, 3)
    assert not slow


def test_one_megabyte_adversarial_config_evaluates_in_under_two_seconds(catalogue):
    runs = [_adversarial(pattern.pattern, 32 * 1024) for _, pattern in _patterns(catalogue)]
    runs += [("mvn " * 8192), ("gradle " * 4096), ("kubectl " * 4096), ("veracode " * 4096), ("npm run " * 4096),
             ("sh -c '" * 4096), ("docker run " * 4096), ('"\\' * 16384)]
    text = _config(runs)
    while len(text) < 1024 * 1024:
        runs += runs[: 8]
        text = _config(runs)
    elapsed = _best_time(lambda: evaluate_config(text, catalogue), repeat=2)
    assert len(text) >= 1024 * 1024 and elapsed < 2.0, elapsed
    assert set(evaluate_config(text, catalogue)) == set(catalogue.pipeline_controls())


def test_a_workflow_of_many_jobs_each_requiring_the_one_before_is_modelled_in_linear_time():
    def chain(size: int) -> dict:
        jobs = [{"build": {"name": f"j{i}", "requires": [f"j{i - 1}"]}} for i in range(1, size)]
        return {"version": 2.1, "jobs": {"build": {"docker": [{"image": "x"}], "steps": [{"run": "make"}]}},
                "workflows": {"w": {"jobs": [{"build": {"name": "j0"}}, *jobs]}}}
    small, large = chain(1000), chain(4000)
    timings = [_best_time(lambda: build_model(data), repeat=2) for data in (small, large)]
    assert timings[1] < 8 * max(timings[0], 0.01), timings  # 4x the jobs: ~4x the time, not 16x


def _workflow(entries: list[dict]) -> Workflow:
    [workflow] = build_model({"version": 2.1, "jobs": {"d": {"docker": [{"image": "x"}], "steps": [{"run": "make"}]}},
                              "workflows": {"w": {"jobs": entries}}}).workflows
    return workflow


def _calls_to_settle_upstream(workflow: Workflow) -> int:
    calls = []
    workflow.first_upstream(lambda job: calls.append(job) or (job.name if job.is_approval else None))
    return len(calls)


@pytest.mark.parametrize("shape", ["chain", "fan-in", "alias fan-in"])
def test_what_runs_upstream_of_every_job_is_settled_in_one_pass_over_the_requires_graph(shape):
    def entries(n: int) -> list[dict]:
        if shape == "chain":  # each job requires the one before: walking each job's ancestry is quadratic
            return [{"d": {"name": "j0"}}] + [{"d": {"name": f"j{i}", "requires": [f"j{i - 1}"]}} for i in range(1, n)]
        if shape == "fan-in":  # every job requires every earlier approval
            holds = [{f"h{i}": {"type": "approval"}} for i in range(n)]
            return holds + [{"d": {"name": f"j{i}", "requires": [f"h{k}" for k in range(i % 8)]}} for i in range(n)]
        return ([{"d": {"name": "m", "matrix": {"parameters": {"v": list(range(n))}}}}]  # n jobs require n expansions
                + [{"d": {"name": f"j{i}", "requires": ["m"]}} for i in range(n)])
    small, large = (_calls_to_settle_upstream(_workflow(entries(n))) for n in (500, 2000))
    assert large <= 4 * small + 8, (small, large)


@pytest.mark.parametrize("word", ["mvn ", "gradle ", "kubectl ", "veracode "])
def test_the_once_quadratic_commands_take_time_linear_in_their_length(catalogue, word):
    timings = [_best_time(lambda: evaluate_config(_config([word * (size // len(word))]), catalogue))
               for size in (60_000, 240_000)]
    assert timings[1] < 0.5 and timings[1] < 8 * max(timings[0], 0.01), timings  # 4x the text: ~4x the time


def test_custom_rule_with_catastrophic_backtracking_pattern_still_runs_in_linear_time():
    catalogue = load_catalogue([{"id": "sca.nested", "control": "dependency_scanning", "step_name": "^(a+)+$"}])
    text = _config([]).replace("    steps:\n", f"    steps:\n      - run: {{name: {'a' * 200_000}!, command: make}}\n")
    start = time.perf_counter()
    results = evaluate_config(text, catalogue)
    assert time.perf_counter() - start < 1.0
    assert results["dependency_scanning"].status == "fail"


def test_custom_rule_with_look_around_is_rejected_naming_the_regex_engine():
    with pytest.raises(ValueError, match="RE2"):
        load_catalogue([{"id": "sca.look", "control": "dependency_scanning", "run": "snyk(?! --help)"}])


def test_a_config_running_more_commands_than_the_budget_is_unknown_with_the_reason(catalogue):
    results = evaluate_config(_config(["true\n" * (MAX_COMMANDS + 10), "gitleaks detect"]), catalogue)
    assert results["secret_scanning"].status == "unknown"
    assert str(MAX_COMMANDS) in results["secret_scanning"].reason
