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
from source_circleci_ccm.controls import matching
from source_circleci_ccm.controls.config_model import (MAX_COMMANDS, MAX_MATRIX_JOBS, MAX_WORKFLOW_JOBS, Workflow,
                                                      build_model)
from source_circleci_ccm.controls.safe_yaml import MAX_EXPANDED_NODES
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
    small, large = chain(MAX_WORKFLOW_JOBS // 6), chain(MAX_WORKFLOW_JOBS * 2 // 3)
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


_DEPLOY_JOB = "version: 2.1\njobs:\n  d:\n    docker: [{image: x}]\n    steps: [{run: ./deploy.sh prod}]\n"


def _plain_jobs(n: int) -> str:
    """n jobs of their own, each requiring the one before."""
    jobs = "".join(f"  j{i}:\n    docker: [{{image: x}}]\n    steps: [{{run: make}}]\n" for i in range(n))
    entries = "".join(f"      - j{i}: {{requires: [j{i - 1}]}}\n" for i in range(1, n))
    return f"version: 2.1\njobs:\n{jobs}workflows:\n  w:\n    jobs:\n      - j0\n{entries}"


def _chained_deploys(n: int) -> str:
    """One deploy job invoked n times under other names, each requiring the one before."""
    entries = "".join(f"      - d: {{name: d{i}, requires: [d{i - 1}]}}\n" for i in range(1, n))
    return f"{_DEPLOY_JOB}workflows:\n  w:\n    jobs:\n      - d: {{name: d0}}\n{entries}"


def _workflows_listing_every_job(n: int) -> str:
    """n workflows, each listing every one of 50 deploy jobs."""
    jobs = "".join(f"  j{i}:\n    docker: [{{image: x}}]\n    steps: [{{run: ./deploy.sh}}]\n" for i in range(50))
    listing = "".join(f"      - j{i}\n" for i in range(50))
    return f"version: 2.1\njobs:\n{jobs}workflows:\n" + "".join(f"  w{k}:\n    jobs:\n{listing}" for k in range(n))


def _approvals(n: int) -> str:
    """n deploys, each held by its own approval, which waits for the deploy before."""
    entries = "".join(f"      - hold{i}: {{type: approval, requires: [d{i - 1}]}}\n      - d: {{name: d{i}, requires: [hold{i}]}}\n"
                      for i in range(1, n))
    return f"{_DEPLOY_JOB}workflows:\n  w:\n    jobs:\n      - d: {{name: d0}}\n{entries}"


SHAPES = {"plain jobs": (_plain_jobs, 1), "chained deploys": (_chained_deploys, 1),
          "workflows listing every job": (_workflows_listing_every_job, 50), "approvals": (_approvals, 2)}


def _one_megabyte(make) -> str:
    n = 64
    while len(make(n)) < 1024 * 1024:
        n = n * 5 // 4
    return make(n)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_one_megabyte_config_of_many_jobs_evaluates_in_under_two_seconds(catalogue, shape):
    text = _one_megabyte(SHAPES[shape][0])
    elapsed = _best_time(lambda: evaluate_config(text, catalogue), repeat=2)
    assert elapsed < 2.0, elapsed
    assert all(r.status == "unknown" for r in evaluate_config(text, catalogue).values())  # past a budget, and says so


@pytest.mark.parametrize("shape", SHAPES)
def test_evaluating_many_jobs_takes_time_linear_in_their_number(catalogue, shape):
    make, jobs_per_step = SHAPES[shape]
    sizes = [MAX_WORKFLOW_JOBS // 8 // jobs_per_step, MAX_WORKFLOW_JOBS // 2 // jobs_per_step]  # within the budgets
    timings = [_best_time(lambda: evaluate_config(make(n), catalogue)) for n in sizes]
    assert timings[1] < 8 * max(timings[0], 0.01), timings  # 4x the jobs: ~4x the time, not 16x


def test_the_steps_of_a_job_invoked_under_many_names_are_matched_once(catalogue, monkeypatch):
    calls = []
    match_content = matching._match_content
    monkeypatch.setattr(matching, "_match_content", lambda rule, unit: calls.append(unit.is_job) or match_content(rule, unit))
    counts = []
    for n in (100, 400):
        calls.clear()
        evaluate_config(_chained_deploys(n), catalogue)
        counts.append(len(calls))
    assert counts[0] == counts[1]  # the job and its step look alike in every invocation: matched once, not per name


def test_a_config_invoking_more_workflow_jobs_than_the_budget_is_unknown_with_the_reason(catalogue):
    results = evaluate_config(_chained_deploys(MAX_WORKFLOW_JOBS + 1), catalogue)
    for control in ("secret_scanning", "tests_before_deploy", "approval_gate_before_deploy"):
        assert results[control].status == "unknown" and str(MAX_WORKFLOW_JOBS) in results[control].reason


def test_a_config_of_more_yaml_nodes_than_the_budget_is_unknown_with_the_reason(catalogue):
    text = _plain_jobs(MAX_EXPANDED_NODES // 4)
    results = evaluate_config(text, catalogue)
    assert all(r.status == "unknown" and str(MAX_EXPANDED_NODES) in r.reason for r in results.values())


def test_a_matrix_of_a_huge_grid_with_many_exclusions_expands_in_time_linear_in_its_exclusions(catalogue):
    def matrix(excluded: int) -> str:
        grid = {f"p{i}": list(range(8)) for i in range(8)}  # 16 million combinations
        combos = [dict(zip(grid, (k // 8 ** i % 8 for i in reversed(range(8))))) for k in range(excluded)]
        entry = {"d": {"matrix": {"parameters": grid, "exclude": combos}}}
        return json.dumps({"version": 2.1, "jobs": {"d": {"docker": [{"image": "x"}], "steps": [{"run": "make"}]}},
                           "workflows": {"w": {"jobs": [entry]}}})
    timings = [_best_time(lambda: evaluate_config(matrix(n), catalogue)) for n in (2000, 8000)]
    assert timings[1] < 8 * max(timings[0], 0.01), timings
    [workflow] = build_model(json.loads(matrix(100))).workflows
    assert len(workflow.jobs) == MAX_MATRIX_JOBS and workflow.jobs[0].name == "d-0-0-0-0-0-1-4-4"  # the 101st


def test_eval_cannot_read_more_commands_than_the_budget_it_is_given():
    # each `eval $A` would be a hundred commands: the reader stops at its limit, as for any other step
    run = "A='" + "mvn x; " * 100 + "'; " + "eval $A; " * 3000
    assert len(commands(run, limit=1000)) == 1000
