"""Is a workflow job a deploy?  Its commands, orbs, step names, job name, contexts and filters, weighed together.

A catalogue `deploy` rule without a `signal` is strong evidence on its own: a deploy command (`docker push`,
`helm upgrade`, `./deploy.sh`), a deploy orb job or command, a step named as a deploy.  A rule with a `signal`
is weak: a job named `release` may only draft release notes, a `production` context may only be read, and a
`main`-only filter fits a lint job as well.  Weak signals of the deploy control's `signals_needed` different
kinds make a deploy together, on a job that does something besides what the catalogue's `not_deploy` lists
(notifications, newsletters, caches, artifact, test-result and coverage uploads, steps that build, test or lint),
that does not hand what it made on to a later job through the workspace, and whose name does not say it is one
of those.  A name that says so (`deploy-notify`, "Publish test results") is no deploy signal either,
and a deploy the job tears down again (`terraform apply` ... `terraform destroy`) is test infrastructure, as is an
orb's apply job whose workflow runs the same orb's teardown job with the same settings, and what a job deploys after
starting a Kubernetes cluster on the CI machine (`minikube start`, `kind create cluster`).
"""
from __future__ import annotations

from .catalogue import DEPLOY, SCAN_CONTROLS, Catalogue, NotDeploy, Rule
from .config_model import RUN_STEPS, Unit, WorkflowJob, is_step_list
from .matching import Matcher, unit_evidence
from .shell import NO_OP_PROGRAMS, SETUP_PROGRAMS

COMBINED_RULE_ID = "deploy.combined-signals"


def job_deploy_evidence(catalogue: Catalogue, wj: WorkflowJob, matcher: Matcher) -> list[dict]:
    """Why ``wj`` deploys: its strong evidence (one record per unit), or one record of the weak signals that
    together make it a deploy (`signals` lists each); empty when it does not deploy."""
    not_deploy, rules = catalogue.not_deploy, catalogue.rules_for(DEPLOY)
    strong: list[dict] = []
    weak: dict[str, tuple[Rule, Unit, str]] = {}  # signal kind -> first rule, unit and text that showed it
    local_cluster_at = next((position for position, unit in enumerate(wj.units)
                             if any(_starts_local_cluster(not_deploy, c.argv) for c in unit.commands)), len(wj.units))
    for position, unit in enumerate(wj.units[:local_cluster_at]):  # from there on, deploys go to that cluster
        unit_has_strong = False
        for rule, matched in matcher.matches(rules, unit):
            if ((unit_has_strong and rule.signal is None) or rule.signal in weak
                    or _names_a_non_deploy(rule, unit, not_deploy)
                    or (rule.step_type and _uploads_reports(unit, not_deploy))
                    or _torn_down_later(not_deploy, wj, position, matched)):
                continue
            if rule.signal is None:
                strong.append(unit_evidence(unit, wj, rule.id, matched))
                unit_has_strong = True
            else:
                weak[rule.signal] = (rule, unit, matched)
    if strong:
        return strong
    job = wj.units[0]
    if (len(weak) < catalogue.controls[DEPLOY].signals_needed or not_deploy.names.search(job.job)
            or _hands_its_output_on(wj) or not _does_more_than_non_deploy_work(catalogue, wj, matcher)):
        return []
    signals = [{"signal": kind, "rule_id": rule.id, "where": unit.where, "matched": matched}
               for kind, (rule, unit, matched) in weak.items()]
    summary = " + ".join(f"{s['signal']}: {s['matched']}" for s in signals)
    return [unit_evidence(job, wj, COMBINED_RULE_ID, summary, signals=signals)]


def _names_a_non_deploy(rule: Rule, unit: Unit, not_deploy: NotDeploy) -> bool:
    """A job, step or approval name that ``rule`` looked at but says a non-deploy activity (`deploy-notify`,
    `newsletter-approval`)."""
    names = (([unit.job, unit.job_key] if rule.job_name else []) + ([unit.step] if rule.step_name and unit.step else [])
             + (list(unit.approvals) if rule.approval else []))
    return any(not_deploy.names.search(name) for name in names)


def fixture_applies(not_deploy: NotDeploy, jobs: list[WorkflowJob]) -> set[int]:
    """Indexes of orb jobs that apply infrastructure (`terraform/apply`) which a teardown job of the same orb
    (`terraform/destroy`), given the same parameters, destroys in the same workflow: a test fixture's apply ...
    inspect ... destroy, as a job that tears down what it applied is.  One pass over the workflow."""
    def orb_call(job: WorkflowJob) -> tuple[str, str, str] | None:
        alias, slash, command = job.key.partition("/")
        orb = job.units[0].orb if job.units else None
        return (alias, command, orb.rsplit("/", 1)[-1]) if slash and orb else None

    def setting(job: WorkflowJob) -> str:  # what the job is given besides the steps to run around it
        return repr(sorted((k, repr(v)) for k, v in job.params.items() if not is_step_list(v)))

    teardowns = set()
    for job in jobs:
        call = orb_call(job)
        if call and call[1] in not_deploy.teardowns.get(call[2], ()):
            teardowns.add((call[0], setting(job)))
    return {job.index for job in jobs if teardowns and (call := orb_call(job))
            and call[1] not in not_deploy.teardowns.get(call[2], ()) and (call[0], setting(job)) in teardowns}


def _starts_local_cluster(not_deploy: NotDeploy, argv: tuple[str, ...]) -> bool:
    """`minikube start`, `kind create cluster`: a Kubernetes cluster on the CI machine, for the job's tests."""
    return any(argv[1:1 + len(words)] == words for words in not_deploy.local_clusters.get(argv[0], ()))


def _uploads_reports(unit: Unit, not_deploy: NotDeploy) -> bool:
    """A step whose commands run a report uploader (`cc-test-reporter upload-coverage`): a deploy step so used
    (CircleCI's old `deploy:` ran last, after parallel containers) ships coverage, not the product."""
    return any(c.argv[0] in not_deploy.programs for c in unit.commands)


def _torn_down_later(not_deploy: NotDeploy, wj: WorkflowJob, position: int, matched: str) -> bool:
    """The command line ``matched`` in unit ``position`` deploys with a program (`terraform apply`) whose teardown
    (`terraform destroy`) the job runs after it in the same working directory: test infrastructure."""
    unit = wj.units[position]
    program = matched.split(" ", 1)[0]
    teardowns = not_deploy.teardowns.get(program)
    if not teardowns:
        return False
    deployed_at = next((i for i, c in enumerate(unit.commands) if c.line == matched), len(unit.commands))
    later = [(unit, unit.commands[deployed_at + 1:])] + [(u, u.commands) for u in wj.units[position + 1:]]
    return any(u.workdir == unit.workdir and c.argv[0] == program and len(c.argv) > 1 and c.argv[1] in teardowns
               for u, cs in later for c in cs)


def _hands_its_output_on(wj: WorkflowJob) -> bool:
    """The job persists what it made to the workspace, CircleCI's way of passing a build to a later job."""
    return any(unit.step_type == "persist_to_workspace" for unit in wj.units[1:])


def _does_more_than_non_deploy_work(catalogue: Catalogue, wj: WorkflowJob, matcher: Matcher) -> bool:
    """Some step of the job (or the orb job itself) is not housekeeping, a notification, a report upload, a
    build, test or lint step, nor a security scan ("Security Scan release" scans what is released)."""
    job = wj.units[0]
    work = ([job] if job.orb_ref else []) + wj.units[1:]
    checks = tuple(rule for control in ("automated_tests", *SCAN_CONTROLS) for rule in catalogue.rules_for(control))
    return any(not _is_non_deploy_work(catalogue.not_deploy, unit) and not _scans(catalogue, unit)
               and next(matcher.matches(checks, unit), None) is None for unit in work)


def _scans(catalogue: Catalogue, unit: Unit) -> bool:
    """The step runs a scanner the knowledge base knows, by command or orb."""
    knowledge = catalogue.knowledge
    return (any(knowledge.command_hits(c) for c in unit.commands)
            or bool(unit.orb and unit.orb_ref and knowledge.orb_hits(unit.orb, unit.orb_ref)))


def _is_non_deploy_work(not_deploy: NotDeploy, unit: Unit) -> bool:
    if unit.step and not_deploy.names.search(unit.step):
        return True
    if unit.step and not_deploy.work_names.search(unit.step) and not not_deploy.shipping_words.search(unit.step):
        return True  # "Build executable", "Run unit tests", "Lint"
    if unit.step_type in RUN_STEPS:
        return all(c.argv[0] in NO_OP_PROGRAMS or c.argv[0] in SETUP_PROGRAMS or c.argv[0] in not_deploy.programs
                   or (c.argv[0] in not_deploy.housekeeping and c.argv[1:2] != ("tag",)) for c in unit.commands)
        # (`git tag v1.2` then pushing it is how a release is cut: the corpus counts a pushed release tag)
    if unit.orb_ref:
        return bool(unit.orb and not_deploy.orbs.search(unit.orb)) or bool(not_deploy.orb_commands.search(unit.orb_ref))
    return bool(unit.step_type and not_deploy.step_types.search(unit.step_type))
