"""The token never leaks: every scenario of the reliability suite, run with a distinctive token (at DEBUG
level too), and all output searched for it in the forms it could take. Context variable values are
never asked for; project variable values stay as masked as CircleCI returns them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import quote, quote_plus, unquote, urlsplit

import pytest

from circleci_simulator import Faults, Simulator, SimulatorSettings
from integration_tests.harness import CORE_STREAMS, catalog, connector_command

SECRET = "CCIPAT_S3cr3tT0k3n_9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e"
OTHER_SECRET = "CCIPAT_R3v0k3dT0k3n_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c"  # one CircleCI rejects (401)
ALL_STREAMS = (
    "me", "collaborations", "pipelines", "workflows", "jobs", "contexts", "context_env_vars",
    "context_restrictions", "project_env_vars", "projects",
)


def forms(secret: str) -> list[str]:
    forms_ = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode(),
        base64.b64encode(f"{secret}:".encode()).decode(),  # HTTP basic auth with the token as user name
        secret[::-1],
    }
    # base64 of the token inside a longer string starts at any of 3 alignments: look for a long core.
    forms_ |= {base64.b64encode(secret.encode())[4:-4].decode(), secret[4:-4]}
    return sorted(forms_)


@dataclass
class Scenario:
    command: str
    config: dict[str, Any]
    streams: tuple[str, ...] = CORE_STREAMS
    faults: Faults = field(default_factory=Faults)
    debug: bool = True
    state_from: Optional[str] = None  # the name of a scenario whose final state this one starts from


@dataclass
class Result:
    stdout: str
    stderr: str
    returncode: int
    paths: list[str]


def _run(sim: Simulator, scenario: Scenario, state: Optional[list] = None) -> Result:
    sim.set_faults(scenario.faults)
    with tempfile.TemporaryDirectory() as folder:
        args = connector_command() + [scenario.command]
        if scenario.debug:
            args.append("--debug")
        files = {"config": scenario.config, "catalog": catalog(scenario.streams) if scenario.command == "read" else None, "state": state}
        for flag, value in files.items():
            if value is not None and scenario.command != "spec":
                path = Path(folder) / f"{flag}.json"
                path.write_text(json.dumps(value))
                args += [f"--{flag}", str(path)]
        sim.reset_request_log()
        done = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=folder, env=dict(os.environ))
        paths = [entry["path"] for entry in sim.request_log()]
    return Result(done.stdout, done.stderr, done.returncode, paths)


def _last_states(stdout: str) -> list[dict[str, Any]]:
    states: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            message = json.loads(line)
            if message["type"] == "STATE":
                states[message["state"]["stream"]["stream_descriptor"]["name"]] = message["state"]
    return list(states.values())


def _scenarios(sim: Simulator) -> dict[str, Scenario]:
    good = {"api_token": SECRET, "api_url": sim.base_url, "request_timeout_seconds": 1}
    restricted = sim.truth()["restricted_projects"][0]
    return {
        "spec": Scenario("spec", {}),
        "check": Scenario("check", good),
        "check at INFO level": Scenario("check", good, debug=False),
        "check, token with whitespace around it": Scenario("check", {**good, "api_token": f"  {SECRET}\n"}),
        "check, rejected token": Scenario("check", {**good, "api_token": OTHER_SECRET}),
        "discover": Scenario("discover", good),
        "read, clean": Scenario("read", good, ALL_STREAMS),
        "read, clean at INFO level": Scenario("read", good, debug=False),
        "read, incremental from the clean run's state": Scenario("read", good, state_from="read, clean"),
        "read, every retried fault": Scenario(
            "read",
            good,
            faults=Faults(
                error_5xx_rate=0.03, html_error_rate=0.03, reset_rate=0.03, slow_rate=0.02, slow_seconds=2,
                truncated_rate=0.03, non_json_rate=0.03, throttle_rate=0.03, seed=5,
            ),
        ),
        "read, 429 with RateLimit-Reset only": Scenario("read", good, faults=Faults(throttle_rate=0.05, retry_after_mode="reset-only", seed=6)),
        "read, page token answering 404": Scenario("read", good, faults=Faults(stale_page_token_status=404)),
        "read, page token answering 400": Scenario("read", good, faults=Faults(stale_page_token_status=400)),
        "read, restricted project": Scenario("read", {**good, "project_slugs": [restricted]}, ("pipelines", "workflows", "jobs")),
        "read, rejected token": Scenario("read", {**good, "api_token": OTHER_SECRET}),
        "read, token with whitespace around it": Scenario("read", {**good, "api_token": f"\t{SECRET} "}, ("me",)),
        "check, token with a space inside": Scenario("check", {**good, "api_token": SECRET[:20] + " " + SECRET[20:]}),
        "read, token with a space inside": Scenario("read", {**good, "api_token": SECRET[:20] + " " + SECRET[20:]}),
        "check, unknown org": Scenario("check", {**good, "org_slugs": ["gh/nope"]}),
        "read, unknown org": Scenario("read", {**good, "org_slugs": ["gh/nope"]}),
        "read, num_workers out of range": Scenario("read", {**good, "num_workers": 0}),
        "check, api_url with credentials": Scenario("check", {**good, "api_url": f"https://me:{SECRET}@circleci.com/api"}),
        "check, unreachable api_url": Scenario("check", {**good, "api_url": "http://127.0.0.1:9/api"}),
    }


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, Result]]:
    """Each scenario on its own simulator that only accepts SECRET, a few at a time."""

    def one(name: str) -> tuple[str, Result]:
        with Simulator(SimulatorSettings.preset("tiny", token=SECRET)) as sim:
            scenarios = _scenarios(sim)
            scenario = scenarios[name]
            state = None
            if scenario.state_from:
                state = _last_states(_run(sim, scenarios[scenario.state_from]).stdout)
            return name, _run(sim, scenario, state)

    with Simulator(SimulatorSettings.preset("tiny", token=SECRET)) as probe:
        names = list(_scenarios(probe))
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield dict(pool.map(one, names))


def test_every_scenario_ran(results: dict[str, Result]) -> None:
    assert results["read, clean"].returncode == 0 and '{"type":"RECORD"' in results["read, clean"].stdout
    assert results["read, every retried fault"].returncode == 0
    assert results["read, rejected token"].returncode != 0
    assert '{"type": "DEBUG", "message": "Making outbound API request"' in results["read, clean"].stdout, "debug logs were on"


@pytest.mark.parametrize("secret", [SECRET, OTHER_SECRET], ids=["token", "rejected token"])
def test_the_token_appears_in_no_output(results: dict[str, Result], secret: str) -> None:
    leaks = []
    for name, result in results.items():
        for stream_name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            for form in forms(secret):
                if form in text or form in unquote(text):
                    leaks.append(f"{name}: {stream_name} holds {form[:12]}…")
    assert not leaks, leaks


def test_the_secret_filter_masks_derived_forms_of_the_token() -> None:
    """The CDK masks only the raw config values; the source adds the trimmed, URL-encoded and base64 forms."""
    from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets

    from source_circleci_ccm.source import SourceCircleciCcm

    update_secrets([f"  {SECRET}\n"])  # what the CDK registers from a config with whitespace around the token
    source = SourceCircleciCcm(config={"api_token": f"  {SECRET}\n", "api_url": "http://127.0.0.1:9/api"})
    source.register_secrets()
    for form in (SECRET, quote(SECRET, safe=""), base64.b64encode(SECRET.encode()).decode()):
        assert filter_secrets(f"before {form} after") == "before **** after"
    update_secrets([])


def test_context_variable_values_are_never_requested(results: dict[str, Result]) -> None:
    paths = [unquote(urlsplit(path).path) for path in results["read, clean"].paths]
    context_paths = [path for path in paths if path.startswith("/api/v2/context/")]
    assert any(path.endswith("/environment-variable") for path in context_paths), "variable names were listed"
    allowed = re.compile(r"^/api/v2/context/[^/]+/(environment-variable|restrictions)$")
    assert all(allowed.match(path) for path in context_paths), [p for p in context_paths if not allowed.match(p)]
    assert not any("value" in path.lower() for path in paths)


def test_context_variable_records_hold_names_never_values(results: dict[str, Result]) -> None:
    records = [json.loads(line)["record"] for line in results["read, clean"].stdout.splitlines() if line.startswith('{"type":"RECORD"')]
    variables = [r["data"] for r in records if r["stream"] == "context_env_vars"]
    assert variables and all("value" not in record for record in variables)
    project_variables = [r["data"] for r in records if r["stream"] == "project_env_vars"]
    assert project_variables and all(re.fullmatch(r"x+.{0,4}", str(r["value"])) for r in project_variables), project_variables[:3]
