"""Deployment and governance data of the simulated account (issue 12).

Deploy environments/components/versions, job test metadata and artifacts, project schedules, pipeline
definitions and triggers (GitHub App projects), config policies (settings, bundle, decisions), organisation
groups, the URL orb allow list and project webhooks.

Everything is derived from the existing model (orgs, projects, pipelines, workflows, jobs) with random
generators of its own (``random.Random(f"{seed}/gov/...")``), so adding it changes none of the data or truth
the older endpoints serve. Static data (environments, schedules, webhooks, ...) is generated once; data that
follows activity (component versions, tests, artifacts, policy decisions) is computed from the world's
current state when asked, so ``add_activity``/``finish_running`` show up in it.
"""
from __future__ import annotations

import hashlib
import random
import uuid

from .model import DAY, fmt_ts

# A test failure message is emitted cut to this many UTF-8 bytes (at a character boundary), with a flag.
MESSAGE_LIMIT_BYTES = 4096
MESSAGE_TRUNCATED_FLAG = "message_truncated"

# Features a plan or a project type can lack, and how the endpoints answer then.
# feature -> (HTTP status, JSON body)
FEATURE_ABSENT = {
    "deploy": (403, {"message": "Deploys are not available on this organization's plan."}),
    "policy": (403, {"error": "config policies are not available on this organization's plan"}),
    "groups": (403, {"message": "Permission denied."}),
    "url_orb_allow_list": (403, {"message": "URL orbs are not enabled for this organization."}),
    "schedules": (403, {"message": "Scheduled pipelines are not available for this project."}),
    "webhooks": (403, {"message": "Webhooks are not available for this project."}),
    "pipeline_definitions": (404, {"message": "Pipeline definitions are only available for GitHub App and GitLab projects."}),
}

ENVIRONMENTS = [("production", "Customer-facing production"), ("staging", "Pre-production, mirrors production"),
                ("development", "Shared development environment")]
GROUP_NAMES = [("deployers", "May run production deploys"), ("admins", "Organization administrators"),
               ("security-team", "Reviews security findings"), ("release-managers", "Approve release holds"),
               ("contractors", "External contributors, no production access")]
TEST_SOURCES = {"node": "jest", "python": "pytest", "go": "go test", "java": "junit", "ruby": "rspec"}
SCHEDULE_NAMES = ["nightly-security-scan", "weekly-dependency-update", "hourly-smoke-test", "monthly-dr-drill",
                  "daily-report"]
DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
TRIGGER_PRESETS = ["all-pushes", "default-branch-pushes", "only-build-prs", "only-tags", "only-merged-prs"]
REGO_POLICIES = [
    ("require_security_jobs", 'package org\n\nimport future.keywords\nimport data.circleci.config\n\n'
     'policy_name["require_security_jobs"]\n\nenable_hard["require_security_jobs"]\n\n'
     'require_security_jobs = config.require_jobs(["security-scan"])\n'),
    ("ban_unversioned_orbs", 'package org\n\nimport future.keywords\n\npolicy_name["ban_unversioned_orbs"]\n\n'
     'enable_rule["ban_unversioned_orbs"]\n\nban_unversioned_orbs[orb] = reason {\n  some orb, ref in input.orbs\n'
     '  endswith(ref, "@volatile")\n  reason := sprintf("%s uses the volatile version", [orb])\n}\n'),
    ("prod_context_main_only", 'package org\n\nimport future.keywords\n\npolicy_name["prod_context_main_only"]\n\n'
     'enable_hard["prod_context_main_only"]\n\nprod_context_main_only[reason] {\n'
     '  data.meta.vcs.branch != "main"\n  some job in input.workflows[_].jobs\n'
     '  job[_].context == "prod-deploy"\n  reason := "prod-deploy context used outside main"\n}\n'),
]


def truncate_message(message):
    """(message cut to MESSAGE_LIMIT_BYTES UTF-8 bytes at a character boundary, whether it was cut)."""
    if message is None:
        return None, False
    raw = message.encode("utf-8")
    if len(raw) <= MESSAGE_LIMIT_BYTES:
        return message, False
    return raw[:MESSAGE_LIMIT_BYTES].decode("utf-8", "ignore"), True


def _uid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hash_uid(*parts):
    return str(uuid.UUID(int=int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:32], 16), version=4))


class Governance:
    def __init__(self, world):
        self.w = world
        s = world.s
        unknown = (set(s.features_off) | set(s.feature_absent_status or {})) - set(FEATURE_ABSENT)
        if unknown:
            raise ValueError(f"unknown features_off {sorted(unknown)}; use some of {sorted(FEATURE_ABSENT)}")
        self.seed = s.seed
        self.secret = hashlib.sha256(f"sim-artifacts-{s.seed}".encode()).hexdigest()
        n = len(world.orgs)
        deploy_idx = set(range(n)) if s.deploy_orgs is None else set(s.deploy_orgs)
        policy_idx = (set(range(n - 1)) if n > 1 else {0}) if s.policy_orgs is None else set(s.policy_orgs)
        self._memo = {}  # (kind, id) -> value; cleared when the world changes (see _memoised)
        self._memo_version = world.version
        self._finished = {}  # (kind, job id) -> tests/artifacts of a finished job (they never change again)
        self.components_by_id = {}
        self.environments_by_id = {}
        self.definitions_by_id = {}
        for oi, org in enumerate(world.orgs):
            org.has_deploy = oi in deploy_idx and "deploy" not in s.features_off
            org.has_policy = oi in policy_idx and "policy" not in s.features_off
            org.policy_enabled = org.has_policy and oi % 2 == 0
            self._org(org, oi)
        for pi, proj in enumerate(world.projects):
            self._project(proj, pi)

    # ------------------------------------------------------------ generation
    def _rng(self, *parts):
        return random.Random("/".join([str(self.seed), "gov"] + [str(p) for p in parts]))

    def _org(self, org, oi):
        w, rng = self.w, self._rng("org", org.id)
        base = w.anchor - (300 + oi * 11) * DAY
        org.environments = []
        for ei, (name, desc) in enumerate(ENVIRONMENTS):
            created = base + ei * 3 * DAY + rng.uniform(0, DAY)
            env = {"id": _uid(rng), "name": name, "description": desc,
                   "labels": [{"key": "tier", "value": "prod" if name == "production" else "non-prod"}],
                   "created_at": fmt_ts(created, True), "updated_at": fmt_ts(created + rng.uniform(1, 60) * DAY, True)}
            org.environments.append(env)
            self.environments_by_id[env["id"]] = (org, env)
        org.components = []
        for proj in org.projects:
            if not _deploy_jobs(proj):
                continue
            created = base + rng.uniform(10, 40) * DAY
            comp = {"id": _uid(rng), "name": proj.name, "project_id": proj.id,
                    "labels": [{"key": "team", "value": rng.choice(["payments", "platform", "growth", "core"])}],
                    "created_at": fmt_ts(created, True), "updated_at": fmt_ts(created + rng.uniform(1, 30) * DAY, True)}
            org.components.append((proj, comp))
            self.components_by_id[comp["id"]] = (org, proj, comp)
        # groups: the "deployers" group is the one the prod-deploy context is restricted to
        group_ids = {r["name"]: r["restriction_value"] for c in org.contexts for r in c["restrictions"]
                     if r["restriction_type"] == "group"}
        count = 22 if oi == 0 else 1 + oi % 4
        org.groups = []
        for gi in range(count):
            name, desc = GROUP_NAMES[gi] if gi < len(GROUP_NAMES) else (f"team-{gi}", f"Product team {gi}")
            g = {"id": group_ids.get(name) or _uid(rng), "name": name, "description": desc}
            if gi == 2 and oi == 0:
                g["description"] = ""
            org.groups.append(g)
        auths = ["github-oauth", "none", "github-app", "bitbucket-oauth"]
        org.url_orbs = []
        for ui in range(2 if oi == 0 else oi % 2):
            org.url_orbs.append({"id": _uid(rng), "name": f"{org.name}-orbs-{ui}",
                                 "prefix": f"https://orbs.{org.name}.example.com/{'internal/' if ui == 0 else ''}",
                                 "auth": auths[(oi + ui) % len(auths)]})
        # config policies
        org.policies = []
        if org.has_policy:
            chosen = REGO_POLICIES if org.policy_enabled else REGO_POLICIES[:1]
            for name, content in chosen:
                created = base + rng.uniform(30, 200) * DAY
                org.policies.append({"name": name, "content": content, "created_at": fmt_ts(created, True),
                                     "created_by": rng.choice(w.users)["id"]})

    def _project(self, proj, pi):
        w, rng = self.w, self._rng("project", proj.id)
        org = proj.org
        proj.sbom = rng.random() < 0.5
        base = w.anchor - rng.uniform(100, 400) * DAY
        count = 22 if pi == 0 else rng.randint(0, 3)
        proj.schedules = []
        for si in range(count):
            name = SCHEDULE_NAMES[si % len(SCHEDULE_NAMES)] + (f"-{si // len(SCHEDULE_NAMES)}" if si >= len(SCHEDULE_NAMES) else "")
            actor = rng.choice(w.users)
            if si % 2 == 0:
                timetable = {"per-hour": 1, "hours-of-day": [rng.randint(0, 23)],
                             "days-of-week": sorted(rng.sample(DAYS, rng.randint(1, 7)), key=DAYS.index)}
            else:
                timetable = {"per-hour": rng.randint(1, 2), "hours-of-day": sorted(rng.sample(range(24), 2)),
                             "days-of-month": [1, 15], "months": list(MONTHS)}
            created = base + si * DAY + rng.uniform(0, DAY)
            proj.schedules.append({
                "id": _uid(rng), "timetable": timetable,
                "updated-at": fmt_ts(created + rng.uniform(0, 30) * DAY, True), "name": name,
                "created-at": fmt_ts(created, True), "project-slug": proj.slug,
                "parameters": {"branch": "main", "run-security-scan": si % 3 == 0},
                "actor": {"id": actor["id"], "login": actor["login"], "name": actor["name"],
                          "avatar_url": actor["avatar_url"] if si % 4 else None},
                "description": None if si % 3 == 1 else f"{name} of {proj.name}",
            })
        proj.webhooks = []
        n_hooks = 2 if pi == 0 else rng.randint(0, 2)
        for hi in range(n_hooks):
            insecure_url = (pi == 0 and hi == 1) or rng.random() < 0.2
            created = base + rng.uniform(0, 200) * DAY
            secret = "%032x" % rng.getrandbits(128)
            proj.webhooks.append({
                "url": f"{'http' if insecure_url else 'https'}://hooks.{org.name}.example.com/circleci/{proj.name}/{hi}",
                "verify-tls": not ((pi == 0 and hi == 1) or rng.random() < 0.25),
                "id": _uid(rng),
                "signing-secret": "xxxxxxxxxxxxxxxxxxxx" + secret[-4:],
                "updated-at": fmt_ts(created + rng.uniform(0, 20) * DAY, True),
                "name": ["slack-relay", "audit-log-sink", "deploy-tracker"][hi % 3],
                "created-at": fmt_ts(created, True),
                "scope": {"id": proj.id, "type": "project"},
                "events": ["workflow-completed", "job-completed"][: 1 + (hi + pi) % 2],
            })
        proj.definitions = []
        if org.kind == "circleci":
            repo = {"full_name": f"{org.name}/{proj.name}", "external_id": str(rng.randint(10 ** 8, 10 ** 9))}
            for di, (dname, fpath) in enumerate([("build-and-test", ".circleci/config.yml"),
                                                 ("nightly", ".circleci/nightly.yml")][: 1 + pi % 2]):
                created = base + di * 5 * DAY
                d = {"id": _uid(rng), "name": dname, "description": f"{dname} pipeline of {proj.name}",
                     "created_at": fmt_ts(created, True),
                     "config_source": {"provider": "github_app", "repo": dict(repo), "file_path": fpath},
                     "checkout_source": {"provider": "github_app", "repo": dict(repo)}}
                triggers = []
                for ti in range(1 + (pi + di) % 3):
                    if ti == 2:
                        src = {"provider": "webhook",
                               "webhook": {"url": f"https://internal.circleci.com/private/soc/e/{_uid(rng)}",
                                           "sender": "release-bot"}}
                        event_name, preset = "custom webhook", None
                    else:
                        src = {"provider": "github_app", "repo": dict(repo)}
                        event_name, preset = ("push", "pull_request")[ti], TRIGGER_PRESETS[(pi + di + ti) % len(TRIGGER_PRESETS)]
                    t = {"id": _uid(rng), "event_name": event_name,
                         "created_at": fmt_ts(created + (ti + 1) * DAY, True), "event_source": src,
                         "checkout_ref": "main", "config_ref": "main", "disabled": ti == 1 and di == 0}
                    if preset:
                        t["event_preset"] = preset
                    triggers.append(t)
                proj.definitions.append((d, triggers))
                self.definitions_by_id[d["id"]] = (proj, d, triggers)

    # ------------------------------------------------------------ availability
    def feature_absent(self, feature, org=None, proj=None):
        """(status, body) when the feature is absent for this org/project, else None."""
        s = self.w.s
        absent = (feature in s.features_off
                  or (feature == "deploy" and org is not None and not org.has_deploy)
                  or (feature == "policy" and org is not None and not org.has_policy)
                  or (feature == "pipeline_definitions" and proj is not None and proj.org.kind != "circleci"))
        if not absent:
            return None
        status, body = FEATURE_ABSENT[feature]
        return (s.feature_absent_status or {}).get(feature, status), body

    # ------------------------------------------------------------ rendering (dynamic)
    def components(self, org, project_id=None):
        out = []
        for proj, comp in org.components:
            if project_id and proj.id != project_id:
                continue
            d = dict(comp)
            d["release_count"] = len(self.versions(comp["id"]))
            out.append(d)
        return out

    def _memoised(self, key, build):
        with self.w.lock:
            if self._memo_version != self.w.version:
                self._memo = {}
                self._memo_version = self.w.version
            if key not in self._memo:
                self._memo[key] = build()
            return self._memo[key]

    def versions(self, component_id, environment_id=None):
        """Versions of a component: each successful deploy job (production) and main-branch build job
        (staging) of the project's main workflow, newest first; the newest per environment is live."""
        every = self._memoised(("versions", component_id), lambda: self._versions(component_id))
        return [v for v in every if not environment_id or v["environment_id"] == environment_id]

    def _versions(self, component_id):
        org, proj, comp = self.components_by_id[component_id]
        envs = {e["name"]: e["id"] for e in org.environments}
        deploys = set(_deploy_jobs(proj))
        root = proj.config.main.jobs[0].name
        found = []
        for p in proj.pipelines:
            for wf in p.workflows:
                if wf.name != proj.config.main.name:
                    continue
                for job in wf.jobs:
                    if job.status != "success" or job.stopped is None or job.number is None:
                        continue
                    if job.name in deploys:
                        env = "production"
                    elif job.name == root and p.branch == "main":
                        env = "staging"
                    else:
                        continue
                    found.append((job.stopped, envs[env], p, wf, job))
        found.sort(key=lambda x: (-x[0], x[4].id))
        live = set()
        out = []
        for stopped, env_id, p, wf, job in found:
            out.append({"name": f"v1.{p.number}.0", "environment_id": env_id, "namespace": "default",
                        "is_live": env_id not in live, "pipeline_id": p.id, "workflow_id": wf.id, "job_id": job.id,
                        "job_number": job.number, "last_deployed_at": fmt_ts(stopped, True)})
            live.add(env_id)
        return out

    def _once_finished(self, kind, job, build):
        if job.stopped is None:
            return build(job)
        key = (kind, job.id)
        hit = self._finished.get(key)
        if hit is None:
            hit = self._finished[key] = build(job)
        return hit

    def job_tests(self, job):
        return self._once_finished("tests", job, self._job_tests)

    def job_artifacts(self, job):
        return self._once_finished("artifacts", job, self._job_artifacts)

    def _job_tests(self, job):
        jd = job.jobdef
        if job.status not in ("success", "failed") or job.stopped is None:
            return []
        if not any(s.kind == "upload" for s in jd.steps):
            return []
        rng = self._rng("tests", job.id)
        proj = job.workflow.pipeline.project
        source = TEST_SOURCES.get(proj.config.lang, "junit")
        n = rng.choice([3, 4, 6, 8, 23]) if job.name.startswith("test-shard-") else rng.choice([4, 12, 19, 27, 45, 61])
        failed = set()
        if job.status == "failed":
            failed = set(rng.sample(range(n), min(n, rng.randint(1, 3))))
        long_one = min(failed) if failed else None  # every failed job has one message over 4 KB
        items = []
        for i in range(n):
            mod = f"{proj.name.replace('-', '_')}/module_{i % 7}"
            name = f"test_{['create', 'update', 'delete', 'list', 'auth', 'retry', 'render'][i % 7]}_{i}"
            if i in failed:
                result = "failure"
                msg = f"AssertionError: expected status 200, got 500 in {name}"
                if i == long_one:
                    frames = "".join(f"\n  at {mod}.{name} (src/{mod}.js:{k + 10}:{k % 40}) — “frame {k}”"
                                     for k in range(120))
                    msg = f"Error: request to /api/orders failed ✗{frames}"
            elif rng.random() < 0.05:
                result, msg = "skipped", None
            else:
                result, msg = "success", None
            items.append({"message": msg, "source": source, "run_time": round(rng.uniform(0.001, 4.5), 3),
                          "file": f"src/{mod}_test.{'py' if source == 'pytest' else 'js'}", "result": result,
                          "name": name, "classname": mod.replace("/", ".")})
        return items

    def _job_artifacts(self, job):
        jd = job.jobdef
        if job.status not in ("success", "failed") or job.stopped is None:
            return []
        proj = job.workflow.pipeline.project
        paths = []
        if any(s.kind == "upload" for s in jd.steps):
            paths += [(node, "test-results/junit.xml") for node in range(jd.parallelism)]
            paths.append((0, "coverage/lcov.info"))
        if job.name in ("build", "plan"):
            paths.append((0, f"dist/{proj.name}.tar.gz" if job.name == "build" else "infra/tfplan"))
            if proj.sbom and job.name == "build":
                paths.append((0, f"sbom/{proj.name}.cdx.json"))
        if job.name == "coverage-report":
            paths += [(0, f"coverage/html/file-{i:02d}.html") for i in range(24)]
        return [{"path": path, "node_index": node, "url": self.artifact_url(job, node, path)} for node, path in paths]

    def artifact_url(self, job, node, path):
        token = hashlib.sha256(f"{self.secret}|{job.id}|{node}|{path}".encode()).hexdigest()[:40]
        return (f"https://output.circle-artifacts.com/output/job/{job.id}/artifacts/{node}/{path}"
                f"?verification-token=sig-{token}")

    def decisions(self, org):
        """Decision logs of an org, newest first: one per pipeline of its projects while policies are enabled."""
        if not org.policy_enabled:
            return []
        hashes = {p["name"]: hashlib.sha512(p["content"].encode()).hexdigest() for p in org.policies}
        rules = [p["name"] for p in org.policies]
        out = []
        for p in self.w.org_pipelines(org):
            h = int(hashlib.sha256(f"decision|{p.id}".encode()).hexdigest(), 16)
            proj = p.project
            sec = "security-scan" in {j.name for wf in proj.config.workflows for j in wf.jobs}
            hard, soft = [], []
            if not sec and h % 3 == 0:
                hard.append({"rule": "require_security_jobs", "reason": "security-scan job is missing"})
            if p.branch != "main" and h % 5 == 0:
                soft.append({"rule": "ban_unversioned_orbs", "reason": "snyk uses the volatile version"})
            status = "HARD_FAIL" if hard else ("SOFT_FAIL" if soft else "PASS")
            d = {"created_at": fmt_ts(p.created + 0.25, True), "id": _hash_uid("decision", p.id),
                 "decision": {"status": status, "enabled_rules": rules, "hard_failures": hard, "soft_failures": soft},
                 "metadata": {"build_number": p.number, "project_id": proj.id, "ssh_rerun": False,
                              "vcs": {"branch": p.branch, "origin_repository_url": proj.vcs_url,
                                      "target_repository_url": proj.vcs_url}},
                 "policies": hashes, "time_taken_ms": 3 + h % 40}
            if p.errored:
                d["decision"] = {"status": "ERROR", "reason": "config could not be compiled", "enabled_rules": rules,
                                 "hard_failures": [], "soft_failures": []}
            out.append((p.created + 0.25, d))
        out.sort(key=lambda x: (-x[0], x[1]["id"]))
        return [d for _, d in out]

    # ------------------------------------------------------------ truth
    def truth(self, projects, jobs, vcs_key):
        """Records as the connector must emit them. ``projects``: readable projects in crawl order;
        ``jobs``: the build jobs whose job_details the connector reads (same order)."""
        w = self.w
        t = {k: [] for k in ("deploy_environments", "deploy_components", "deploy_component_versions", "job_tests",
                             "job_artifacts", "project_schedules", "pipeline_definitions", "pipeline_triggers",
                             "policy_settings", "policy_bundles", "policy_decisions", "org_groups",
                             "url_orb_allow_list", "webhooks")}
        absent = {k: [] for k in FEATURE_ABSENT}
        secrets = {"webhook_signing_secrets": [], "artifact_urls": []}
        for org in w.orgs:
            okeys = {"org_id": org.id, "org_slug": org.slug}
            if self.feature_absent("deploy", org=org):
                absent["deploy"].append(org.slug)
            else:
                t["deploy_environments"].extend(dict(e, **okeys) for e in org.environments)
                for comp in self.components(org):
                    t["deploy_components"].append(dict(comp, **okeys))
                    for env in org.environments:
                        t["deploy_component_versions"].extend(
                            dict(v, component_id=comp["id"], **okeys) for v in self.versions(comp["id"], env["id"]))
            if self.feature_absent("policy", org=org):
                absent["policy"].append(org.slug)
            else:
                pkeys = {"owner_id": org.id, "org_slug": org.slug}
                t["policy_settings"].append({"enabled": org.policy_enabled, **pkeys})
                t["policy_bundles"].extend(dict(p, **pkeys) for p in org.policies)
                t["policy_decisions"].extend(dict(d, **pkeys) for d in self.decisions(org))
            if self.feature_absent("groups", org=org):
                absent["groups"].append(org.slug)
            else:
                t["org_groups"].extend(dict(g, **okeys) for g in org.groups)
            if self.feature_absent("url_orb_allow_list", org=org):
                absent["url_orb_allow_list"].append(org.slug)
            else:
                t["url_orb_allow_list"].extend(dict(u, **okeys) for u in org.url_orbs)
        for proj in projects:
            if self.feature_absent("schedules", proj=proj):
                absent["schedules"].append(proj.slug)
            else:
                t["project_schedules"].extend(dict(s, project_slug=proj.slug) for s in proj.schedules)
            if self.feature_absent("webhooks", proj=proj):
                absent["webhooks"].append(proj.slug)
            else:
                for h in proj.webhooks:
                    secrets["webhook_signing_secrets"].append(h["signing-secret"])
                    rec = {k: v for k, v in h.items() if k != "signing-secret"}
                    t["webhooks"].append(dict(rec, project_slug=proj.slug))
            if self.feature_absent("pipeline_definitions", proj=proj):
                absent["pipeline_definitions"].append(proj.slug)
            else:
                for d, triggers in proj.definitions:
                    t["pipeline_definitions"].append(dict(d, project_id=proj.id, project_slug=proj.slug))
                    t["pipeline_triggers"].extend(dict(tr, pipeline_definition_id=d["id"], project_id=proj.id)
                                                  for tr in triggers)
        for job in jobs:
            wf = job.workflow
            keys = {"job_id": job.id, "job_number": job.number, "project_slug": wf.pipeline.project.slug,
                    "workflow_id": wf.id, "pipeline_id": wf.pipeline.id}
            for i, item in enumerate(self.job_tests(job)):
                msg, cut = truncate_message(item["message"])
                t["job_tests"].append(dict(item, message=msg, test_index=i, **{MESSAGE_TRUNCATED_FLAG: cut}, **keys))
            for a in self.job_artifacts(job):
                secrets["artifact_urls"].append(a["url"])
                t["job_artifacts"].append(dict({k: v for k, v in a.items() if k != "url"}, **keys))
        t["feature_absent"] = absent
        t["secrets"] = secrets
        t["sbom_projects"] = [p.slug for p in w.projects if p.sbom]
        return t


def _deploy_jobs(proj):
    return [j.name for j in proj.config.main.jobs if "deploy" in j.tags]
