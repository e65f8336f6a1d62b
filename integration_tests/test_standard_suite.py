"""Airbyte's standard tests (airbyte_cdk.test.standard_tests) against the bundled CircleCI simulator.

The scenarios come from acceptance-test-config.yml: spec, connection (valid and invalid config), discovery,
basic_read and full_refresh. Their configs (integration_tests/*_config.json) hold the placeholder
`http://127.0.0.1:0/api`; this module starts one simulator for the module and points every scenario at it.

The Docker-image tests of the suite (`test_docker_image_*`) build and run the connector image and need a
Docker daemon, which these machines do not have: they are skipped by name, and every other standard test runs.

Below the suite, tests of what the standard suite does not collect: reads from sample_state.json and
abnormal_state.json, and that configured_catalog.json and abnormal_state.json keep up with the streams.

Regenerate configured_catalog.json and abnormal_state.json after adding a stream:
    .venv/bin/python integration_tests/test_standard_suite.py --write
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import pytest
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from airbyte_cdk.test.standard_tests._job_runner import IConnector

# The CDK's hook that parametrizes `scenario` with the scenarios of acceptance-test-config.yml.
from airbyte_cdk.test.standard_tests.pytest_hooks import pytest_generate_tests  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python integration_tests/test_standard_suite.py --write`
    sys.path.insert(0, str(REPO))

from circleci_simulator import Simulator, SimulatorSettings  # noqa: E402
from integration_tests.harness import run_connector  # noqa: E402
from source_circleci_ccm.source import SourceCircleciCcm  # noqa: E402

HERE = Path(__file__).resolve().parent
PLACEHOLDER_API_URL = "http://127.0.0.1:0/api"
SAMPLE_CONFIG = json.loads((HERE / "sample_config.json").read_text())
NO_DOCKER = "needs a Docker daemon to build and run the connector image; none runs on these machines"
FAR_FUTURE = "2100-01-01T00:00:00.000Z"

_simulator: dict[str, Simulator] = {}


@pytest.fixture(scope="module", autouse=True)
def simulator() -> Iterator[Simulator]:
    """One simulated CircleCI for the module, accepting the token of sample_config.json."""
    with Simulator(SimulatorSettings.preset("tiny", token=SAMPLE_CONFIG["api_token"])) as sim:
        _simulator["sim"] = sim
        try:
            yield sim
        finally:
            _simulator.pop("sim", None)


def at_simulator(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with the placeholder api_url replaced by the running simulator's URL."""
    pointed = dict(config)
    if pointed.get("api_url") == PLACEHOLDER_API_URL:
        if "sim" not in _simulator:
            raise RuntimeError("The simulator fixture of this module is not running.")
        pointed["api_url"] = _simulator["sim"].base_url
    return pointed


class SourceAtSimulator(SourceCircleciCcm):
    """The connector, with placeholder URLs in config files pointed at the module's simulator.

    The standard tests write the scenario's config (placeholder and all) to a file and pass `--config`;
    the source reads that file through `read_config`, so the URL is replaced there as well as in the
    config given to the constructor.
    """

    @staticmethod
    def read_config(config_path: str) -> dict[str, Any]:
        return at_simulator(SourceCircleciCcm.read_config(config_path))


def _skipped(method: Callable[..., Any], reason: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def skipped(self: Any, *args: Any, **kwargs: Any) -> None:
        pytest.skip(reason)

    return pytest.mark.skip(reason=reason)(skipped)


class TestStandardSuite(SourceTestSuiteBase):
    """Every standard source test for source-circleci-ccm, except those that need Docker."""

    # The suite names the connector after its folder; a clone may live in a folder of any name.
    connector_name = "source-circleci-ccm"

    @classmethod
    def create_connector(cls, scenario: Optional[ConnectorTestScenario]) -> IConnector:
        config = None
        if scenario is not None:
            raw = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True)
            config = at_simulator(raw) if raw else None
        return SourceAtSimulator(catalog=None, config=config, state=None)


for _name in dir(SourceTestSuiteBase):
    if _name.startswith("test_docker_image_"):
        setattr(TestStandardSuite, _name, _skipped(getattr(SourceTestSuiteBase, _name), NO_DOCKER))


# --- what the standard suite does not collect ---------------------------------------------------------
def _configured_catalog() -> dict[str, Any]:
    return json.loads((HERE / "configured_catalog.json").read_text())


def _discovered_streams() -> list[dict[str, Any]]:
    output = run_connector("discover", at_simulator(SAMPLE_CONFIG))
    assert output.returncode == 0, output.stderr[-2000:]
    return output.of_type("CATALOG")[0]["catalog"]["streams"]


def _incremental_catalog() -> dict[str, Any]:
    """configured_catalog.json, with every stream that supports it read incrementally."""
    catalog = _configured_catalog()
    for configured in catalog["streams"]:
        if "incremental" in configured["stream"]["supported_sync_modes"]:
            configured["sync_mode"] = "incremental"
    return catalog


def _state(name: str) -> list[dict[str, Any]]:
    return json.loads((HERE / name).read_text())


def test_configured_catalog_lists_every_discovered_stream() -> None:
    discovered = {stream["name"] for stream in _discovered_streams()}
    listed = {configured["stream"]["name"] for configured in _configured_catalog()["streams"]}
    assert listed == discovered, (
        f"integration_tests/configured_catalog.json is out of date: missing {sorted(discovered - listed)}, "
        f"not discovered {sorted(listed - discovered)}. Regenerate it: "
        ".venv/bin/python integration_tests/test_standard_suite.py --write"
    )


def test_abnormal_state_covers_every_incremental_stream() -> None:
    incremental = {s["name"] for s in _discovered_streams() if "incremental" in s["supported_sync_modes"]}
    in_state = {entry["stream"]["stream_descriptor"]["name"] for entry in _state("abnormal_state.json")}
    assert in_state == incremental, (
        f"integration_tests/abnormal_state.json should hold every incremental stream: missing "
        f"{sorted(incremental - in_state)}, extra {sorted(in_state - incremental)}. Regenerate it: "
        ".venv/bin/python integration_tests/test_standard_suite.py --write"
    )


def test_read_from_abnormal_state_returns_no_activity_cleanly(simulator: Simulator) -> None:
    """A state from the far future: the incremental streams return nothing, and the sync ends successfully."""
    catalog = _incremental_catalog()
    output = run_connector("read", at_simulator(SAMPLE_CONFIG), catalog, _state("abnormal_state.json"))
    assert output.returncode == 0, output.stderr[-2000:]
    assert not output.errors
    incremental = [c["stream"]["name"] for c in catalog["streams"] if c["sync_mode"] == "incremental"]
    assert incremental, "configured_catalog.json has no incremental stream"
    assert {name: len(output.records.get(name, [])) for name in incremental} == {name: 0 for name in incremental}
    # Full-refresh streams are still read, and every incremental stream still reports its state.
    assert output.records.get("me")
    assert set(incremental) <= set(output.states)


def test_read_from_sample_state_continues_from_it(simulator: Simulator) -> None:
    """A state from an old sync (2001) of one organisation: everything newer is read, and state moves on."""
    output = run_connector("read", at_simulator(SAMPLE_CONFIG), _incremental_catalog(), _state("sample_state.json"))
    assert output.returncode == 0, output.stderr[-2000:]
    assert not output.errors
    truth = simulator.truth()
    assert sorted(output.ids("pipelines")) == sorted(p["id"] for p in truth["pipelines"])
    new_state = output.states["pipelines"]["stream"]["stream_state"]
    assert new_state["server_time"] > "2001-01-01T00:00:00.000Z"
    assert set(new_state["feeds"]) == {c["slug"] for c in truth["collaborations"]}


# --- regenerating the files above ---------------------------------------------------------------------
def write_files() -> None:
    """Rewrite configured_catalog.json and abnormal_state.json from what the connector discovers."""
    with Simulator(SimulatorSettings.preset("tiny", token=SAMPLE_CONFIG["api_token"])) as sim:
        _simulator["sim"] = sim
        streams = _discovered_streams()
        organisations = [c["slug"] for c in sim.truth()["collaborations"]]
        organisation_ids = [c["id"] for c in sim.truth()["collaborations"]]
    configured = []
    for stream in streams:
        incremental = "incremental" in stream["supported_sync_modes"]
        configured.append(
            {
                "stream": {
                    "name": stream["name"],
                    "json_schema": {},
                    "supported_sync_modes": stream["supported_sync_modes"],
                    "source_defined_cursor": stream.get("source_defined_cursor") or False,
                    "default_cursor_field": stream.get("default_cursor_field") or [],
                    "source_defined_primary_key": stream.get("source_defined_primary_key") or [],
                },
                # The standard tests read full refresh; the state tests above switch to incremental.
                "sync_mode": "full_refresh",
                "destination_sync_mode": "append_dedup" if incremental else "overwrite",
                **({"cursor_field": stream.get("default_cursor_field") or []} if incremental else {}),
                "primary_key": stream.get("source_defined_primary_key") or [],
            }
        )
    (HERE / "configured_catalog.json").write_text(json.dumps({"streams": configured}, indent=2) + "\n")
    feeds = {slug: {"done": [[None, FAR_FUTURE]], "pending_since": None} for slug in organisations}
    # Incremental list streams keep one value per organisation id (components/cursor.py KeyedCursor).
    keyed = {
        "deploy_component_versions": {"keys": {org_id: {"last_deployed_at": FAR_FUTURE} for org_id in organisation_ids}},
        "policy_decisions": {"keys": {org_id: FAR_FUTURE for org_id in organisation_ids}},
    }
    abnormal = [
        {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": stream["name"]},
                "stream_state": keyed.get(stream["name"]) or {"server_time": FAR_FUTURE, "feeds": feeds},
            },
        }
        for stream in streams
        if "incremental" in stream["supported_sync_modes"]
    ]
    (HERE / "abnormal_state.json").write_text(json.dumps(abnormal, indent=2) + "\n")
    print(f"wrote configured_catalog.json ({len(configured)} streams) and abnormal_state.json ({len(abnormal)} streams)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    write_files()
