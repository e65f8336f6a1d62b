"""Per-project CircleCI 2.1 configs built from realistic templates, with ground truth of their controls.

A config is built as job/workflow definitions; ``source`` (as written, with orbs) and ``compiled``
(orbs expanded into plain jobs/steps) YAML are rendered from them, and the controls truth is derived
from the same definitions, so all three agree by construction.
"""
from __future__ import annotations

import random

import yaml

SCAN_TAGS = ("dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning")
CONTROL_KEYS = SCAN_TAGS + (
    "automated_tests",
    "has_deploy",
    "approval_gate_before_deploy",
    "tests_before_deploy",
    "scans_before_deploy",
)

ORBS = {
    "snyk": "snyk/snyk@2.1.0",
    "sonarcloud": "sonarsource/sonarcloud@2.0.0",
    "aws-ecs": "circleci/aws-ecs@4.0.0",
}


class Step:
    __slots__ = ("source", "compiled", "name", "command", "tags", "kind")

    def __init__(self, source, compiled, name, command=None, tags=(), kind="test"):
        self.source = source
        self.compiled = compiled
        self.name = name
        self.command = command
        self.tags = frozenset(tags)
        self.kind = kind  # v1.1 action type


def checkout():
    return Step("checkout", "checkout", "Checkout code", kind="checkout")


def run(name, command, tags=()):
    item = {"run": {"name": name, "command": command}}
    return Step(item, item, name, command, tags)


def orb_step(orb_cmd, params, command, tags=()):
    return Step({orb_cmd: params} if params else orb_cmd, {"run": {"name": orb_cmd, "command": command}}, orb_cmd, command, tags)


def store_test_results():
    item = {"store_test_results": {"path": "test-results"}}
    return Step(item, item, "Uploading test results", kind="upload")


def setup_remote_docker():
    item = {"setup_remote_docker": {"docker_layer_caching": True}}
    return Step(item, item, "Setup a remote Docker engine", kind="infrastructure")


class JobDef:
    def __init__(self, name, steps=(), image="cimg/base:2024.01", resource_class="medium", requires=(),
                 context=None, branch_only=None, type="build", parallelism=1, orb_job=None, orb_params=None):
        self.name = name
        self.type = type
        self.steps = list(steps)
        self.image = image
        self.resource_class = resource_class
        self.requires = list(requires)
        self.context = context
        self.branch_only = branch_only
        self.parallelism = parallelism
        self.orb_job = orb_job  # source uses an orb job (e.g. aws-ecs/deploy-service-update)
        self.orb_params = orb_params or {}
        self.tags = frozenset(t for s in self.steps for t in s.tags)

    @property
    def executor_type(self):
        return "machine" if self.image.startswith("ubuntu-") else "docker"

    def job_body(self, compiled: bool):
        body = {}
        if self.executor_type == "machine":
            body["machine"] = {"image": self.image}
        else:
            body["docker"] = [{"image": self.image}]
        body["resource_class"] = self.resource_class
        if self.parallelism > 1:
            body["parallelism"] = self.parallelism
        body["steps"] = [s.compiled if compiled else s.source for s in self.steps]
        return body

    def workflow_entry(self, compiled: bool):
        opts = {}
        key = self.name
        if self.orb_job and not compiled:
            key = self.orb_job
            opts["name"] = self.name
            opts.update(self.orb_params)
        if self.type == "approval":
            opts["type"] = "approval"
        if self.requires:
            opts["requires"] = list(self.requires)
        if self.context:
            opts["context"] = [self.context]
        if self.branch_only:
            opts["filters"] = {"branches": {"only": [self.branch_only]}}
        return {key: opts} if opts else key


class WorkflowDef:
    def __init__(self, name, jobs, schedule=None):
        self.name = name
        self.jobs = jobs  # topological order
        self.schedule = schedule
        self.by_name = {j.name: j for j in jobs}

    def ancestors(self, job_name):
        seen = set()
        stack = list(self.by_name[job_name].requires)
        while stack:
            n = stack.pop()
            if n in seen or n not in self.by_name:
                continue
            seen.add(n)
            stack.extend(self.by_name[n].requires)
        return seen


LANGS = {
    "node": dict(image="cimg/node:20.11", install="npm ci", build="npm run build",
                 test="npm test -- --ci --reporters=default --reporters=jest-junit", lint="npm run lint",
                 typecheck="npx tsc --noEmit", audit="npm audit --audit-level=high"),
    "python": dict(image="cimg/python:3.12", install="pip install -r requirements.txt", build="python -m build",
                   test="pytest --junitxml=test-results/junit.xml", lint="ruff check .",
                   typecheck="mypy src", audit="pip-audit -r requirements.txt"),
    "go": dict(image="cimg/go:1.22", install="go mod download", build="go build ./...",
               test="gotestsum --junitfile test-results/junit.xml", lint="golangci-lint run",
               typecheck="go vet ./...", audit="govulncheck ./..."),
}

# Profiles: which controls a project's config really has.
PROFILES = {
    "fanout": dict(tests=True, dep="snyk", secret=True, deploy="ecs", gate=True, fanout=True),
    "full": dict(tests=True, dep="snyk", sast="sonar", secret=True, image=True, deploy="ecs", gate=True),
    "no-gate": dict(tests=True, dep="audit", sast="semgrep", image=True, deploy="script", gate=False),
    "nightly-scans": dict(tests=True, dep="snyk", sast="semgrep", secret=True, deploy="script", gate=True,
                          scans_in_main=False),
    "minimal": dict(tests=True, deploy="script", gate=False),
    "library": dict(tests=True, dep="audit", secret=True, deploy=None),
    "infra": dict(tests=False, iac=True, secret=True, deploy="terraform", gate=True),
    "decoy": dict(tests=True, decoy=True, deploy="script", gate=False, tests_before_deploy=False),
}
PROFILE_ORDER = ["full", "no-gate", "nightly-scans", "minimal", "library", "infra", "decoy"]


class ProjectConfig:
    def __init__(self, profile: str, repo: str, rng: random.Random, fanout_jobs: int = 25):
        p = dict(PROFILES[profile])
        self.profile = profile
        lang_name = "go" if profile == "infra" else rng.choice(sorted(LANGS))
        L = LANGS[lang_name]
        self.lang = lang_name
        img = L["image"]
        self.orbs = {}
        scans_in_main = p.get("scans_in_main", True)

        def base_steps():
            return [checkout(), run("Install dependencies", L["install"])]

        main_jobs = []
        pre_deploy = []
        if profile == "infra":
            main_jobs.append(JobDef("plan", [checkout(), run("Terraform init", "terraform -chdir=infra init -input=false"),
                                             run("Terraform plan", "terraform -chdir=infra plan -out=tfplan")],
                                    image="hashicorp/terraform:1.7"))
            root = "plan"
        else:
            main_jobs.append(JobDef("build", base_steps() + [run("Build", L["build"])], image=img))
            root = "build"

        if p.get("tests"):
            test_steps = base_steps() + [run("Run tests", L["test"], tags=("automated_tests",)), store_test_results()]
            if p.get("fanout"):
                shards = max(1, fanout_jobs - 5)
                names = []
                for i in range(1, shards + 1):
                    n = f"test-shard-{i}"
                    names.append(n)
                    main_jobs.append(JobDef(n, test_steps, image=img, requires=[root]))
                main_jobs.append(JobDef("coverage-report", [checkout(), run("Merge coverage", "npx nyc merge coverage .nyc_output/out.json")],
                                        image=img, requires=names))
                pre_deploy.append("coverage-report")
            else:
                par = 4 if rng.random() < 0.4 else 1
                main_jobs.append(JobDef("test", test_steps, image=img, requires=[root], parallelism=par,
                                        resource_class=rng.choice(["medium", "large"])))
                if p.get("tests_before_deploy", True):
                    pre_deploy.append("test")

        scan_jobs = []
        if p.get("dep") == "snyk":
            self.orbs["snyk"] = ORBS["snyk"]
            scan_jobs.append(JobDef("dependency-scan", base_steps() + [
                orb_step("snyk/scan", {"severity-threshold": "high", "fail-on-issues": True},
                         "snyk test --severity-threshold=high", tags=("dependency_scanning",))],
                image=img, context="security-scanners"))
        elif p.get("dep") == "audit":
            scan_jobs.append(JobDef("dependency-audit", base_steps() + [
                run("Audit dependencies", L["audit"], tags=("dependency_scanning",))], image=img))
        if p.get("sast") == "semgrep":
            scan_jobs.append(JobDef("sast", [checkout(), run("Semgrep", "semgrep ci", tags=("sast",))],
                                    image="returntocorp/semgrep:1.60.0", context="security-scanners"))
        elif p.get("sast") == "sonar":
            self.orbs["sonarcloud"] = ORBS["sonarcloud"]
            scan_jobs.append(JobDef("sonarcloud", [checkout(), orb_step(
                "sonarcloud/scan", {}, "sonar-scanner -Dsonar.qualitygate.wait=true", tags=("sast",))],
                image=img, context="security-scanners"))
        if p.get("secret"):
            scan_jobs.append(JobDef("secret-scan", [checkout(), run("Gitleaks", "gitleaks detect --source . --redact --verbose",
                                                                     tags=("secret_scanning",))],
                                    image="zricethezav/gitleaks:v8.18.2"))
        if p.get("image"):
            scan_jobs.append(JobDef("image-scan", [checkout(), setup_remote_docker(),
                                                   run("Build image", f"docker build -t {repo}:$CIRCLE_SHA1 ."),
                                                   run("Trivy scan", f"trivy image --exit-code 1 --severity HIGH,CRITICAL {repo}:$CIRCLE_SHA1",
                                                       tags=("image_scanning",))], image="cimg/base:2024.01"))
        if p.get("iac"):
            scan_jobs.append(JobDef("iac-scan", [checkout(), run("Checkov", "checkov -d infra/ --framework terraform",
                                                                  tags=("iac_scanning",))],
                                    image="bridgecrew/checkov:3.2.0"))
        if p.get("decoy"):
            main_jobs.append(JobDef("security-scan", [checkout(), run("Security scan", 'echo "TODO: enable snyk once the licence arrives"')],
                                    image=img, requires=[root]))
            pre_deploy.append("security-scan")

        aux = []
        if scans_in_main:
            for j in scan_jobs:
                j.requires = [root]
                main_jobs.append(j)
                pre_deploy.append(j.name)
        elif scan_jobs:
            aux.append(WorkflowDef("security-nightly", scan_jobs, schedule="0 3 * * *"))

        deploy = p.get("deploy")
        if deploy:
            reqs = pre_deploy or [root]
            if p.get("gate"):
                main_jobs.append(JobDef("hold-production", type="approval", requires=reqs, branch_only="main"))
                reqs = ["hold-production"]
            if deploy == "ecs":
                self.orbs["aws-ecs"] = ORBS["aws-ecs"]
                dj = JobDef("deploy-production", [orb_step("aws-ecs/update-service", {},
                                                           f"aws ecs update-service --cluster production --service {repo} --force-new-deployment",
                                                           tags=("deploy",))],
                            image="cimg/aws:2024.03", requires=reqs, context="prod-deploy", branch_only="main",
                            orb_job="aws-ecs/deploy-service-update",
                            orb_params={"cluster": "production", "service-name": repo, "family": repo})
            elif deploy == "terraform":
                dj = JobDef("apply", [checkout(), run("Terraform apply", "terraform -chdir=infra apply -auto-approve tfplan",
                                                      tags=("deploy",))],
                            image="hashicorp/terraform:1.7", requires=reqs, context="prod-deploy", branch_only="main")
            else:
                dj = JobDef("deploy-production", [checkout(), run("Deploy", "./deploy.sh production", tags=("deploy",))],
                            image=img, requires=reqs, context="prod-deploy", branch_only="main")
            main_jobs.append(dj)

        main_name = "build-test-deploy" if deploy else "build-and-test"
        self.main = WorkflowDef(main_name, main_jobs)
        lint = WorkflowDef("lint", [
            JobDef("lint", base_steps() + [run("Lint", L["lint"])], image=img),
            JobDef("typecheck", base_steps() + [run("Type check", L["typecheck"])], image=img),
            JobDef("format-check", [checkout(), run("Check formatting", "pre-commit run --all-files")], image=img),
            JobDef("license-check", [checkout(), run("Check licences", "npx license-checker --production --failOn GPL")],
                   image="cimg/node:20.11"),
        ])
        docs = WorkflowDef("docs", [
            JobDef("build-docs", [checkout(), run("Build docs", "mkdocs build --strict")], image="cimg/python:3.12"),
            JobDef("spellcheck", [checkout(), run("Spellcheck", "codespell docs/")], image="cimg/python:3.12"),
            JobDef("link-check", [checkout(), run("Check links", "lychee site/")], image="cimg/base:2024.01", requires=["build-docs"]),
        ])
        self.aux = [lint] + (aux if aux else [docs])
        self.workflows = [self.main] + self.aux
        self.source_yaml = self._render(compiled=False)
        self.compiled_yaml = self._render(compiled=True)
        self.controls = self._controls()

    def _render(self, compiled: bool) -> str:
        doc = {"version": 2 if compiled else 2.1}
        if self.orbs and not compiled:
            doc["orbs"] = dict(self.orbs)
        jobs = {}
        for wf in self.workflows:
            for j in wf.jobs:
                if j.type == "approval" or (j.orb_job and not compiled):
                    continue
                jobs.setdefault(j.name, j.job_body(compiled))
        doc["jobs"] = jobs
        wfs = {}
        if compiled:
            wfs["version"] = 2
        for wf in self.workflows:
            body = {}
            if wf.schedule:
                body["triggers"] = [{"schedule": {"cron": wf.schedule, "filters": {"branches": {"only": ["main"]}}}}]
            body["jobs"] = [j.workflow_entry(compiled) for j in wf.jobs]
            wfs[wf.name] = body
        doc["workflows"] = wfs
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)

    def _controls(self) -> dict:
        tags = set()
        for wf in self.workflows:
            for j in wf.jobs:
                tags |= j.tags
        c = {k: (k in tags) for k in SCAN_TAGS}
        c["automated_tests"] = "automated_tests" in tags
        deploys = [(wf, j) for wf in self.workflows for j in wf.jobs if "deploy" in j.tags]
        c["has_deploy"] = bool(deploys)
        # As the corpus labels them: a gate on the path of at least one deploy job; tests and scans before every one.
        gate = False
        tests = scans = bool(deploys)
        for wf, j in deploys:
            anc = [wf.by_name[n] for n in wf.ancestors(j.name)]
            gate = gate or any(a.type == "approval" for a in anc)
            tests = tests and any("automated_tests" in a.tags for a in anc)
            scans = scans and any(a.tags & set(SCAN_TAGS) for a in anc)
        c["approval_gate_before_deploy"] = gate
        c["tests_before_deploy"] = tests
        c["scans_before_deploy"] = scans
        return c


def jobs_for_branch(wf: WorkflowDef, branch: str) -> list:
    """Jobs of a workflow that run on ``branch`` (branch filters drop jobs; dependants of dropped jobs drop too)."""
    kept = {}
    for j in wf.jobs:
        if j.branch_only and j.branch_only != branch:
            continue
        if any(r not in kept for r in j.requires):
            continue
        kept[j.name] = j
    return list(kept.values())
