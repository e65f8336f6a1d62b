"""Deterministic data model of the simulated CircleCI account."""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import threading
import time
import uuid

from .configs import PROFILE_ORDER, ProjectConfig, jobs_for_branch

DAY = 86400.0
AGE_LIMIT = 90 * DAY
TERMINAL = ("success", "failed", "error", "canceled", "not_run", "unauthorized")

ORG_WORDS = ["acme", "globex", "initech", "umbrella", "hooli", "starkind", "wayne-ent", "tyrell", "cyberdyne",
             "soylent", "wonka", "vandelay", "massive-dynamic", "aperture", "oscorp", "gringotts"]
REPO_A = ["payments", "billing", "web", "mobile", "auth", "search", "catalog", "ledger", "gateway", "inventory",
          "notify", "reports", "platform", "analytics", "checkout", "profile", "media", "orders", "shipping", "pricing",
          "identity", "risk", "fraud", "data"]
REPO_B = ["api", "service", "app", "frontend", "worker", "lib", "cli", "infra", "ui", "core"]
FIRST = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia", "Tim",
         "Hedy", "Alan", "Katherine", "Donald", "Sophie", "John", "Anita", "Guido", "Yukihiro", "Bjarne", "Joan"]
LAST = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra",
        "Perlman", "Berners-Lee", "Lamarr", "Turing", "Johnson", "Knuth", "Wilson", "McCarthy", "Borg", "Rossum",
        "Matsumoto", "Stroustrup", "Clarke"]
CONTEXT_NAMES = ["prod-deploy", "security-scanners", "staging-deploy", "aws-prod", "aws-staging", "docker-hub",
                 "npm-publish", "slack-notify", "sonarcloud", "datadog", "pypi-publish", "gcp-prod", "gcp-staging",
                 "terraform-cloud", "github-release", "sentry", "vault", "artifactory", "codecov", "pagerduty",
                 "k8s-prod", "k8s-staging", "cloudflare", "stripe-test", "twilio", "segment", "snowflake", "okta"]
CTX_VARS = {"prod-deploy": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "DEPLOY_ROLE_ARN"],
            "security-scanners": ["SNYK_TOKEN", "SONAR_TOKEN", "SEMGREP_APP_TOKEN"],
            "docker-hub": ["DOCKERHUB_USERNAME", "DOCKERHUB_PASSWORD"]}
ENV_NAMES = ["NPM_TOKEN", "CODECOV_TOKEN", "SLACK_WEBHOOK", "SENTRY_DSN", "GITHUB_TOKEN", "DATABASE_URL",
             "API_KEY", "COVERALLS_REPO_TOKEN"]
COMMITS = ["Fix flaky test in checkout flow", "Bump dependencies", "Add retry to webhook sender",
           "Refactor config loader", "Update README", "Improve error messages", "Add metrics for queue depth",
           "Remove dead code", "Upgrade Node to 20", "Tighten IAM policy", "Add pagination to list endpoint"]
BRANCHES = ["feature/login-rework", "fix/null-deref", "chore/deps", "feature/new-dashboard", "renovate/all"]


def fmt_ts(epoch: float, ms: bool) -> str:
    d = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    if ms:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def _q(epoch: float, ms: bool) -> float:
    """Quantise an epoch to what its string form shows, so sorting by epoch == sorting the served strings."""
    return math.floor(epoch * 1000) / 1000 if ms else float(math.floor(epoch))


class Org:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.projects = []
        self.contexts = []

    def collab(self, vcs_key):
        return {"id": self.id, vcs_key: self.vcs_type, "name": self.name, "avatar_url": self.avatar_url, "slug": self.slug}


class Project:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.pipelines = []  # chronological
        self.job_counter = 0
        self.pipeline_counter = 0
        self.jobs_by_number = {}

    def api(self):
        o = self.org
        return {"slug": self.slug, "name": self.name, "id": self.id, "organization_name": o.name,
                "organization_slug": o.slug, "organization_id": o.id,
                "vcs_info": {"vcs_url": self.vcs_url, "provider": self.provider, "default_branch": "main"}}


class Pipeline:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.workflows = []

    def api(self):
        return self.d

    @property
    def readable(self):
        return not self.project.restricted and not self.aged


class Workflow:
    def __init__(self, **kw):
        self.canceled_by = None
        self.errored_by = None
        self.__dict__.update(kw)
        self.jobs = []

    @property
    def terminal(self):
        return self.status in TERMINAL

    def api(self):
        p = self.pipeline
        d = {"pipeline_id": p.id, "id": self.id, "name": self.name, "project_slug": p.project.slug,
             "status": self.status, "started_by": self.started_by, "pipeline_number": p.number,
             "created_at": fmt_ts(self.created, self.ms),
             "stopped_at": fmt_ts(self.stopped, self.ms) if self.stopped is not None else None}
        if self.canceled_by:
            d["canceled_by"] = self.canceled_by
        if self.errored_by:
            d["errored_by"] = self.errored_by
        return d


class Job:
    def __init__(self, **kw):
        self.number = None
        self.started = None
        self.stopped = None
        self.approved_by = None
        self.canceled_by = None
        self.__dict__.update(kw)

    def api(self):
        d = {"id": self.id, "name": self.name, "type": self.type, "status": self.status,
             "project_slug": self.workflow.pipeline.project.slug,
             "started_at": fmt_ts(self.started, self.ms) if self.started is not None else None,
             "stopped_at": fmt_ts(self.stopped, self.ms) if self.stopped is not None else None,
             "dependencies": list(self.deps)}
        if self.number is not None:
            d["job_number"] = self.number
        if self.type == "approval":
            d["approval_request_id"] = self.id
            if self.approved_by:
                d["approved_by"] = self.approved_by
        if self.canceled_by:
            d["canceled_by"] = self.canceled_by
        return d


V1_STATUS = {"success": "success", "failed": "failed", "canceled": "canceled", "running": "running",
             "infrastructure_fail": "infrastructure_fail", "timedout": "timedout"}


class World:
    def __init__(self, settings):
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.activity_rng = random.Random(settings.seed * 7919 + 1)
        self.anchor = settings.anchor if settings.anchor is not None else time.time()
        self.lock = threading.RLock()
        self.version = 0
        self.orgs = []
        self.projects = []
        self.pipelines_by_id = {}
        self.workflows_by_id = {}
        self.users = []
        self.users_by_id = {}
        self.contexts_by_id = {}
        self.projects_by_slug = {}
        self.orgs_by_slug = {}
        self.orgs_by_id = {}
        self._generate()
        from .governance import Governance  # imports this module

        self.gov = Governance(self)

    # ------------------------------------------------------------------ helpers
    def uid(self, rng=None):
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def ms_flag(self, rng=None):
        return (rng or self.rng).random() >= 0.12

    def bump(self):
        self.version += 1

    # --------------------------------------------------------------- generation
    def _generate(self):
        s, rng = self.s, self.rng
        for i in range(max(1, s.users)):
            first, last = FIRST[i % len(FIRST)], LAST[(i * 7 + 3) % len(LAST)]
            login = f"{first.lower()}-{last.lower()}" + (str(i // len(FIRST)) if i >= len(FIRST) else "")
            u = {"id": self.uid(), "login": login, "name": f"{first} {last}",
                 "avatar_url": f"https://avatars.githubusercontent.com/u/{rng.randint(10000, 9999999)}?v=4"}
            self.users.append(u)
            self.users_by_id[u["id"]] = u
        self.me = self.users[0]

        kinds = list(s.org_kinds) if s.org_kinds else (["gh", "circleci"] if s.orgs == 2 else ["gh", "bb", "circleci"])
        used_repo = set()
        for oi in range(s.orgs):
            kind = kinds[oi % len(kinds)]
            name = ORG_WORDS[oi % len(ORG_WORDS)] + (str(oi // len(ORG_WORDS)) if oi >= len(ORG_WORDS) else "")
            oid = self.uid()
            slug = {"gh": f"gh/{name}", "bb": f"bb/{name}", "circleci": f"circleci/{oid}"}[kind]
            vcs_type = {"gh": "github", "bb": "bitbucket", "circleci": "circleci"}[kind]
            org = Org(id=oid, name=name, slug=slug, kind=kind, vcs_type=vcs_type,
                      avatar_url=f"https://avatars.example.com/{name}.png")
            self.orgs.append(org)
            self.orgs_by_slug[slug.lower()] = org
            self.orgs_by_id[oid] = org
            for pi in range(s.projects_per_org):
                while True:
                    repo = f"{rng.choice(REPO_A)}-{rng.choice(REPO_B)}"
                    if (oi, repo) not in used_repo:
                        used_repo.add((oi, repo))
                        break
                pid = self.uid()
                if kind == "circleci":
                    pslug = f"circleci/{oid}/{pid}"
                    vcs_url, provider = f"https://gitlab.com/{name}/{repo}", "CircleCI"
                elif kind == "bb":
                    pslug = f"bb/{name}/{repo}"
                    vcs_url, provider = f"https://bitbucket.org/{name}/{repo}", "Bitbucket"
                else:
                    pslug = f"gh/{name}/{repo}"
                    vcs_url, provider = f"https://github.com/{name}/{repo}", "GitHub"
                proj = Project(id=pid, name=repo, slug=pslug, org=org, vcs_url=vcs_url, provider=provider,
                               restricted=False, settings_unavailable=False)
                org.projects.append(proj)
                self.projects.append(proj)
                self.projects_by_slug[pslug.lower()] = proj

        # profiles: first project of first org is the fan-out (matrix) project; others cycle
        order = list(PROFILE_ORDER)
        rng.shuffle(order)
        for i, proj in enumerate(self.projects):
            prof = "fanout" if i == 0 else order[(i - 1) % len(order)]
            proj.profile = prof
            proj.config = ProjectConfig(prof, proj.name, random.Random(f"{s.seed}/{proj.id}"), s.fanout_jobs)

        # restricted projects: last project of each org, round-robin
        n_restricted = len(self.orgs) if s.restricted_projects is None else s.restricted_projects
        cand = []
        for depth in range(s.projects_per_org):
            for org in self.orgs:
                idx = len(org.projects) - 1 - depth
                if idx > 0:  # never the first project of an org
                    cand.append(org.projects[idx])
        for proj in cand[:n_restricted]:
            proj.restricted = True
        # settings endpoint unavailable (404) for one readable project per org that has >=2 readable
        marked = False
        for org in self.orgs:
            readable = [p for p in org.projects if not p.restricted]
            if len(readable) >= 2:
                readable[-1].settings_unavailable = True
                marked = True
        if not marked:
            readable = [p for p in self.orgs[-1].projects if not p.restricted]
            if readable and len(self.orgs) > 1:
                readable[-1].settings_unavailable = True

        for proj in self.projects:
            self._project_extras(proj)
        for oi, org in enumerate(self.orgs):
            self._contexts(org, s.contexts_first_org if oi == 0 else s.contexts_per_org)

        # pipeline skeletons
        skel = []
        for proj in self.projects:
            for _ in range(s.pipelines_per_project):
                if rng.random() < s.aged_out_fraction:
                    age = rng.uniform(91, 140) * DAY
                else:
                    age = rng.uniform(3 * 3600, 88 * DAY)
                skel.append([proj, self.anchor - age])
        readable_proj = [p for p in self.projects if not p.restricted]
        if readable_proj and not any(p.restricted is False and self.anchor - c > AGE_LIMIT for p, c in skel):
            first = [x for x in skel if x[0] is readable_proj[0]]
            min(first, key=lambda x: x[1])[1] = self.anchor - 100 * DAY
        skel.sort(key=lambda x: -x[1])
        n = len(skel)
        cands = list(range(min(n, max(4, math.ceil(0.1 * n)))))
        k = min(len(cands), max(2, round(s.running_fraction * n * 2))) if s.running_fraction > 0 else 0
        nonterm = set(rng.sample(cands, k)) if k else set()
        forced = None
        if k:
            for i in cands:
                if not skel[i][0].restricted:
                    forced = i
                    if i not in nonterm:
                        nonterm.discard(max(nonterm))
                        nonterm.add(i)
                    break
        marks = {}
        for i, (proj, created) in enumerate(skel):
            marks[(proj.id, created)] = ("forced" if i == forced else ("nonterm" if i in nonterm else None))
        by_proj = {}
        for proj, created in skel:
            by_proj.setdefault(proj.id, []).append(created)
        for proj in self.projects:
            for created in sorted(by_proj.get(proj.id, [])):
                self._new_pipeline(proj, created, marks[(proj.id, created)], rng, clamp=None)

    def _project_extras(self, proj):
        rng = random.Random(f"{self.s.seed}/extras/{proj.id}")
        proj.settings = {"advanced": {
            "autocancel_builds": rng.random() < 0.6,
            "build_fork_prs": rng.random() < 0.3,
            "build_prs_only": rng.random() < 0.4,
            "disable_ssh": rng.random() < 0.35,
            "forks_receive_secret_env_vars": rng.random() < 0.15,
            "oss": rng.random() < 0.2,
            "set_github_status": rng.random() < 0.85,
            "setup_workflows": rng.random() < 0.2,
            "write_settings_requires_admin": rng.random() < 0.5,
            "pr_only_branch_overrides": ["main"] + (["release/*"] if rng.random() < 0.4 else []),
        }}
        proj.envvars = []
        for name in rng.sample(ENV_NAMES, rng.randint(0, 6)):
            secret = "".join(rng.choice("abcdef0123456789") for _ in range(24))
            created = self.anchor - rng.uniform(30, 900) * DAY
            proj.envvars.append({"name": name, "value": "xxxx" + secret[-4:],
                                 "created-at": fmt_ts(created, True) if rng.random() < 0.8 else None})
        proj.checkout_keys = []
        types = ["deploy-key"] + (["github-user-key"] if proj.org.kind == "gh" and rng.random() < 0.5 else [])
        for t_i, t in enumerate(types):
            fp = ":".join(f"{rng.getrandbits(8):02x}" for _ in range(16))
            body = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(68))
            proj.checkout_keys.append({"public-key": f"ssh-rsa AAAAB3NzaC1yc2E{body} circleci", "type": t,
                                       "fingerprint": fp, "preferred": t_i == 0,
                                       "created-at": fmt_ts(self.anchor - rng.uniform(60, 1200) * DAY, True)})

    def _contexts(self, org, count):
        rng = random.Random(f"{self.s.seed}/ctx/{org.id}")
        names = CONTEXT_NAMES[:count] if count <= len(CONTEXT_NAMES) else CONTEXT_NAMES + [f"ctx-{i}" for i in range(count - len(CONTEXT_NAMES))]
        for i, name in enumerate(names):
            created = self.anchor - (400 - i * 7) * DAY - rng.uniform(0, DAY)
            c = {"id": self.uid(rng), "name": name, "created_at": fmt_ts(created, rng.random() > 0.1)}
            varnames = CTX_VARS.get(name) or [f"{name.upper().replace('-', '_')}_{s}" for s in
                                               rng.sample(["TOKEN", "URL", "USER", "PASSWORD", "KEY"], rng.randint(0, 3))]
            envs = []
            for v in varnames:
                ce = created + rng.uniform(0, 30) * DAY
                envs.append({"variable": v, "context_id": c["id"], "created_at": fmt_ts(ce, True),
                             "updated_at": fmt_ts(ce + rng.uniform(0, 60) * DAY, True)})
            restr = []
            if name == "prod-deploy" or (i % 3 == 1):
                readable = [p for p in org.projects if not p.restricted] or org.projects
                if readable:
                    p = readable[0]
                    restr.append({"id": self.uid(rng), "context_id": c["id"], "project_id": p.id, "name": p.name,
                                  "restriction_type": "project", "restriction_value": p.id})
                if name == "prod-deploy":
                    restr.append({"id": self.uid(rng), "context_id": c["id"], "name": "main branch only",
                                  "restriction_type": "expression",
                                  "restriction_value": 'pipeline.git.branch == "main"'})
                    restr.append({"id": self.uid(rng), "context_id": c["id"], "name": "deployers",
                                  "restriction_type": "group", "restriction_value": self.uid(rng)})
            c_obj = {"api": c, "envs": envs, "restrictions": restr, "org": org}
            org.contexts.append(c_obj)
            self.contexts_by_id[c["id"]] = c_obj

    def _new_pipeline(self, proj, created, mark, rng, clamp):
        """Create a pipeline with workflows/jobs. ``clamp``: latest allowed timestamp (activity), else None."""
        ms = self.ms_flag(rng)
        created = _q(created, ms)
        proj.pipeline_counter += 1
        branch = "main" if (mark == "forced" or rng.random() < 0.6) else rng.choice(BRANCHES)
        actor = rng.choice(self.users)
        trig = rng.choices(["webhook", "api", "scheduled_pipeline"], [0.8, 0.1, 0.1])[0]
        errored = mark is None and clamp is None and rng.random() < self.s.errored_fraction
        pid = self.uid(rng)
        rev = "%040x" % rng.getrandbits(160)
        subject = rng.choice(COMMITS)
        ts = fmt_ts(created, ms)
        d = {"id": pid, "errors": [], "project_slug": proj.slug, "updated_at": ts, "number": proj.pipeline_counter,
             "state": "created", "created_at": ts,
             "trigger": {"type": trig, "received_at": ts, "actor": {"login": actor["login"], "avatar_url": actor["avatar_url"]}},
             "vcs": {"provider_name": {"CircleCI": "GitLab"}.get(proj.provider, proj.provider),
                     "origin_repository_url": proj.vcs_url, "target_repository_url": proj.vcs_url,
                     "revision": rev, "branch": branch,
                     "commit": {"subject": subject, "body": ""}}}
        if errored:
            d["state"] = "errored"
            d["errors"] = [{"type": "config", "message": "Config does not conform to schema: {:workflows {:build-test-deploy {:jobs [{:test-shard-3 missing-required-key}]}}}"}]
        now_ref = clamp if clamp is not None else self.anchor
        p = Pipeline(id=pid, number=proj.pipeline_counter, project=proj, created=created, ms=ms, d=d, branch=branch,
                     actor=actor, errored=errored, aged=(now_ref - created) > AGE_LIMIT)
        proj.pipelines.append(p)
        self.pipelines_by_id[pid] = p
        if errored:
            return p
        cfg = proj.config
        nwf = rng.choices([1, 2, 3], [1, 2, 1])[0]
        nwf = max(1, min(nwf, self.s.max_workflows_per_pipeline, len(cfg.workflows)))
        wdefs = [cfg.main] + rng.sample(cfg.aux, nwf - 1)
        for wi, wdef in enumerate(wdefs):
            jdefs = jobs_for_branch(wdef, branch)
            if mark in ("forced", "nonterm") and wi == 0:
                has_appr = any(j.type == "approval" for j in jdefs)
                if mark == "forced" and has_appr:
                    outcome = "on_hold"
                elif has_appr:
                    outcome = rng.choices(["on_hold", "running", "failing"], [0.45, 0.35, 0.2])[0]
                else:
                    outcome = rng.choices(["running", "failing"], [0.65, 0.35])[0]
            elif clamp is not None:
                outcome = rng.choices(["success", "running", "on_hold", "failed"], [0.5, 0.3, 0.15, 0.05])[0]
            else:
                outcome = rng.choices(["success", "failed", "canceled", "error", "not_run", "unauthorized"],
                                      [0.82, 0.11, 0.03, 0.015, 0.015, 0.01])[0]
            self._new_workflow(p, wdef, jdefs, outcome, created + rng.uniform(0.5, 3.0) + wi * 0.01, rng, clamp)
        return p

    def _new_workflow(self, p, wdef, jdefs, outcome, wcreated, rng, clamp):
        ms = self.ms_flag(rng)
        wcreated = _q(min(wcreated, clamp) if clamp else wcreated, ms)
        user = self.users_by_id[self.users[0]["id"]] if rng.random() < 0.3 else rng.choice(self.users)
        wf = Workflow(id=self.uid(rng), name=wdef.name, pipeline=p, created=wcreated, ms=ms, status=outcome,
                      started_by=user["id"], stopped=None, clamp=clamp)
        p.workflows.append(wf)
        self.workflows_by_id[wf.id] = wf
        has_appr = any(j.type == "approval" for j in jdefs)
        if outcome == "on_hold" and not has_appr:
            outcome = wf.status = "running"
        build = [j for j in jdefs if j.type == "build"]
        special = {}
        if outcome in ("failed", "error", "canceled", "running") and build:
            pick = rng.choice(build[1:] if len(build) > 1 else build)
            special[pick.name] = {"failed": "failed", "error": "infrastructure_fail", "canceled": "canceled",
                                  "running": "running"}[outcome]
        elif outcome == "failing" and len(build) >= 2:
            wdef_local = {j.name: j for j in jdefs}
            pairs = []
            for a in build:
                for b in build:
                    if a is not b and a.name not in _anc(wdef_local, b.name) and b.name not in _anc(wdef_local, a.name):
                        pairs.append((a, b))
            if pairs:
                a, b = rng.choice(pairs)
                special[a.name] = "failed"
                special[b.name] = "running"
            else:
                special[build[-1].name] = "running"
                outcome = wf.status = "running"
        elif outcome == "failing":
            outcome = wf.status = "running"
            if build:
                special[build[-1].name] = "running"
        canceler = rng.choice(self.users)["id"] if outcome == "canceled" else None
        if canceler:
            wf.canceled_by = canceler
        if outcome == "error":
            wf.errored_by = user["id"]
        by_name = {}
        for jd in jdefs:
            jms = ms if rng.random() < 0.9 else not ms
            job = Job(id=self.uid(rng), name=jd.name, type=jd.type, jobdef=jd, workflow=wf, ms=jms,
                      deps=[], parallelism=jd.parallelism, status=None, created=None)
            job.deps = [by_name[r].id for r in jd.requires if r in by_name]
            dep_jobs = [by_name[r] for r in jd.requires if r in by_name]
            ready = max([d.stopped for d in dep_jobs if d.stopped is not None] + [wcreated])
            job.created = ready
            dep_bad = any(d.status != "success" for d in dep_jobs)
            if outcome in ("not_run", "unauthorized"):
                job.status = outcome
            elif dep_bad:
                job.status = "canceled" if outcome == "canceled" else "blocked"
            elif jd.type == "approval":
                if outcome in ("on_hold", "running", "failing"):
                    job.status = "on_hold"
                else:
                    job.status = "success"
                    job.stopped = ready + rng.uniform(60, 3600)
                    job.approved_by = rng.choice(self.users)["id"]
            else:
                st = special.get(jd.name, "success")
                job.status = st
                job.started = ready + rng.uniform(1, 12)
                if st != "running":
                    dur = rng.uniform(15, 400) if st == "success" else rng.uniform(5, 200)
                    job.stopped = job.started + dur
                if st == "canceled":
                    job.canceled_by = canceler
            if clamp is not None:
                if job.started is not None:
                    job.started = min(job.started, clamp)
                if job.stopped is not None:
                    job.stopped = min(job.stopped, clamp)
            if job.started is not None:
                job.started = _q(job.started, jms)
            if job.stopped is not None:
                job.stopped = _q(job.stopped, jms)
            if job.started is not None and jd.type == "build":
                self._number(job)
            wf.jobs.append(job)
            by_name[jd.name] = job
        if outcome == "on_hold" and not any(j.status == "on_hold" for j in wf.jobs):
            wf.status = "running" if any(j.status == "running" for j in wf.jobs) else wf.status
        if wf.status in TERMINAL:
            stops = [j.stopped for j in wf.jobs if j.stopped is not None]
            stop = max(stops) if stops else wcreated + rng.uniform(1, 5)
            if clamp is not None:
                stop = min(stop, clamp)
            wf.stopped = _q(stop, ms)
        return wf

    def _number(self, job):
        proj = job.workflow.pipeline.project
        proj.job_counter += 1
        job.number = proj.job_counter
        proj.jobs_by_number[job.number] = job

    # ---------------------------------------------------------------- mutations
    def add_activity(self, pipelines=5):
        with self.lock:
            rng = self.activity_rng
            projs = list(self.projects)
            created = []
            base = time.time()
            for i in range(pipelines):
                proj = projs[rng.randrange(len(projs))] if i >= len(projs) else projs[(i + rng.randrange(len(projs))) % len(projs)]
                now = max(base + i * 0.002, time.time())
                mark = "nonterm" if rng.random() < 0.4 else None
                created.append(self._new_pipeline(proj, now, mark, rng, clamp=now + 0.001).id)
            self.bump()
            return created

    def finish_running(self):
        with self.lock:
            rng = self.activity_rng
            now = time.time()
            changed = 0
            for wf in list(self.workflows_by_id.values()):
                if wf.terminal:
                    continue
                changed += 1
                fail = rng.random() < 0.15
                ms = wf.ms
                failed_one = False
                done = {}
                for job in wf.jobs:
                    deps_ok = all(done.get(d, "success") == "success" for d in job.deps)
                    if job.status in ("success", "failed", "canceled", "infrastructure_fail"):
                        pass
                    elif not deps_ok:
                        job.status = "blocked"
                    elif job.type == "approval":
                        job.status = "success"
                        job.stopped = _q(now, job.ms)
                        job.approved_by = job.approved_by or rng.choice(self.users)["id"]
                    else:
                        if job.started is None:
                            job.started = _q(now, job.ms)
                            self._number(job)
                        if fail and not failed_one and job.type == "build":
                            job.status = "failed"
                            failed_one = True
                        else:
                            job.status = "success"
                        job.stopped = _q(now, job.ms)
                    done[job.id] = job.status
                wf.status = "failed" if any(j.status in ("failed", "infrastructure_fail") for j in wf.jobs) else "success"
                wf.stopped = _q(now, ms)
            self.bump()
            return changed

    # --------------------------------------------------------------- rendering
    def org_pipelines(self, org):
        items = [p for proj in org.projects for p in proj.pipelines]
        items.sort(key=lambda p: (-p.created, p.id))
        return items

    def project_pipelines(self, proj, branch=None):
        items = [p for p in proj.pipelines if branch is None or p.branch == branch]
        items.sort(key=lambda p: (-p.created, p.id))
        return items

    def web_url(self, job):
        proj = job.workflow.pipeline.project
        slug = proj.slug.replace("gh/", "github/", 1).replace("bb/", "bitbucket/", 1) if proj.org.kind != "circleci" else proj.slug
        return f"https://app.circleci.com/pipelines/{slug}/{job.workflow.pipeline.number}/workflows/{job.workflow.id}/jobs/{job.number}"

    def job_details(self, job):
        wf = job.workflow
        p = wf.pipeline
        proj = p.project
        jd = job.jobdef
        status = job.status
        dur = int(round((job.stopped - job.started) * 1000)) if job.stopped is not None and job.started is not None else None
        queued = _q(job.started - min(3.0, max(0.0, job.started - job.created)), job.ms)
        msgs = []
        if status == "infrastructure_fail":
            msgs.append({"type": "error", "message": "Failed to start the docker container", "reason": "infrastructure"})
        return {
            "web_url": self.web_url(job),
            "project": {"id": proj.id, "slug": proj.slug, "name": proj.name, "external_url": proj.vcs_url},
            "parallel_runs": [{"index": i, "status": status} for i in range(jd.parallelism)],
            "started_at": fmt_ts(job.started, job.ms),
            "latest_workflow": {"id": wf.id, "name": wf.name},
            "name": job.name,
            "executor": {"resource_class": jd.resource_class, "type": jd.executor_type},
            "parallelism": jd.parallelism,
            "status": status,
            "number": job.number,
            "pipeline": {"id": p.id},
            "duration": dur,
            "created_at": fmt_ts(_q(job.created, job.ms), job.ms),
            "messages": msgs,
            "contexts": [{"name": jd.context}] if jd.context else [],
            "organization": {"name": proj.org.name},
            "queued_at": fmt_ts(queued, job.ms),
            "stopped_at": fmt_ts(job.stopped, job.ms) if job.stopped is not None else None,
        }

    def v1_build(self, job):
        wf = job.workflow
        p = wf.pipeline
        proj = p.project
        jd = job.jobdef
        h = int(hashlib.sha256(job.id.encode()).hexdigest(), 16)
        start = job.started
        end = job.stopped if job.stopped is not None else time.time()
        names = [("Spin up environment", None, "infrastructure", frozenset()),
                 ("Preparing environment variables", None, "infrastructure", frozenset())]
        names += [(s.name, s.command, s.kind, s.tags) for s in jd.steps]
        n = len(names)
        status = job.status
        fail_at = None
        if status in ("failed", "timedout"):
            run_idx = [i for i, x in enumerate(names) if x[1] is not None]
            fail_at = run_idx[-1] if run_idx else n - 1
            if any(x[2] == "upload" for x in names[fail_at + 1:]):
                pass
        elif status == "infrastructure_fail":
            fail_at = 0
        elif status == "canceled":
            fail_at = max(1, n // 2)
        elif status == "running":
            fail_at = max(1, (h % n))
        last = (fail_at if fail_at is not None else n - 1)
        total = max(0.001, end - start)
        weights = [1 + ((h >> (i * 4)) & 0xF) for i in range(last + 1)]
        wsum = float(sum(weights))
        steps = []
        t = start
        for i in range(last + 1):
            name, cmd, kind, _tags = names[i]
            seg = total * weights[i] / wsum
            actions = []
            is_last = i == last and fail_at is not None
            for idx in range(jd.parallelism if i >= 2 else 1):
                if is_last and status == "running":
                    a_status, exit_code, failed, a_end = "running", None, False, None
                elif is_last and status in ("failed", "timedout", "infrastructure_fail"):
                    a_status, exit_code, failed, a_end = ("timedout" if status == "timedout" else "failed"), 1, True, t + seg
                elif is_last and status == "canceled":
                    a_status, exit_code, failed, a_end = "canceled", None, False, t + seg
                else:
                    a_status, exit_code, failed, a_end = "success", (0 if cmd is not None else None), False, t + seg
                actions.append({
                    "name": name, "status": a_status, "exit_code": exit_code, "bash_command": cmd,
                    "start_time": fmt_ts(t, True), "end_time": fmt_ts(a_end, True) if a_end is not None else None,
                    "run_time_millis": int(round((a_end - t) * 1000)) if a_end is not None else None,
                    "type": kind, "failed": failed, "index": idx, "step": i, "background": False,
                    "parallel": jd.parallelism > 1, "has_output": True, "truncated": False,
                })
            steps.append({"name": name, "actions": actions})
            t += seg
        lifecycle = "running" if status == "running" else "finished"
        return {
            "build_num": job.number,
            "build_url": self.web_url(job),
            "status": V1_STATUS.get(status, status),
            "outcome": None if status == "running" else V1_STATUS.get(status, status),
            "lifecycle": lifecycle,
            "vcs_url": proj.vcs_url,
            "username": proj.org.name,
            "reponame": proj.name,
            "branch": p.branch,
            "vcs_revision": p.d["vcs"]["revision"],
            "subject": p.d["vcs"]["commit"]["subject"],
            "job_name": job.name,
            "parallel": jd.parallelism,
            "start_time": fmt_ts(job.started, True),
            "stop_time": fmt_ts(job.stopped, True) if job.stopped is not None else None,
            "build_time_millis": int(round((job.stopped - job.started) * 1000)) if job.stopped is not None else None,
            "queued_at": fmt_ts(job.created, True),
            "workflows": {"workflow_id": wf.id, "workflow_name": wf.name, "job_name": job.name, "job_id": job.id,
                          "pipeline_id": p.id, "upstream_job_ids": list(job.deps)},
            "steps": steps,
        }

    # -------------------------------------------------------------------- truth
    def truth(self, vcs_key):
        with self.lock:
            t = {k: [] for k in ("me", "collaborations", "pipelines", "workflows", "jobs", "contexts",
                                 "pipeline_configs", "projects", "project_settings", "project_env_vars",
                                 "project_checkout_keys", "context_env_vars", "context_restrictions",
                                 "job_details", "job_steps", "users")}
            t["me"].append(dict(self.me))
            users = []
            seen_users = set()

            def ref(uid_):
                if uid_ and uid_ not in seen_users:
                    seen_users.add(uid_)
                    users.append(dict(self.users_by_id[uid_]))

            seen_projects = []
            detail_jobs = []
            for org in self.orgs:
                t["collaborations"].append(org.collab(vcs_key))
                for p in self.org_pipelines(org):
                    d = dict(p.d)
                    d["org_slug"] = org.slug
                    t["pipelines"].append(d)
                    if p.project not in seen_projects:
                        seen_projects.append(p.project)
                    if not p.readable:
                        continue
                    t["pipeline_configs"].append(dict(self.config_api(p), pipeline_id=p.id))
                    for wf in p.workflows:
                        t["workflows"].append(wf.api())
                        ref(wf.started_by)
                        ref(wf.canceled_by)
                        ref(wf.errored_by)
                        if not wf.terminal:
                            continue
                        for job in wf.jobs:
                            t["jobs"].append(dict(job.api(), workflow_id=wf.id, pipeline_id=p.id))
                            ref(job.approved_by)
                            ref(job.canceled_by)
                            if job.type == "build" and job.number is not None:
                                t["job_details"].append(self.job_details(job))
                                detail_jobs.append(job)
                                t["job_steps"].append(dict(self.v1_build(job), project_slug=p.project.slug))
                for c in org.contexts:
                    t["contexts"].append(dict(c["api"], org_slug=org.slug, org_id=org.id))
                    t["context_env_vars"].extend(dict(e) for e in c["envs"])
                    t["context_restrictions"].extend(dict(r) for r in c["restrictions"])
            for proj in seen_projects:
                if proj.restricted:
                    continue
                t["projects"].append(proj.api())
                if not proj.settings_unavailable:
                    t["project_settings"].append(dict(proj.settings, project_slug=proj.slug))
                t["project_env_vars"].extend(dict(e, project_slug=proj.slug) for e in proj.envvars)
                t["project_checkout_keys"].extend(dict(k, project_slug=proj.slug) for k in proj.checkout_keys)
            t["users"] = users
            t["project_controls"] = {p.slug: dict(p.config.controls) for p in self.projects}
            t["restricted_projects"] = [p.slug for p in self.projects if p.restricted]
            t["aged_out_pipelines"] = [p.id for org in self.orgs for p in self.org_pipelines(org) if p.aged]
            t["settings_unavailable_projects"] = [p.slug for p in self.projects if p.settings_unavailable]
            readable = [p for p in seen_projects if not p.restricted]
            t.update(self.gov.truth(readable, detail_jobs, vcs_key))
            return t

    def config_api(self, p):
        cfg = p.project.config
        if p.errored:
            return {"source": cfg.source_yaml, "compiled": "", "setup-config": "", "compiled-setup-config": ""}
        return {"source": cfg.source_yaml, "compiled": cfg.compiled_yaml, "setup-config": "", "compiled-setup-config": ""}


def _anc(by_name, name):
    seen = set()
    stack = list(by_name[name].requires)
    while stack:
        n = stack.pop()
        if n in seen or n not in by_name:
            continue
        seen.add(n)
        stack.extend(by_name[n].requires)
    return seen
