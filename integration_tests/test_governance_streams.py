"""The deployment and governance streams (issue 12) through the console script, against the tiny simulator.

One full sync of every stream, and one sync after new activity, are shared by the module's tests.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Iterator
from urllib.parse import quote, quote_plus

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from integration_tests.harness import CORE_STREAMS, Output, TwoSyncs, catalog, run_connector, sync_twice
from source_circleci_ccm.components.streams import STREAM_NAMES

GOVERNANCE_STREAMS = (
    "deploy_environments",
    "deploy_components",
    "deploy_component_versions",
    "job_tests",
    "job_artifacts",
    "project_schedules",
    "pipeline_definitions",
    "pipeline_triggers",
    "policy_settings",
    "policy_bundles",
    "policy_decisions",
    "org_groups",
    "url_orb_allow_list",
    "webhooks",
)
KEYS = {
    "deploy_component_versions": ("component_id", "environment_id", "name"),
    "job_tests": ("job_id", "test_index"),
    "job_artifacts": ("job_id", "node_index", "path"),
    "policy_settings": ("owner_id",),
    "policy_bundles": ("owner_id", "name"),
}
# Every endpoint of issue 12, as the simulator logs it.
NEW_ENDPOINT = re.compile(
    r"^/api/v2/(deploy/|owner/|organizations/[^/]+/groups|organization/[^/]+/url-orb-allow-list|webhook\b|projects/"
    r"|project/[^/]+/[^/]+/[^/]+/(schedule|\d+/(tests|artifacts)))"
)
JOB_LIST = re.compile(r"^/api/v2/project/([^/]+/[^/]+/[^/]+)/(\d+)/(tests|artifacts)")
SWITCHED_OFF = ("deploy", "policy", "groups", "url_orb_allow_list", "schedules", "webhooks", "pipeline_definitions")


def key_of(stream: str, record: dict[str, Any]) -> Any:
    return tuple(record.get(k) for k in KEYS.get(stream, ("id",)))


def paths(log: list[dict[str, Any]]) -> list[str]:
    return [entry["path"] for entry in log]


@pytest.fixture(scope="module")
def syncs() -> Iterator[TwoSyncs]:
    with Simulator(SimulatorSettings.preset("tiny", policy_orgs=(0, 1))) as sim:
        # security_controls judges a pipeline again on all of it once a workflow of it finishes (it re-reads the
        # earlier workflows' job lists, tests and artifacts then); the repeat sync is about the evidence streams.
        yield sync_twice(sim, STREAM_NAMES, [name for name in STREAM_NAMES if name != "security_controls"])


def test_a_full_sync_of_every_stream_succeeds(syncs: TwoSyncs) -> None:
    assert syncs.full.returncode == 0, syncs.full.stderr[-2000:]
    assert syncs.full.errors == []


@pytest.mark.parametrize("stream", GOVERNANCE_STREAMS)
def test_a_full_sync_holds_exactly_what_the_simulator_holds(syncs: TwoSyncs, stream: str) -> None:
    truth = {key_of(stream, r): r for r in syncs.truth[stream]}
    got = [key_of(stream, r) for r in syncs.full.records.get(stream, [])]
    assert len(got) == len(set(got)), f"{stream}: duplicates {[k for k, n in Counter(got).items() if n > 1][:3]}"
    assert set(got) == set(truth) and truth
    for record in syncs.full.records[stream]:
        want = truth[key_of(stream, record)]
        assert {field: record.get(field) for field in want} == want  # a null field may be left out
        assert set(record) <= set(want) | {"message"}, set(record) - set(want)


def test_a_full_sync_requests_each_url_once(syncs: TwoSyncs) -> None:
    repeated = [path for path, n in Counter(paths(syncs.full_requests)).items() if n > 1]
    assert not repeated, repeated[:5]
    assert sum(1 for p in paths(syncs.full_requests) if NEW_ENDPOINT.match(p)) > 0


def test_the_core_streams_alone_request_none_of_the_new_endpoints() -> None:
    with Simulator(SimulatorSettings.preset("tiny")) as sim:
        out = run_connector("read", {"api_token": sim.token, "api_url": sim.base_url}, catalog(CORE_STREAMS))
        assert out.returncode == 0, out.stderr[-2000:]
        assert [p for p in paths(sim.request_log()) if NEW_ENDPOINT.match(p)] == []


def test_a_repeat_sync_re_reads_no_finished_jobs_tests_or_artifacts(syncs: TwoSyncs) -> None:
    assert syncs.repeat.returncode == 0, syncs.repeat.stderr[-2000:]
    first = {m.groups() for m in map(JOB_LIST.match, paths(syncs.full_requests)) if m}
    again = {m.groups() for m in map(JOB_LIST.match, paths(syncs.repeat_requests)) if m}
    assert first and not (first & again), sorted(first & again)[:5]
    # ...and it emits the tests and artifacts of the jobs that finished since.
    for stream in ("job_tests", "job_artifacts"):
        new = {key_of(stream, r) for r in syncs.truth_after[stream]} - {key_of(stream, r) for r in syncs.truth[stream]}
        assert {key_of(stream, r) for r in syncs.repeat.records.get(stream, [])} == new


def test_a_repeat_sync_emits_only_new_decisions_and_changed_versions(syncs: TwoSyncs) -> None:
    before = {r["id"] for r in syncs.truth["policy_decisions"]}
    new = {r["id"] for r in syncs.truth_after["policy_decisions"]} - before
    assert {r["id"] for r in syncs.repeat.records.get("policy_decisions", [])} == new
    old = {key_of("deploy_component_versions", r): r for r in syncs.truth["deploy_component_versions"]}
    changed = {key_of("deploy_component_versions", r) for r in syncs.truth_after["deploy_component_versions"] if old.get(key_of("deploy_component_versions", r)) != r}
    assert {key_of("deploy_component_versions", r) for r in syncs.repeat.records.get("deploy_component_versions", [])} == changed


def _whole_output(out: Output) -> str:
    return json.dumps(out.messages) + out.stderr


@pytest.mark.parametrize("kind", ["webhook_signing_secrets", "artifact_urls"])
def test_secrets_appear_nowhere_in_the_output(syncs: TwoSyncs, kind: str) -> None:
    secrets = syncs.truth["secrets"][kind]
    assert secrets
    text = _whole_output(syncs.full) + _whole_output(syncs.repeat)
    for secret in secrets:
        signature = secret.split("verification-token=")[-1]
        for form in {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], signature}:
            assert form not in text


def test_new_controls_show_up_with_evidence(syncs: TwoSyncs) -> None:
    records = syncs.full.records["security_controls"]
    seen = Counter((r["control_id"], r["status"]) for r in records)
    for control in ("tests_passed", "sbom_generated", "deployed_version_controlled", "config_policies_enforced", "webhooks_verify_tls"):
        assert any(seen[(control, status)] for status in ("pass", "fail")), (control, seen)
        assert all(r["evidence"] for r in records if r["control_id"] == control and r["status"] in ("pass",))
    deployments = [r for r in records if r["scope"] == "deployment"]
    live = {(v["component_id"], v["environment_id"], v["name"]) for v in syncs.truth["deploy_component_versions"] if v["is_live"]}
    assert deployments and {tuple(r["record_id"].split(":")[1].split("/")) for r in deployments} <= live


@pytest.mark.parametrize("status", [403, 404])
def test_an_account_without_the_features_gets_one_named_warning_each_and_a_successful_sync(status: int) -> None:
    settings = SimulatorSettings.preset("tiny", features_off=SWITCHED_OFF, feature_absent_status={f: status for f in SWITCHED_OFF})
    with Simulator(settings) as sim:
        truth = sim.truth()
        streams = [s for s in GOVERNANCE_STREAMS if s not in ("job_tests", "job_artifacts")] + ["security_controls"]
        out = run_connector("read", {"api_token": sim.token, "api_url": sim.base_url}, catalog(streams))
        log = paths(sim.request_log())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.errors == []
    assert all(not out.records.get(s) for s in GOVERNANCE_STREAMS)
    warnings = [w for w in out.logs("WARN") if w.startswith("Skipped ") and not w.startswith("Skipped during")]
    orgs = [c["slug"] for c in truth["collaborations"]]
    for feature in ("deploys", "config policies", "groups", "URL orb allow-list"):
        for org in orgs:
            named = [w for w in warnings if w.startswith(f"Skipped {feature} of organisation {org}:")]
            assert len(named) == 1, (feature, org, warnings)
    for feature, projects in (("schedules", truth["feature_absent"]["schedules"]), ("webhooks", truth["feature_absent"]["webhooks"])):
        for project in projects:
            assert len([w for w in warnings if w.startswith(f"Skipped {feature} of project {project}:")]) == 1
    # Once absent, a feature is not asked again: streams running side by side may each ask one list first, but
    # no component's versions are asked, and no policy endpoint twice.
    assert sum(1 for p in log if p.startswith("/api/v2/deploy/")) <= 2 * len(orgs)
    assert not [p for p in log if "/versions" in p]
    assert sum(1 for p in log if p.startswith("/api/v2/owner/")) <= 3 * len(orgs)
    unknown = [r for r in out.records["security_controls"] if r["control_id"] == "config_policies_enforced"]
    assert unknown and all(r["status"] == "unknown" and "plan" in r["reason"] for r in unknown)
