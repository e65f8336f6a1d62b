"""Controls over what CircleCI's run, deploy and governance APIs say (issue 12): pure functions over answers
the sync already fetched for the streams (job tests and artifacts, component versions, policy settings and
bundle, webhooks)."""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from .catalogue import Catalogue
from .results import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, ControlResult, evidence, trim

FAILED_RESULTS = frozenset({"failure", "failed", "error", "errored"})
SKIPPED_RESULTS = frozenset({"skipped", "skip"})
# A command that produces an SBOM: Syft, CycloneDX tools and plugins, `docker sbom`, Trivy/Grype with an SBOM format.
SBOM_COMMAND = re.compile(
    r"\bsyft\b|\bcyclonedx[\w:-]*|\bcdxgen\b|\bdocker\s+sbom\b|\bspdx-sbom-generator\b|\bbom\s+generate\b"
    r"|\btrivy\b[^\n]*--format[ =](cyclonedx|spdx(-json)?)\b|\bsbom\b[^\n]*\b(generate|create)\b",
    re.IGNORECASE,
)
SBOM_ARTIFACT = re.compile(r"(\.cdx|\.spdx|[._/-]sbom|\bbom)\.(json|xml)$|\.spdx$|(^|/)sbom[^/]*$", re.IGNORECASE)
MAX_NAMED = 10




def evaluate_tests(cat: Catalogue, jobs: list[tuple[Mapping[str, Any], Optional[list[Mapping[str, Any]]]]],
                   finished: bool) -> ControlResult:
    """`jobs`: (build job, its test metadata or None when CircleCI did not serve it) of the finished workflows."""
    control = "tests_passed"
    if not finished:
        return cat.result(control, UNKNOWN, reason="the pipeline has not finished: its tests are judged once it has")
    ran, failed, ev = 0, [], []
    for job, tests in jobs:
        if not tests:
            continue
        failures = [t for t in tests if str(t.get("result") or "").lower() in FAILED_RESULTS]
        run = [t for t in tests if str(t.get("result") or "").lower() not in SKIPPED_RESULTS]
        ran += len(run)
        failed += [(job, t) for t in failures]
        ev.append(evidence(f"jobs.{job.get('name')}.tests", job=job.get("name"), rule_id="run.job-tests",
                           matched=f"{len(run)} test(s) ran, {len(failures)} failed", job_number=job.get("job_number"),
                           tests=len(tests), failed=len(failures)))
    if not ev:
        return cat.result(control, UNKNOWN, reason="no build job of the pipeline stored test metadata (store_test_results), "
                                                     "so whether tests ran and passed is not known")
    if failed:
        names = ", ".join(f"{t.get('classname') or ''}{'.' if t.get('classname') else ''}{t.get('name')} ({j.get('name')})"
                          for j, t in failed[:MAX_NAMED])
        more = f" and {len(failed) - MAX_NAMED} more" if len(failed) > MAX_NAMED else ""
        return cat.result(control, FAIL, ev, reason=trim(f"{len(failed)} test(s) failed: {names}{more}", 300) or "")
    if ran == 0:
        return cat.result(control, FAIL, ev, reason="test metadata was stored but every test was skipped: no test ran")
    return cat.result(control, PASS, ev)


def evaluate_sbom(cat: Catalogue, config_text: Optional[str],
                  artifacts: list[tuple[Mapping[str, Any], Optional[list[Mapping[str, Any]]]]]) -> ControlResult:
    """An SBOM tool in the configuration's commands, or an artifact (path) that is an SBOM."""
    control = "sbom_generated"
    ev = []
    for job, items in artifacts:
        for item in items or ():
            path = str(item.get("path") or "")
            if SBOM_ARTIFACT.search(path):
                ev.append(evidence(f"jobs.{job.get('name')}.artifacts", job=job.get("name"), rule_id="run.sbom-artifact",
                                   matched=path, job_number=job.get("job_number"), node_index=item.get("node_index")))
                break
    for number, line in enumerate((config_text or "").splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        hit = SBOM_COMMAND.search(line)
        if hit:
            ev.append(evidence(f"config.line.{number}", rule_id="config.sbom-tool", matched=line.strip()))
            break
    if ev:
        return cat.result(control, PASS, ev)
    if config_text is None and all(items is None for _, items in artifacts):
        return cat.result(control, UNKNOWN, reason="neither the pipeline's configuration nor its artifacts could be read")
    return cat.result(control, FAIL, reason="no SBOM tool runs in the configuration and no artifact is an SBOM")


def evaluate_deployed_version(cat: Catalogue, version: Mapping[str, Any], component: Mapping[str, Any],
                              environment: Mapping[str, Any], pipeline_results: Mapping[str, ControlResult]) -> ControlResult:
    """A live version passes when the pipeline that deployed it passed each *_before_deploy control."""
    control = "deployed_version_controlled"
    needed = ("tests_before_deploy", "scans_before_deploy", "approval_gate_before_deploy")
    statuses = {name: (pipeline_results[name].status if name in pipeline_results else UNKNOWN) for name in needed}
    ev = [evidence(f"deploy.{component.get('name') or component.get('id')}.{environment.get('name') or environment.get('id')}",
                   rule_id="deploy.live-version",
                   matched=f"{version.get('name')} live in {environment.get('name') or environment.get('id')}",
                   component=component.get("name") or component.get("id"), component_id=component.get("id"),
                   environment=environment.get("name") or environment.get("id"), environment_id=environment.get("id"),
                   version=version.get("name"), pipeline_id=version.get("pipeline_id"), job_number=version.get("job_number"),
                   last_deployed_at=version.get("last_deployed_at"), **{f"pipeline_{k}": v for k, v in statuses.items()})]
    failed = [name for name, status in statuses.items() if status == FAIL]
    if failed:
        return cat.result(control, FAIL, ev, reason=f"the deploying pipeline failed {', '.join(failed)}")
    if all(status == PASS for status in statuses.values()):
        return cat.result(control, PASS, ev)
    open_ = ", ".join(f"{name} is {status}" for name, status in statuses.items() if status != PASS)
    return cat.result(control, UNKNOWN, ev, reason=f"the deploying pipeline's controls are not all known: {open_}")


def evaluate_config_policies(cat: Catalogue, org_slug: str, settings: Any, policies: Optional[list[Mapping[str, Any]]]) -> ControlResult:
    control = "config_policies_enforced"
    if not isinstance(settings, Mapping) or policies is None:
        return cat.result(control, UNKNOWN, reason=f"CircleCI did not serve the config policies of {org_slug} (403/404): "
                                                     "config policies are not on the organization's plan, or the token "
                                                     "cannot read them")
    names = sorted({str(p.get("name")) for p in policies if p.get("name")})
    ev = [evidence(f"organization.{org_slug}.config_policies", rule_id="policy.settings-and-bundle",
                   matched=f"decisions enabled: {str(settings.get('enabled')).lower()}, {len(names)} policy(ies)",
                   enabled=settings.get("enabled"), policies=names)]
    if settings.get("enabled") is not True:
        return cat.result(control, FAIL, ev, reason="config policy decisions are not enabled for the organization")
    if not names:
        return cat.result(control, FAIL, ev, reason="config policy decisions are enabled but the bundle holds no policy")
    return cat.result(control, PASS, ev)


def evaluate_webhooks(cat: Catalogue, project_slug: str, hooks: Optional[Iterable[Mapping[str, Any]]]) -> ControlResult:
    control = "webhooks_verify_tls"
    if hooks is None:
        return cat.result(control, UNKNOWN, reason=f"CircleCI did not serve the webhooks of {project_slug}")
    hooks = list(hooks)
    if not hooks:
        return cat.result(control, NOT_APPLICABLE, reason="the project has no webhook")
    ev, bad = [], []
    for hook in hooks:
        url = str(hook.get("url") or "")
        https, verify = url.lower().startswith("https://"), hook.get("verify-tls") is True
        ev.append(evidence(f"webhooks.{hook.get('name') or hook.get('id')}", rule_id="webhook.https-verify-tls",
                           matched=f"{url.split('?')[0][:120]} verify-tls: {str(hook.get('verify-tls')).lower()}",
                           webhook_id=hook.get("id"), https=https, verify_tls=hook.get("verify-tls")))
        if not (https and verify):
            why = " and ".join(w for w, ok in (("not https", https), ("does not verify TLS", verify)) if not ok)
            bad.append(f"{hook.get('name') or hook.get('id')} ({why})")
    if bad:
        return cat.result(control, FAIL, ev, reason=trim("webhooks without a verified https receiver: " + ", ".join(bad), 300) or "")
    return cat.result(control, PASS, ev)
