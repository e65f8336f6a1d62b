"""metadata.yaml, Dockerfile and pyproject.toml describe the same connector image.

metadata.yaml is loaded with the CDK's own model (airbyte_cdk.models.connector_metadata), the one its image
build and standard tests use. No Docker engine runs here, so the image itself is not built: these checks are
what can be verified without one.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from airbyte_cdk.models.connector_metadata import ConnectorLanguage, MetadataFile
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
NAME = "source-circleci-ccm"
BASE_IMAGE = re.compile(r"^docker\.io/airbyte/python-connector-base:(?P<version>\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}$")
# Python of each python-connector-base line (4.0.x: 3.11; 4.1.x: 3.13).
BASE_IMAGE_PYTHON = {"4.0": "3.11", "4.1": "3.13"}
# Fields current Airbyte connectors carry in metadata.yaml `data`.
REQUIRED_DATA_FIELDS = (
    "ab_internal",
    "allowedHosts",
    "connectorBuildOptions",
    "connectorSubtype",
    "connectorType",
    "definitionId",
    "dockerImageTag",
    "dockerRepository",
    "documentationUrl",
    "githubIssueLabel",
    "license",
    "maxSecondsBetweenMessages",
    "name",
    "registryOverrides",
    "releaseStage",
    "releases",
    "supportLevel",
    "tags",
)


@pytest.fixture(scope="module")
def metadata() -> MetadataFile:
    return MetadataFile.from_file(REPO / "metadata.yaml")


@pytest.fixture(scope="module")
def data(metadata: MetadataFile) -> dict[str, Any]:
    return metadata.data.model_dump()


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    spec = yaml.safe_load((REPO / "source_circleci_ccm" / "spec.yaml").read_text())
    return {"documentation_url": spec["documentationUrl"], "connection_specification": spec["connectionSpecification"]}


def _instructions(dockerfile: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile if instruction == name]


def test_metadata_has_every_field_current_connectors_carry(data: dict[str, Any]) -> None:
    missing = [field for field in REQUIRED_DATA_FIELDS if data.get(field) in (None, "", [], {})]
    assert not missing


def test_metadata_identity(metadata: MetadataFile, data: dict[str, Any], pyproject: dict[str, Any]) -> None:
    assert data["dockerRepository"] == f"airbyte/{NAME}"
    assert pyproject["project"]["name"] == NAME
    assert data["githubIssueLabel"] == NAME
    assert (data["connectorType"], data["connectorSubtype"]) == ("source", "api")
    assert str(uuid.UUID(data["definitionId"])) == data["definitionId"]
    assert metadata.data.language is ConnectorLanguage.PYTHON
    assert {"language:python", "cdk:python"} <= set(data["tags"])
    assert data["releaseStage"] in {"alpha", "beta", "generally_available", "custom"}
    assert data["supportLevel"] in {"community", "certified", "archived"}
    assert isinstance(data["maxSecondsBetweenMessages"], int) and data["maxSecondsBetweenMessages"] > 0
    assert data["license"] == pyproject["project"]["license"]["text"]


def test_image_tag_is_the_package_version(data: dict[str, Any], pyproject: dict[str, Any], dockerfile) -> None:
    version = pyproject["project"]["version"]
    assert data["dockerImageTag"] == version
    labels = " ".join(_instructions(dockerfile, "LABEL"))
    assert f"io.airbyte.version={version}" in labels
    assert f"io.airbyte.name={data['dockerRepository']}" in labels


def test_dockerfile_builds_on_the_declared_base_image(data: dict[str, Any], dockerfile, pyproject) -> None:
    base_image = data["connectorBuildOptions"]["baseImage"]
    match = BASE_IMAGE.match(base_image)
    assert match, f"baseImage must be a pinned python-connector-base image, got {base_image}"
    assert _instructions(dockerfile, "FROM") == [base_image]
    # The package must install on the base image's Python.
    python = BASE_IMAGE_PYTHON[".".join(match["version"].split(".")[:2])]
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains(python)


def test_entrypoint_is_the_console_script(dockerfile, pyproject: dict[str, Any]) -> None:
    assert pyproject["project"]["scripts"][NAME] == "source_circleci_ccm.run:run"
    entrypoints = _instructions(dockerfile, "ENTRYPOINT")
    assert len(entrypoints) == 1 and json.loads(entrypoints[0]) == [NAME]
    env = " ".join(_instructions(dockerfile, "ENV"))
    assert shlex.split(env.partition("AIRBYTE_ENTRYPOINT=")[2])[0] == NAME


def test_image_runs_as_a_non_root_user(dockerfile) -> None:
    users = [(index, arguments) for index, (instruction, arguments) in enumerate(dockerfile) if instruction == "USER"]
    assert users, "the Dockerfile never leaves root"
    index, user = users[-1]
    assert user.split(":")[0] not in {"root", "0"}
    # Installing needs root; running must not: the last USER comes after every RUN.
    assert all(instruction != "RUN" for instruction, _ in dockerfile[index:])


def test_documentation_url_agrees_with_the_spec(data: dict[str, Any], spec: dict[str, Any]) -> None:
    assert data["documentationUrl"] == spec["documentation_url"]
    assert data["documentationUrl"].endswith("docs/circleci-ccm.md")
    assert (REPO / "docs" / "circleci-ccm.md").is_file()


def test_allowed_hosts_cover_cloud_and_the_configured_api_url(data: dict[str, Any], spec: dict[str, Any]) -> None:
    hosts = data["allowedHosts"]["hosts"]
    assert "circleci.com" in hosts
    templated = [re.fullmatch(r"\$\{(\w+)\}", host) for host in hosts]
    fields = {match[1] for match in templated if match}
    assert fields == {"api_url"}
    assert fields <= set(spec["connection_specification"]["properties"])


def test_changelog_has_an_entry_for_this_version(data: dict[str, Any]) -> None:
    docs = (REPO / "docs" / "circleci-ccm.md").read_text()
    assert re.search(rf"^\|\s*{re.escape(data['dockerImageTag'])}\s*\|", docs, re.MULTILINE)


def test_the_wheel_ships_spec_schemas_and_rules_but_not_the_simulator_or_the_report(tmp_path: Path) -> None:
    """`pip install .` (not only `-e .`) must find the spec, every schema and the rule catalogue. The evidence
    report (report/, its own distribution) reads a warehouse: it has no place in the connector's wheel or image."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    wheel = zipfile.ZipFile(next(tmp_path.glob("source_circleci_ccm-*.whl")))
    names = wheel.namelist()

    assert "source_circleci_ccm/spec.yaml" in names
    assert "source_circleci_ccm/controls/catalogue.yaml" in names
    schemas = {name.rsplit("/", 1)[-1][: -len(".json")] for name in names if name.startswith("source_circleci_ccm/schemas/")}
    assert schemas == {path.stem for path in (REPO / "source_circleci_ccm" / "schemas").glob("*.json")}
    assert not [name for name in names if name.startswith(("circleci_simulator/", "unit_tests/", "integration_tests/", "circleci_ccm_report/", "report/"))]
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "circleci-ccm-report" not in wheel.read(entry_points).decode()


def test_the_report_is_its_own_distribution_with_its_page_assets(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO / "report"), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    wheel = zipfile.ZipFile(next(tmp_path.glob("circleci_ccm_report-*.whl")))
    names = wheel.namelist()
    assert {"circleci_ccm_report/report.css", "circleci_ccm_report/report.js"} <= set(names)
    assert not [name for name in names if name.startswith("source_circleci_ccm/")]
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "circleci-ccm-report = circleci_ccm_report.cli:main" in wheel.read(entry_points).decode()
