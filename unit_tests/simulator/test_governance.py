"""Deployment and governance endpoints of the simulator (issue 12): what they serve equals sim.truth()."""
import datetime as dt

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from circleci_simulator.governance import MESSAGE_LIMIT_BYTES, truncate_message

from .conftest import Client


def pages(client, path, **params):
    """Every page of a next_page_token list -> (items, number of pages)."""
    return client.all_items(path, **params)


def crawl(client, truth):
    """A straightforward crawl of every new endpoint, shaped as the connector must emit the records."""
    out = {k: [] for k in ("deploy_environments", "deploy_components", "deploy_component_versions", "job_tests",
                           "job_artifacts", "project_schedules", "pipeline_definitions", "pipeline_triggers",
                           "policy_settings", "policy_bundles", "policy_decisions", "org_groups",
                           "url_orb_allow_list", "webhooks")}
    for org in client.get("/v2/me/collaborations").json():
        ok = {"org_id": org["id"], "org_slug": org["slug"]}
        r = client.get("/v2/deploy/environments", **{"org-id": org["id"], "page-size": 2})
        if r.status_code == 200:
            envs, _ = pages(client, "/v2/deploy/environments", **{"org-id": org["id"], "page-size": 2})
            out["deploy_environments"] += [dict(e, **ok) for e in envs]
            comps, _ = pages(client, "/v2/deploy/components", **{"org-id": org["id"], "page-size": 50})
            for c in comps:
                out["deploy_components"].append(dict(c, **ok))
                for e in envs:
                    vs, _ = pages(client, f"/v2/deploy/components/{c['id']}/versions", **{"environment-id": e["id"]})
                    out["deploy_component_versions"] += [dict(v, component_id=c["id"], **ok) for v in vs]
        pk = {"owner_id": org["id"], "org_slug": org["slug"]}
        base = f"/v2/owner/{org['id']}/context/config"
        r = client.get(base + "/decision/settings")
        if r.status_code == 200:
            out["policy_settings"].append(dict(r.json(), **pk))
            bundle = client.get(base + "/policy-bundle").json()
            out["policy_bundles"] += [dict(p, **pk) for policies in bundle.values() for p in policies]
            offset = 0
            while True:
                page = client.get(base + "/decision", offset=offset).json()
                out["policy_decisions"] += [dict(d, **pk) for d in page]
                if len(page) < 20:
                    break
                offset += len(page)
        groups, _ = pages(client, f"/v2/organizations/{org['id']}/groups")
        out["org_groups"] += [dict(g, **ok) for g in groups]
        orbs = client.get(f"/v2/organization/{org['slug']}/url-orb-allow-list").json()["items"]
        out["url_orb_allow_list"] += [dict(u, **ok) for u in orbs]
    for proj in truth["projects"]:
        items, _ = pages(client, f"/v2/project/{proj['slug']}/schedule")
        out["project_schedules"] += [dict(s, project_slug=proj["slug"]) for s in items]
        hooks, _ = pages(client, "/v2/webhook", **{"scope-type": "project", "scope-id": proj["id"]})
        out["webhooks"] += [dict({k: v for k, v in h.items() if k != "signing-secret"}, project_slug=proj["slug"])
                            for h in hooks]
        r = client.get(f"/v2/projects/{proj['id']}/pipeline-definitions")
        if r.status_code == 200:
            for d in r.json()["items"]:
                out["pipeline_definitions"].append(dict(d, project_id=proj["id"], project_slug=proj["slug"]))
                trig = client.get(f"/v2/projects/{proj['id']}/pipeline-definitions/{d['id']}/triggers").json()["items"]
                out["pipeline_triggers"] += [dict(t, pipeline_definition_id=d["id"], project_id=proj["id"]) for t in trig]
    for jd in truth["job_details"]:
        job = next(j for j in truth["jobs"] if j.get("job_number") == jd["number"] and j["project_slug"] == jd["project"]["slug"])
        keys = {"job_id": job["id"], "job_number": jd["number"], "project_slug": job["project_slug"],
                "workflow_id": job["workflow_id"], "pipeline_id": job["pipeline_id"]}
        tests, _ = pages(client, f"/v2/project/{job['project_slug']}/{jd['number']}/tests")
        for i, t in enumerate(tests):
            msg, cut = truncate_message(t["message"])
            out["job_tests"].append(dict(t, message=msg, test_index=i, message_truncated=cut, **keys))
        arts, _ = pages(client, f"/v2/project/{job['project_slug']}/{jd['number']}/artifacts")
        out["job_artifacts"] += [dict({k: v for k, v in a.items() if k != "url"}, **keys) for a in arts]
    return out


def test_a_straightforward_crawl_yields_exactly_the_truth(client, sim):
    truth = sim.truth()
    got = crawl(client, truth)
    for stream, records in got.items():
        assert records == truth[stream], stream
        assert records, f"{stream}: the tiny account should have some"


def test_truth_has_no_secret_in_any_record(sim):
    truth = sim.truth()
    secrets = truth["secrets"]["webhook_signing_secrets"] + truth["secrets"]["artifact_urls"]
    assert truth["secrets"]["webhook_signing_secrets"] and truth["secrets"]["artifact_urls"]
    import json
    text = json.dumps({k: v for k, v in truth.items() if k != "secrets"})
    for s in secrets:
        assert s not in text
    assert "verification-token" not in text and "signing-secret" not in text


def test_versions_point_at_real_pipelines_workflows_and_jobs(sim):
    w = sim.world
    versions = sim.truth()["deploy_component_versions"]
    assert any(v["is_live"] for v in versions) and any(not v["is_live"] for v in versions)
    for v in versions:
        p = w.pipelines_by_id[v["pipeline_id"]]
        wf = w.workflows_by_id[v["workflow_id"]]
        assert wf.pipeline is p
        job = next(j for j in wf.jobs if j.id == v["job_id"])
        assert job.number == v["job_number"] and job.status == "success"
        assert v["last_deployed_at"].endswith("Z")
    # one live version per component and environment: the newest
    by = {}
    for v in versions:
        by.setdefault((v["component_id"], v["environment_id"]), []).append(v)
    for vs in by.values():
        assert [v["is_live"] for v in vs] == [True] + [False] * (len(vs) - 1)
        assert [v["last_deployed_at"] for v in vs] == sorted((v["last_deployed_at"] for v in vs), reverse=True)


def test_deploy_lists_need_page_size_and_honour_it(client, sim):
    org = sim.truth()["collaborations"][0]
    r = client.get("/v2/deploy/environments", **{"org-id": org["id"]})
    assert r.status_code == 400
    envs, n = pages(client, "/v2/deploy/environments", **{"org-id": org["id"], "page-size": 1})
    assert n == len(envs) == 3
    assert client.get("/v2/deploy/components").status_code == 400  # org-id required


def test_job_tests_page_fail_truncate_and_some_jobs_have_none(client, sim):
    truth = sim.truth()
    tests = truth["job_tests"]
    per_job = {}
    for t in tests:
        per_job.setdefault(t["job_id"], []).append(t)
    assert any(len(v) > 20 for v in per_job.values()), "some job's tests span pages"
    assert len(per_job) < len(truth["job_details"]), "some build jobs have no test metadata"
    failed = [t for t in tests if t["result"] == "failure"]
    assert failed
    cut = [t for t in tests if t["message_truncated"]]
    assert cut and all(len(t["message"].encode()) <= MESSAGE_LIMIT_BYTES for t in cut)
    assert all(not t["message_truncated"] for t in tests if t not in cut)
    # the served message is longer than 4 KB
    job_id = cut[0]["job_id"]
    job = next(j for wf in sim.world.workflows_by_id.values() for j in wf.jobs if j.id == job_id)
    items, pages_n = pages(client, f"/v2/project/{cut[0]['project_slug']}/{job.number}/tests")
    assert len(items[cut[0]["test_index"]]["message"].encode()) > MESSAGE_LIMIT_BYTES
    assert [t["test_index"] for t in per_job[job_id]] == list(range(len(items)))


def test_truncate_message_cuts_at_a_character_boundary():
    assert truncate_message(None) == (None, False)
    assert truncate_message("ok") == ("ok", False)
    msg, cut = truncate_message("é" * 3000)  # 6000 bytes
    assert cut and msg == "é" * 2048 and len(msg.encode()) == 4096
    msg, cut = truncate_message("a" + "é" * 3000)
    assert cut and len(msg.encode()) == 4095


def test_artifacts_have_a_signed_url_and_some_are_sboms(client, sim):
    truth = sim.truth()
    arts = truth["job_artifacts"]
    assert any(a["path"].endswith(".cdx.json") for a in arts)
    assert all(set(a) >= {"path", "node_index", "job_id"} and "url" not in a for a in arts)
    a = arts[0]
    served, _ = pages(client, f"/v2/project/{a['project_slug']}/{a['job_number']}/artifacts")
    assert all("verification-token=" in x["url"] for x in served)
    assert len({(a["job_id"], a["node_index"], a["path"]) for a in arts}) == len(arts), "primary key unique"


def test_schedules_page_and_carry_their_actor(client, sim):
    proj = sim.truth()["projects"][0]
    items, n = pages(client, f"/v2/project/{proj['slug']}/schedule")
    assert n == 2 and len(items) == 22
    assert all({"id", "login", "name"} <= set(s["actor"]) for s in items)
    assert any(s["description"] is None for s in items)


def test_pipeline_definitions_only_for_github_app_projects(client, sim):
    truth = sim.truth()
    for proj in truth["projects"]:
        r = client.get(f"/v2/projects/{proj['id']}/pipeline-definitions")
        if proj["slug"].startswith("circleci/"):
            assert r.status_code == 200 and "next_page_token" not in r.json()
        else:
            assert r.status_code == 404 and proj["slug"] in truth["feature_absent"]["pipeline_definitions"]
    restricted = next(p for p in sim.world.projects if p.restricted)
    assert client.get(f"/v2/projects/{restricted.id}/pipeline-definitions").status_code == 403
    pdef = truth["pipeline_definitions"][0]
    assert client.get(f"/v2/projects/{pdef['project_id']}/pipeline-definitions/nope/triggers").status_code == 404


def test_policies_answer_403_with_an_error_body_where_the_plan_lacks_them(client, sim):
    truth = sim.truth()
    lacking = truth["feature_absent"]["policy"]
    assert lacking == [truth["collaborations"][-1]["slug"]]
    org = truth["collaborations"][-1]
    for tail in ("decision/settings", "policy-bundle", "decision"):
        r = client.get(f"/v2/owner/{org['id']}/context/config/{tail}")
        assert r.status_code == 403 and "error" in r.json()
    first = truth["collaborations"][0]
    assert client.get(f"/v2/owner/{first['id']}/context/other/decision").status_code == 404


def test_policy_decisions_page_by_offset_and_filter_by_after(client, sim):
    truth = sim.truth()
    org = truth["collaborations"][0]
    base = f"/v2/owner/{org['id']}/context/config/decision"
    all_ = [d for d in truth["policy_decisions"] if d["owner_id"] == org["id"]]
    assert len(all_) > 20
    first = client.get(base).json()
    assert len(first) == 20 and [d["id"] for d in first] == [d["id"] for d in all_[:20]]
    cursor = all_[5]["created_at"]
    newer = client.get(base, after=cursor).json()
    assert [d["id"] for d in newer] == [d["id"] for d in all_[:5]]
    assert client.get(base, after="not-a-date").status_code == 400
    statuses = {d["decision"]["status"] for d in all_}
    assert "PASS" in statuses and statuses - {"PASS"}


def test_new_pipelines_bring_new_decisions_and_versions(fresh_sim):
    before = fresh_sim.truth()
    fresh_sim.add_activity(pipelines=6)
    fresh_sim.finish_running()
    after = fresh_sim.truth()
    assert len(after["policy_decisions"]) > len(before["policy_decisions"])
    assert len(after["job_tests"]) >= len(before["job_tests"])
    assert after["deploy_environments"] == before["deploy_environments"]


def test_groups_use_limit_and_include_the_context_restriction_group(client, sim):
    truth = sim.truth()
    org = truth["collaborations"][0]
    items, n = pages(client, f"/v2/organizations/{org['id']}/groups", limit=10)
    assert n == 3 and len(items) == 22
    body = client.get(f"/v2/organizations/{org['id']}/groups", limit=10).json()
    assert body["total_count"] == 22
    group_restrictions = {r["restriction_value"] for r in truth["context_restrictions"] if r["restriction_type"] == "group"}
    assert group_restrictions & {g["id"] for g in items}


def test_url_orb_allow_list_by_slug_escaped_slug_or_id(client, sim):
    org = sim.truth()["collaborations"][0]
    a = client.get(f"/v2/organization/{org['slug']}/url-orb-allow-list").json()
    b = client.get(f"/v2/organization/{org['slug'].replace('/', '%2F')}/url-orb-allow-list").json()
    c = client.get(f"/v2/organization/{org['id']}/url-orb-allow-list").json()
    assert a == b == c and a["items"]


def test_webhooks_include_insecure_ones(client, sim):
    hooks = sim.truth()["webhooks"]
    assert any(not h["verify-tls"] for h in hooks) and any(h["url"].startswith("http://") for h in hooks)
    assert client.get("/v2/webhook", **{"scope-type": "org", "scope-id": hooks[0]["scope"]["id"]}).status_code == 400
    assert client.get("/v2/webhook", **{"scope-type": "project", "scope-id": "nope"}).status_code == 404


@pytest.mark.parametrize("feature,status", [("deploy", 403), ("policy", 403), ("groups", 403),
                                            ("url_orb_allow_list", 403), ("schedules", 403), ("webhooks", 403),
                                            ("pipeline_definitions", 404)])
def test_features_off_makes_every_org_or_project_lack_the_feature(feature, status):
    with Simulator(SimulatorSettings.preset("tiny", features_off=(feature,))) as s:
        c = Client(s)
        truth = s.truth()
        org, proj = truth["collaborations"][0], truth["projects"][0]
        urls = {
            "deploy": ("/v2/deploy/environments", {"org-id": org["id"], "page-size": 5}),
            "policy": (f"/v2/owner/{org['id']}/context/config/decision/settings", {}),
            "groups": (f"/v2/organizations/{org['id']}/groups", {}),
            "url_orb_allow_list": (f"/v2/organization/{org['id']}/url-orb-allow-list", {}),
            "schedules": (f"/v2/project/{proj['slug']}/schedule", {}),
            "webhooks": ("/v2/webhook", {"scope-type": "project", "scope-id": proj["id"]}),
            "pipeline_definitions": (f"/v2/projects/{truth['projects'][-1]['id']}/pipeline-definitions", {}),
        }
        path, params = urls[feature]
        assert c.get(path, **params).status_code == status
        scope = truth["collaborations"] if feature in ("deploy", "policy", "groups", "url_orb_allow_list") else truth["projects"]
        assert truth["feature_absent"][feature] == [x["slug"] for x in scope]
        stream = {"deploy": "deploy_environments", "policy": "policy_settings", "groups": "org_groups",
                  "url_orb_allow_list": "url_orb_allow_list", "schedules": "project_schedules",
                  "webhooks": "webhooks", "pipeline_definitions": "pipeline_definitions"}[feature]
        assert truth[stream] == []


def test_deploy_and_policy_orgs_switches():
    with Simulator(SimulatorSettings.preset("tiny", deploy_orgs=(1,), policy_orgs=(0, 1))) as s:
        truth = s.truth()
        first, second = truth["collaborations"]
        assert truth["feature_absent"]["deploy"] == [first["slug"]]
        assert {e["org_id"] for e in truth["deploy_environments"]} == {second["id"]}
        assert truth["feature_absent"]["policy"] == []
        assert [(p["org_slug"], p["enabled"]) for p in truth["policy_settings"]] == [(first["slug"], True),
                                                                                     (second["slug"], False)]
        assert not [d for d in truth["policy_decisions"] if d["owner_id"] == second["id"]], "disabled: no decisions"
        r = Client(s).get("/v2/deploy/components", **{"org-id": first["id"], "page-size": 5})
        assert r.status_code == 403
    with pytest.raises(ValueError):
        Simulator(SimulatorSettings.preset("tiny", features_off=("nope",)))
    with pytest.raises(ValueError):
        Simulator(SimulatorSettings.preset("tiny", feature_absent_status={"nope": 404}))


def test_an_absent_feature_can_answer_another_status():
    settings = SimulatorSettings.preset("tiny", features_off=("deploy",), feature_absent_status={"deploy": 404, "policy": 404})
    with Simulator(settings) as s:
        truth = s.truth()
        c = Client(s)
        first, last = truth["collaborations"][0], truth["collaborations"][-1]
        assert c.get("/v2/deploy/environments", **{"org-id": first["id"], "page-size": 5}).status_code == 404
        r = c.get(f"/v2/owner/{last['id']}/context/config/decision/settings")
        assert r.status_code == 404 and "error" in r.json()
        assert c.get(f"/v2/owner/{first['id']}/context/config/decision/settings").status_code == 200


def test_governance_data_is_deterministic():
    a = Simulator(SimulatorSettings.preset("tiny", anchor=1.8e9)).truth()
    b = Simulator(SimulatorSettings.preset("tiny", anchor=1.8e9)).truth()
    assert a == b
    assert dt.datetime.fromisoformat(a["policy_decisions"][0]["created_at"].replace("Z", "+00:00"))
