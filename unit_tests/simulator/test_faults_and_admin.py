import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from circleci_simulator import Faults, Simulator, SimulatorSettings

TERMINAL = {"success", "failed", "error", "canceled", "not_run", "unauthorized"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def hdr(sim):
    return {"Circle-Token": sim.token}


def test_error_5xx_then_recovers(fresh_sim):
    sim = fresh_sim
    sim.set_faults(Faults(error_5xx_rate=1.0))
    r = requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
    assert r.status_code in (500, 502, 503)
    r = requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
    assert r.status_code == 200
    log = sim.request_log()
    assert [e["attempt"] for e in log] == [1, 2]
    assert log[1]["status"] == 200


def test_html_error(fresh_sim):
    sim = fresh_sim
    sim.set_faults(Faults(html_error_rate=1.0))
    r = requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
    assert r.status_code >= 500 and r.text.lstrip().startswith("<html")
    assert r.headers["Content-Type"].startswith("text/html")


def test_reset(fresh_sim):
    sim = fresh_sim
    sim.set_faults(Faults(reset_rate=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(sim.base_url + "/v2/me", headers=hdr(sim), timeout=5)
    assert requests.get(sim.base_url + "/v2/me", headers=hdr(sim), timeout=5).status_code == 200


def test_slow(fresh_sim):
    sim = fresh_sim
    sim.set_faults(Faults(slow_rate=1.0, slow_seconds=1.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(sim.base_url + "/v2/me", headers=hdr(sim), timeout=0.5)
    t = time.time()
    assert requests.get(sim.base_url + "/v2/me", headers=hdr(sim), timeout=5).status_code == 200
    assert time.time() - t < 1.0


def test_truncated_and_non_json(fresh_sim):
    sim = fresh_sim
    sim.set_faults(Faults(truncated_rate=1.0))
    r = requests.get(sim.base_url + "/v2/me/collaborations", headers=hdr(sim))
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        json.loads(r.text)
    sim.set_faults(Faults(non_json_rate=1.0))
    r = requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
    assert r.status_code == 200 and r.text.startswith("<html")


@pytest.mark.parametrize("mode,present,absent", [
    ("seconds", "Retry-After", "RateLimit-Reset"),
    ("none", None, "Retry-After"),
    ("reset-only", "RateLimit-Reset", "Retry-After"),
])
def test_throttle_modes(fresh_sim, mode, present, absent):
    sim = fresh_sim
    sim.set_faults(Faults(throttle_rate=1.0, retry_after_mode=mode))
    r = requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
    assert r.status_code == 429 and r.json() == {"message": "Rate limit exceeded."}
    if present:
        assert r.headers[present] == "1"
    assert absent not in r.headers


@pytest.mark.parametrize("status", [400, 404])
def test_stale_page_token(fresh_sim, status):
    sim = fresh_sim
    org = sim.truth()["collaborations"][0]["slug"]
    first = requests.get(sim.base_url + "/v2/pipeline", params={"org-slug": org}, headers=hdr(sim)).json()
    sim.set_faults(Faults(stale_page_token_status=status))
    for _ in range(2):
        r = requests.get(sim.base_url + "/v2/pipeline", params={"org-slug": org, "page-token": first["next_page_token"]},
                         headers=hdr(sim))
        assert r.status_code == status
    assert requests.get(sim.base_url + "/v2/pipeline", params={"org-slug": org}, headers=hdr(sim)).status_code == 200


def test_partial_fault_rate_is_deterministic_and_converges():
    def run():
        with Simulator(SimulatorSettings.preset("tiny", faults=Faults(error_5xx_rate=0.3, seed=3))) as sim:
            s = requests.Session()
            s.headers.update(hdr(sim))
            paths = ["/v2/me", "/v2/me/collaborations"] + [f"/v2/user/{u['id']}" for u in sim.truth()["users"]]
            statuses = []
            for p in paths:
                for _attempt in range(3):
                    r = s.get(sim.base_url + p)
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        break
                assert r.status_code == 200
            return statuses
    a, b = run(), run()
    assert a == b
    assert any(s >= 500 for s in a)


def test_fail_every_attempt_when_disabled(fresh_sim):
    sim = fresh_sim
    sim.set_faults(Faults(error_5xx_rate=1.0, fail_first_attempt_only=False))
    for _ in range(3):
        assert requests.get(sim.base_url + "/v2/me", headers=hdr(sim)).status_code >= 500


def test_rate_limit():
    with Simulator(SimulatorSettings.preset("tiny", rate_limit_rps=5)) as sim:
        s = requests.Session()
        s.headers.update(hdr(sim))
        rs = [s.get(sim.base_url + "/v2/me") for _ in range(12)]
        ok = [r for r in rs if r.status_code == 200]
        limited = [r for r in rs if r.status_code == 429]
        assert ok and limited
        for r in ok:
            assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(r.headers)
        r = limited[0]
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["RateLimit-Remaining"] == "0"
        assert r.json() == {"message": "Rate limit exceeded."}
        time.sleep(int(r.headers["Retry-After"]))
        assert s.get(sim.base_url + "/v2/me").status_code == 200
        # admin endpoints are never limited
        for _ in range(10):
            assert s.get(sim.base_url.replace("/api", "/_sim/stats")).status_code == 200


def test_latency():
    with Simulator(SimulatorSettings.preset("tiny", latency_ms=120)) as sim:
        t = time.time()
        requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
        assert time.time() - t >= 0.12
        t = time.time()
        requests.get(sim.base_url.replace("/api", "/_sim/stats"))
        assert time.time() - t < 0.12


def test_activity_and_finish_change_truth(fresh_sim):
    sim = fresh_sim
    before = sim.truth()
    nonterm = [w for w in before["workflows"] if w["status"] not in TERMINAL]
    assert nonterm, "tiny must have a readable running/on_hold workflow"
    assert any(w["status"] == "on_hold" for w in nonterm)
    new_ids = sim.add_activity(pipelines=6)
    after = sim.truth()
    assert len(after["pipelines"]) == len(before["pipelines"]) + 6
    # the newest pipelines come first in the org feed and are served over HTTP
    org = after["collaborations"][0]["slug"]
    feed = requests.get(sim.base_url + "/v2/pipeline", params={"org-slug": org}, headers=hdr(sim)).json()["items"]
    org_new = [p["id"] for p in after["pipelines"] if p["id"] in new_ids and p["org_slug"] == org]
    assert [p["id"] for p in feed[:len(org_new)]] == org_new
    assert len(after["workflows"]) > len(before["workflows"])
    sim.finish_running()
    done = sim.truth()
    assert all(w["status"] in TERMINAL and w["stopped_at"] for w in done["workflows"])
    assert len(done["jobs"]) > len(after["jobs"])
    ids = {w["id"] for w in nonterm}
    finished = [w for w in done["workflows"] if w["id"] in ids]
    assert {w["status"] for w in finished} <= {"success", "failed"}
    approvals = [j for j in done["jobs"] if j["workflow_id"] in ids and j["type"] == "approval" and j["status"] == "success"]
    assert approvals and all(j.get("approved_by") for j in approvals)
    # served job lists agree with truth after finishing
    wf = finished[0]
    jobs = requests.get(sim.base_url + f"/v2/workflow/{wf['id']}/job", headers=hdr(sim)).json()["items"]
    assert [j["id"] for j in jobs] == [j["id"] for j in done["jobs"] if j["workflow_id"] == wf["id"]][:20]


def test_request_log_and_stats(fresh_sim):
    sim = fresh_sim
    for _ in range(2):
        requests.get(sim.base_url + "/v2/me", headers=hdr(sim))
    requests.get(sim.base_url + "/v2/me/collaborations?x=1", headers=hdr(sim))
    log = sim.request_log()
    assert [(e["path"], e["attempt"], e["status"]) for e in log] == [
        ("/api/v2/me", 1, 200), ("/api/v2/me", 2, 200), ("/api/v2/me/collaborations?x=1", 1, 200)]
    st = requests.get(sim.base_url.replace("/api", "/_sim/stats")).json()
    assert st == {"requests": 3, "distinct_urls": 2, "duplicates": 1, "by_status": {"200": 3}}
    sim.reset_request_log()
    assert sim.request_log() == []


def test_admin_endpoints(fresh_sim):
    sim = fresh_sim
    admin = sim.base_url.replace("/api", "/_sim")
    t = requests.get(admin + "/truth").json()
    assert len(t["pipelines"]) == 60
    assert requests.post(admin + "/activity", json={"pipelines": 3}).json()["ok"]
    assert len(requests.get(admin + "/truth").json()["pipelines"]) == 63
    assert requests.post(admin + "/finish").status_code == 200
    assert requests.post(admin + "/faults", json={"throttle_rate": 1.0}).status_code == 200
    assert requests.get(sim.base_url + "/v2/me", headers=hdr(sim)).status_code == 429
    assert requests.post(admin + "/faults", json={"bogus": 1}).status_code == 400
    assert requests.post(admin + "/faults", json={}).status_code == 200
    assert requests.get(sim.base_url + "/v2/me", headers=hdr(sim)).status_code == 200
    assert len(requests.get(admin + "/requests").json()) == 2
    requests.post(admin + "/reset_requests")
    assert requests.get(admin + "/requests").json() == []


def test_cli():
    proc = subprocess.Popen([sys.executable, "-m", "circleci_simulator", "--size", "tiny", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        tok = proc.stdout.readline().strip()
        assert url.startswith("CIRCLECI_SIMULATOR_URL=http://127.0.0.1:")
        assert tok.startswith("CIRCLECI_SIMULATOR_TOKEN=")
        base, token = url.split("=", 1)[1], tok.split("=", 1)[1]
        assert requests.get(base + "/v2/me", headers={"Circle-Token": token}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
