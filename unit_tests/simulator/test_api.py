import datetime as dt
from urllib.parse import quote

import requests
import yaml

from circleci_simulator import Simulator, SimulatorSettings

TERMINAL = {"success", "failed", "error", "canceled", "not_run", "unauthorized"}


def parse_ts(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_auth_required(sim):
    r = requests.get(sim.base_url + "/v2/me")
    assert r.status_code == 401
    assert r.json() == {"message": "You must log in first."}
    r = requests.get(sim.base_url + "/v2/me", headers={"Circle-Token": "wrong"})
    assert r.status_code == 401


def test_me_and_date_header(client, sim):
    r = client.get("/v2/me")
    assert r.status_code == 200
    assert set(r.json()) == {"id", "login", "name", "avatar_url"}
    assert r.headers["Date"]
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_collaborations_bare_array(client):
    body = client.get("/v2/me/collaborations").json()
    assert isinstance(body, list) and len(body) == 2
    assert {"id", "vcs_type", "name", "avatar_url", "slug"} == set(body[0])
    slugs = [c["slug"] for c in body]
    assert slugs[0].startswith("gh/")
    assert any(s.startswith("circleci/") for s in slugs)


def test_collaborations_hyphen_key():
    with Simulator(SimulatorSettings.preset("tiny", collaborations_vcs_key="vcs-type")) as s:
        body = requests.get(s.base_url + "/v2/me/collaborations", headers={"Circle-Token": s.token}).json()
        assert "vcs-type" in body[0] and "vcs_type" not in body[0]


def test_org_feed_pagination_and_order(client, sim):
    truth = sim.truth()
    for org in client.get("/v2/me/collaborations").json():
        items, pages = client.all_items("/v2/pipeline", **{"org-slug": org["slug"]})
        assert pages >= 2
        assert all(len(items[i:i + 20]) <= 20 for i in range(0, len(items), 20))
        expected = [p["id"] for p in truth["pipelines"] if p["org_slug"] == org["slug"]]
        assert [p["id"] for p in items] == expected
        times = [parse_ts(p["created_at"]) for p in items]
        assert times == sorted(times, reverse=True)
        assert len({p["id"] for p in items}) == len(items)


def test_page_token_opaque_and_garbled(client, sim):
    org = client.get("/v2/me/collaborations").json()[0]["slug"]
    first = client.get("/v2/pipeline", **{"org-slug": org}).json()
    tok = first["next_page_token"]
    assert tok and not tok.isdigit()
    r = client.get("/v2/pipeline", **{"org-slug": org, "page-token": "garbage!!"})
    assert r.status_code == 400 and "message" in r.json()
    tampered = tok[:-3] + ("AAA" if not tok.endswith("AAA") else "BBB")
    assert client.get("/v2/pipeline", **{"org-slug": org, "page-token": tampered}).status_code == 400
    # a token of one list is not valid for another
    other = client.get("/v2/me/collaborations").json()[1]["slug"]
    assert client.get("/v2/pipeline", **{"org-slug": other, "page-token": tok}).status_code == 400


def test_unknown_org_and_project(client):
    assert client.get("/v2/pipeline", **{"org-slug": "gh/nope"}).status_code == 404
    r = client.get("/v2/project/gh/nope/nope/pipeline")
    assert r.status_code == 404 and r.json() == {"message": "Project not found"}


def test_project_pipelines_escaped_slug(client, sim):
    truth = sim.truth()
    proj = truth["projects"][0]["slug"]
    items, _ = client.all_items(f"/v2/project/{quote(proj, safe='')}/pipeline")
    items2, _ = client.all_items(f"/v2/project/{proj}/pipeline")
    assert items == items2 and items
    assert all(p["project_slug"] == proj for p in items)
    times = [parse_ts(p["created_at"]) for p in items]
    assert times == sorted(times, reverse=True)
    main = client.all_items(f"/v2/project/{proj}/pipeline", branch="main")[0]
    assert main and all(p["vcs"]["branch"] == "main" for p in main)


def test_restricted_project_403(client, sim):
    truth = sim.truth()
    restricted = truth["restricted_projects"]
    assert restricted
    slug = restricted[0]
    denied = {"message": "Permission denied"}
    for path in ("", "/pipeline", "/envvar", "/checkout-key", "/settings", "/job/1"):
        r = client.get(f"/v2/project/{slug}{path}")
        assert r.status_code == 403, path
        assert r.json() == denied
    v, org, repo = slug.split("/")
    assert client.get(f"/v1.1/project/{v}/{org}/{repo}/1").status_code == 403
    pipe = next(p for p in truth["pipelines"] if p["project_slug"] == slug)
    assert client.get(f"/v2/pipeline/{pipe['id']}/workflow").status_code == 403
    assert client.get(f"/v2/pipeline/{pipe['id']}/config").status_code == 403
    wf = sim.world.pipelines_by_id[pipe["id"]].workflows[0]
    assert client.get(f"/v2/workflow/{wf.id}/job").status_code == 403


def test_aged_out_404(client, sim):
    truth = sim.truth()
    aged = truth["aged_out_pipelines"]
    assert aged
    readable_aged = [pid for pid in aged if not sim.world.pipelines_by_id[pid].project.restricted]
    assert readable_aged
    for pid in readable_aged:
        for what in ("workflow", "config"):
            r = client.get(f"/v2/pipeline/{pid}/{what}")
            assert r.status_code == 404 and r.json() == {"message": "Not found"}
        created = parse_ts(sim.world.pipelines_by_id[pid].d["created_at"])
        assert dt.datetime.now(dt.timezone.utc) - created > dt.timedelta(days=90)


def test_approval_jobs_and_job_details(client, sim):
    truth = sim.truth()
    approvals = [j for j in truth["jobs"] if j["type"] == "approval"]
    assert approvals
    for j in approvals:
        assert "job_number" not in j
        assert j["started_at"] is None
        assert j["approval_request_id"]
        if j["status"] == "success":
            assert j["approved_by"] in {u["id"] for u in truth["users"]}
    # job numbers that are not build jobs answer 404
    proj = truth["projects"][0]["slug"]
    numbers = {j["job_number"] for j in truth["jobs"] if j["project_slug"] == proj and "job_number" in j}
    assert client.get(f"/v2/project/{proj}/job/{max(numbers) + 1000}").status_code == 404
    assert client.get(f"/v2/project/{proj}/job/abc").status_code == 404
    d = client.get(f"/v2/project/{proj}/job/{min(numbers)}").json()
    for k in ("web_url", "project", "parallel_runs", "started_at", "latest_workflow", "name", "executor",
              "parallelism", "status", "number", "pipeline", "duration", "created_at", "messages", "contexts",
              "organization", "queued_at", "stopped_at"):
        assert k in d


def test_big_workflow_paginates_jobs(client, sim):
    truth = sim.truth()
    counts = {}
    for j in truth["jobs"]:
        counts[j["workflow_id"]] = counts.get(j["workflow_id"], 0) + 1
    wf_id = max(counts, key=counts.get)
    assert counts[wf_id] > 20
    items, pages = client.all_items(f"/v2/workflow/{wf_id}/job")
    assert pages == 2 and len(items) == counts[wf_id]
    ids = {j["id"] for j in items}
    for j in items:
        assert set(j["dependencies"]) <= ids


def test_workflows_follow_config(client, sim):
    truth = sim.truth()
    configs = {c["pipeline_id"]: c for c in truth["pipeline_configs"]}
    wf = next(w for w in truth["workflows"] if w["pipeline_id"] in configs)
    cfg = client.get(f"/v2/pipeline/{wf['pipeline_id']}/config").json()
    assert set(cfg) == {"source", "compiled", "setup-config", "compiled-setup-config"}
    compiled = yaml.safe_load(cfg["compiled"])
    source = yaml.safe_load(cfg["source"])
    assert "orbs" not in compiled
    assert wf["name"] in compiled["workflows"] and wf["name"] in source["workflows"]
    jobs, _ = client.all_items(f"/v2/workflow/{wf['id']}/job")
    declared = set()
    for entry in compiled["workflows"][wf["name"]]["jobs"]:
        declared.add(entry if isinstance(entry, str) else next(iter(entry)))
    assert {j["name"] for j in jobs} <= declared


def test_project_controls_truth(sim):
    controls = sim.truth()["project_controls"]
    assert len(controls) == 4
    keys = {"dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning", "automated_tests",
            "has_deploy", "approval_gate_before_deploy", "tests_before_deploy", "scans_before_deploy"}
    for c in controls.values():
        assert set(c) == keys
    with Simulator(SimulatorSettings.preset("tiny", projects_per_org=5)) as s:
        cs = list(s.truth()["project_controls"].values())
        assert any(c["approval_gate_before_deploy"] for c in cs)
        assert any(c["has_deploy"] and not c["approval_gate_before_deploy"] for c in cs)


def test_settings_provider_spellings(client, sim):
    truth = sim.truth()
    ok = [p["slug"] for p in truth["projects"] if p["slug"] not in truth["settings_unavailable_projects"]]
    assert ok
    for slug in ok:
        vcs, org, repo = slug.split("/")
        spellings = {"gh": ["gh", "github"], "bb": ["bb", "bitbucket"], "circleci": ["circleci"]}[vcs]
        for sp in spellings:
            r = client.get(f"/v2/project/{sp}/{org}/{repo}/settings")
            assert r.status_code == 200
            assert set(r.json()["advanced"]) >= {"autocancel_builds", "build_fork_prs", "disable_ssh", "oss",
                                                  "pr_only_branch_overrides"}
    for slug in truth["settings_unavailable_projects"]:
        assert client.get(f"/v2/project/{slug}/settings").status_code == 404


def test_v1_build_spellings_and_steps(client, sim):
    truth = sim.truth()
    seen_vcs = set()
    for steps in truth["job_steps"]:
        slug = steps["project_slug"]
        vcs, org, repo = slug.split("/")
        if vcs in seen_vcs:
            continue
        seen_vcs.add(vcs)
        for sp in {"gh": ["gh", "github"], "bb": ["bb", "bitbucket"], "circleci": ["circleci"]}[vcs]:
            r = client.get(f"/v1.1/project/{sp}/{org}/{repo}/{steps['build_num']}")
            assert r.status_code == 200
            body = r.json()
            assert body["build_num"] == steps["build_num"]
            assert body["steps"] and body["steps"][0]["actions"][0]["name"]
    assert seen_vcs == {"gh", "circleci"}
    failed = [s for s in truth["job_steps"] if s["status"] == "failed"]
    assert failed
    for b in failed:
        acts = [a for st in b["steps"] for a in st["actions"]]
        assert any(a["failed"] is True and a["exit_code"] == 1 for a in acts)
    ok = [s for s in truth["job_steps"] if s["status"] == "success"]
    for b in ok[:20]:
        for st in b["steps"]:
            for a in st["actions"]:
                assert a["status"] == "success" and not a["failed"]
                for k in ("name", "status", "exit_code", "bash_command", "start_time", "end_time",
                          "run_time_millis", "type", "failed"):
                    assert k in a


def test_users_resolve(client, sim):
    truth = sim.truth()
    for u in truth["users"]:
        assert client.get(f"/v2/user/{u['id']}").json() == u
    assert client.get("/v2/user/00000000-0000-4000-8000-000000000000").status_code == 404


def test_contexts_paginate_and_children(client, sim):
    truth = sim.truth()
    orgs = client.get("/v2/me/collaborations").json()
    total = 0
    for org in orgs:
        items, pages = client.all_items("/v2/context", **{"owner-id": org["id"]})
        by_slug, _ = client.all_items("/v2/context", **{"owner-slug": org["slug"], "owner-type": "organization"})
        assert items == by_slug
        total += len(items)
        if org is orgs[0]:
            assert pages >= 2
    assert total == len(truth["contexts"])
    envs, restr = [], []
    for c in truth["contexts"]:
        envs += client.all_items(f"/v2/context/{c['id']}/environment-variable")[0]
        restr += client.all_items(f"/v2/context/{c['id']}/restrictions")[0]
    assert envs == truth["context_env_vars"]
    assert restr == truth["context_restrictions"]
    assert all("value" not in e for e in envs)
    assert {r["restriction_type"] for r in restr} == {"project", "expression", "group"}


def test_full_crawl_matches_truth(client, sim):
    """Crawl every endpoint the way a correct sync would, and compare with truth."""
    truth = sim.truth()
    got = {k: [] for k in ("pipelines", "workflows", "jobs", "pipeline_configs", "projects", "project_settings",
                           "project_env_vars", "project_checkout_keys", "job_details", "job_steps")}
    projects = []
    for org in client.get("/v2/me/collaborations").json():
        pipes, _ = client.all_items("/v2/pipeline", **{"org-slug": org["slug"]})
        for p in pipes:
            got["pipelines"].append(dict(p, org_slug=org["slug"]))
            if p["project_slug"] not in projects:
                projects.append(p["project_slug"])
            r = client.get(f"/v2/pipeline/{p['id']}/workflow")
            if r.status_code in (403, 404):
                continue
            cfg = client.get(f"/v2/pipeline/{p['id']}/config").json()
            got["pipeline_configs"].append(dict(cfg, pipeline_id=p["id"]))
            wfs, _ = client.all_items(f"/v2/pipeline/{p['id']}/workflow")
            for wf in wfs:
                got["workflows"].append(wf)
                if wf["status"] not in TERMINAL:
                    continue
                jobs, _ = client.all_items(f"/v2/workflow/{wf['id']}/job")
                for j in jobs:
                    got["jobs"].append(dict(j, workflow_id=wf["id"], pipeline_id=p["id"]))
                    if j["type"] == "build" and "job_number" in j:
                        got["job_details"].append(client.get(f"/v2/project/{j['project_slug']}/job/{j['job_number']}").json())
                        vcs, o, repo = j["project_slug"].split("/")
                        got["job_steps"].append(dict(client.get(f"/v1.1/project/{vcs}/{o}/{repo}/{j['job_number']}").json(),
                                                     project_slug=j["project_slug"]))
    for slug in projects:
        r = client.get(f"/v2/project/{slug}")
        if r.status_code == 403:
            continue
        got["projects"].append(r.json())
        s = client.get(f"/v2/project/{slug}/settings")
        if s.status_code == 200:
            got["project_settings"].append(dict(s.json(), project_slug=slug))
        got["project_env_vars"] += [dict(e, project_slug=slug) for e in client.all_items(f"/v2/project/{slug}/envvar")[0]]
        got["project_checkout_keys"] += [dict(e, project_slug=slug)
                                         for e in client.all_items(f"/v2/project/{slug}/checkout-key")[0]]
    for k, v in got.items():
        assert v == truth[k], k
    assert len(truth["workflows"]) > 0 and len(truth["jobs"]) > 100
    # readable only, terminal only
    assert all(w["project_slug"] not in truth["restricted_projects"] for w in truth["workflows"])


def test_deterministic_from_seed():
    a = Simulator(SimulatorSettings.preset("tiny", seed=11)).truth()
    b = Simulator(SimulatorSettings.preset("tiny", seed=11)).truth()
    c = Simulator(SimulatorSettings.preset("tiny", seed=12)).truth()
    ids = lambda t: [p["id"] for p in t["pipelines"]]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    assert [j["id"] for j in a["jobs"]] == [j["id"] for j in b["jobs"]]


def test_timestamps_formats(sim):
    truth = sim.truth()
    stamps = [p["created_at"] for p in truth["pipelines"]]
    assert any("." in s for s in stamps) and any("." not in s for s in stamps)
    now = dt.datetime.now(dt.timezone.utc)
    assert all(s.endswith("Z") and parse_ts(s) <= now for s in stamps)
