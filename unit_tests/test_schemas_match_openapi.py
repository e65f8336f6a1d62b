"""The stream schemas in source_circleci_ccm/schemas/ match the CircleCI API v2 OpenAPI spec.

The spec is read here with a deliberately naive walker (its own $ref lookup, properties and array items only),
independent of scripts/generate_schemas.py, so these tests do not just re-run the generator's logic.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO.parent / "shared" / "reference" / "circleci-openapi.json"
SCHEMAS_DIR = REPO / "source_circleci_ccm" / "schemas"
GENERATOR = REPO / "scripts" / "generate_schemas.py"



@pytest.fixture(autouse=True)
def _spec_present(require_shared):
    """Skips outside CI, fails on CI (CI=true), when ../shared has no spec: see conftest.require_shared_file."""
    require_shared(SPEC_PATH, "OpenAPI spec")


# stream -> (GET path, where the record is: "body" | "items" | "array" | "advanced" | "map", {spec name: record name})
SPEC_STREAMS: dict[str, tuple[str, str, dict[str, str]]] = {
    "me": ("/me", "body", {}),
    "collaborations": ("/me/collaborations", "array", {"vcs-type": "vcs_type"}),
    "pipelines": ("/pipeline", "items", {}),
    "workflows": ("/pipeline/{pipeline-id}/workflow", "items", {}),
    "jobs": ("/workflow/{id}/job", "items", {}),
    "contexts": ("/context", "items", {}),
    "pipeline_configs": ("/pipeline/{pipeline-id}/config", "body", {}),
    "projects": ("/project/{project-slug}", "body", {}),
    "project_settings": ("/project/{provider}/{organization}/{project}/settings", "advanced", {}),
    "project_env_vars": ("/project/{project-slug}/envvar", "items", {}),
    "project_checkout_keys": ("/project/{project-slug}/checkout-key", "items", {}),
    "context_env_vars": ("/context/{context_id}/environment-variable", "items", {}),
    "context_restrictions": ("/context/{context_id}/restrictions", "items", {}),
    "job_details": ("/project/{project-slug}/job/{job-number}", "body", {}),
    "users": ("/user/{id}", "body", {}),
    # Deployment and governance evidence (issue 12)
    "deploy_environments": ("/deploy/environments", "items", {}),
    "deploy_components": ("/deploy/components", "items", {}),
    "deploy_component_versions": ("/deploy/components/{component_id}/versions", "items", {}),
    "job_tests": ("/project/{project-slug}/{job-number}/tests", "items", {}),
    "job_artifacts": ("/project/{project-slug}/{job-number}/artifacts", "items", {}),
    "project_schedules": ("/project/{project-slug}/schedule", "items", {}),
    "pipeline_definitions": ("/projects/{project_id}/pipeline-definitions", "items", {}),
    "pipeline_triggers": ("/projects/{project_id}/pipeline-definitions/{pipeline_definition_id}/triggers", "items", {}),
    "policy_settings": ("/owner/{ownerID}/context/{context}/decision/settings", "body", {}),
    "policy_bundles": ("/owner/{ownerID}/context/{context}/policy-bundle", "map", {}),
    "policy_decisions": ("/owner/{ownerID}/context/{context}/decision", "array", {}),
    "org_groups": ("/organizations/{org_id}/groups", "items", {}),
    "url_orb_allow_list": ("/organization/{org-slug-or-id}/url-orb-allow-list", "items", {}),
    "webhooks": ("/webhook", "items", {}),
}
# Spec properties the connector never emits (secrets): absent from the schema, never just "not required".
DROPPED: dict[str, set[str]] = {"webhooks": {"signing-secret"}, "job_artifacts": {"url"}}
HAND_WRITTEN = {"job_steps", "security_controls"}
ALL_STREAMS = sorted(set(SPEC_STREAMS) | HAND_WRITTEN)

# stream -> {parent key: format (None when not a uuid)}; type is always string
PARENT_KEYS: dict[str, dict[str, str | None]] = {
    "me": {},
    "collaborations": {},
    "pipelines": {"org_slug": None},
    "workflows": {"pipeline_id": "uuid", "project_slug": None},
    "jobs": {"workflow_id": "uuid", "pipeline_id": "uuid", "project_slug": None},
    "contexts": {"org_slug": None, "org_id": "uuid"},
    "pipeline_configs": {"pipeline_id": "uuid", "project_slug": None},
    "projects": {},
    "project_settings": {"project_slug": None},
    "project_env_vars": {"project_slug": None},
    "project_checkout_keys": {"project_slug": None},
    "context_env_vars": {"org_slug": None, "context_id": "uuid"},
    "context_restrictions": {"org_slug": None, "context_id": "uuid"},
    "job_details": {"project_slug": None, "job_id": "uuid", "workflow_id": "uuid", "pipeline_id": "uuid"},
    "users": {},
    "job_steps": {"job_id": "uuid", "project_slug": None, "workflow_id": "uuid", "pipeline_id": "uuid"},
    "security_controls": {"project_slug": None, "pipeline_id": "uuid", "record_id": None},
    "deploy_environments": {"org_id": "uuid", "org_slug": None},
    "deploy_components": {"org_id": "uuid", "org_slug": None, "project_id": "uuid"},
    "deploy_component_versions": {"component_id": "uuid", "environment_id": "uuid", "org_id": "uuid", "org_slug": None,
                                  "pipeline_id": "uuid", "workflow_id": "uuid", "job_id": "uuid"},
    "job_tests": {"job_id": "uuid", "project_slug": None, "workflow_id": "uuid", "pipeline_id": "uuid"},
    "job_artifacts": {"job_id": "uuid", "project_slug": None, "workflow_id": "uuid", "pipeline_id": "uuid"},
    "project_schedules": {"project_slug": None},
    "pipeline_definitions": {"project_id": "uuid", "project_slug": None},
    "pipeline_triggers": {"pipeline_definition_id": "uuid", "project_id": "uuid"},
    "policy_settings": {"owner_id": "uuid", "org_slug": None},
    "policy_bundles": {"owner_id": "uuid", "org_slug": None},
    "policy_decisions": {"owner_id": "uuid", "org_slug": None},
    "org_groups": {"org_id": "uuid", "org_slug": None},
    "url_orb_allow_list": {"org_id": "uuid", "org_slug": None},
    "webhooks": {"project_slug": None},
}
# Added keys that are not strings: stream -> {key: JSON type}
NON_STRING_KEYS: dict[str, dict[str, str]] = {
    "job_tests": {"job_number": "integer", "test_index": "integer", "message_truncated": "boolean"},
    "job_artifacts": {"job_number": "integer", "node_index": "integer"},
}
# The primary key of every new stream (issue 12): each key is a property of the schema.
PRIMARY_KEYS: dict[str, list[str]] = {
    "deploy_environments": ["id"],
    "deploy_components": ["id"],
    "deploy_component_versions": ["component_id", "environment_id", "name"],
    "job_tests": ["job_id", "test_index"],
    "job_artifacts": ["job_id", "node_index", "path"],
    "project_schedules": ["id"],
    "pipeline_definitions": ["id"],
    "pipeline_triggers": ["id"],
    "policy_settings": ["owner_id"],
    "policy_bundles": ["owner_id", "name"],
    "policy_decisions": ["id"],
    "org_groups": ["id"],
    "url_orb_allow_list": ["id"],
    "webhooks": ["id"],
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def generator():
    module_spec = importlib.util.spec_from_file_location("generate_schemas", GENERATOR)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # dataclasses look their module up while the file executes
    module_spec.loader.exec_module(module)
    return module


def committed(stream: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"{stream}.json").read_text(encoding="utf-8"))


# --- naive, independent spec walker ------------------------------------------------------------------------


def deref(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def spec_record(spec: dict[str, Any], stream: str) -> dict[str, Any]:
    path, where, _ = SPEC_STREAMS[stream]
    body = deref(spec, spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    if where == "map":
        return deref(spec, body["additionalProperties"]["items"])
    if where == "items":
        return deref(spec, body["properties"]["items"]["items"])
    if where == "array":
        return deref(spec, body["items"])
    if where == "advanced":
        return deref(spec, body["properties"]["advanced"])
    return body


def spec_leaves(spec: dict[str, Any], node: dict[str, Any], prefix: str = "") -> dict[str, tuple[set[str], Any, bool]]:
    """{dotted path: (types without null, format, nullable)} for every property, nested ones included."""
    found = {}
    for name, sub in (node.get("properties") or {}).items():
        sub = deref(spec, sub)
        path = f"{prefix}{name}"
        types = {sub["type"]} if "type" in sub else ({"object"} if "properties" in sub else set())
        found[path] = (types, sub.get("format"), bool(sub.get("nullable") or sub.get("x-nullable")))
        found.update(spec_leaves(spec, sub, path + "."))
        if "items" in sub:
            found.update(spec_leaves(spec, deref(spec, sub["items"]), path + "[]."))
    return found


def schema_at(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = schema
    for part in path.split("."):
        if part.endswith("[]"):
            node = (node.get("properties") or {}).get(part[:-2], {}).get("items")
        else:
            node = (node.get("properties") or {}).get(part)
        if node is None:
            return None
    return node


def type_set(schema: dict[str, Any]) -> set[str]:
    type_ = schema.get("type", [])
    return {type_} if isinstance(type_, str) else set(type_)


def walk_schemas(node: Any):
    if isinstance(node, dict):
        yield node
        for key in ("properties",):
            for sub in (node.get(key) or {}).values():
                yield from walk_schemas(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from walk_schemas(node[key])
        for sub in node.get("anyOf", []):
            yield from walk_schemas(sub)


# --- tests ---------------------------------------------------------------------------------------------------


def test_committed_schema_files_equal_generator_output(spec, generator):
    built = generator.build_schemas(spec)
    assert sorted(built) == ALL_STREAMS
    on_disk = sorted(p.stem for p in SCHEMAS_DIR.glob("*.json"))
    assert on_disk == ALL_STREAMS, "stale or missing schema files: run scripts/generate_schemas.py"
    drifted = [
        name
        for name, schema in built.items()
        if (SCHEMAS_DIR / f"{name}.json").read_text(encoding="utf-8") != generator.render(schema)
    ]
    assert not drifted, f"schemas differ from the spec, run scripts/generate_schemas.py: {drifted}"


def test_check_mode_exits_1_when_a_schema_file_drifted(spec, generator, tmp_path):
    for name, schema in generator.build_schemas(spec).items():
        (tmp_path / f"{name}.json").write_text(generator.render(schema), encoding="utf-8")
    assert generator.main(["--spec", str(SPEC_PATH), "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "jobs.json").write_text("{}\n", encoding="utf-8")
    assert generator.main(["--spec", str(SPEC_PATH), "--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("stream", sorted(SPEC_STREAMS))
def test_every_spec_property_is_in_the_schema_with_its_type_and_format(spec, stream):
    renames = SPEC_STREAMS[stream][2]
    schema = committed(stream)
    leaves = spec_leaves(spec, spec_record(spec, stream))
    assert leaves, f"{stream}: the spec record has no properties"
    problems = []
    for path, (types, fmt, _) in leaves.items():
        head, _, rest = path.partition(".")
        if head in DROPPED.get(stream, ()):
            continue
        ours = schema_at(schema, ".".join(filter(None, [renames.get(head, head), rest])))
        if ours is None:
            problems.append(f"{path}: missing")
            continue
        if types and type_set(ours) - {"null"} != types:
            problems.append(f"{path}: type {ours.get('type')} != spec {sorted(types)}")
        if ours.get("format") != fmt:
            problems.append(f"{path}: format {ours.get('format')} != spec {fmt}")
    assert not problems, f"{stream}: " + "; ".join(problems)


@pytest.mark.parametrize("stream", sorted(SPEC_STREAMS))
def test_spec_nullable_properties_allow_null(spec, stream):
    renames = SPEC_STREAMS[stream][2]
    schema = committed(stream)
    for path, (_, _, nullable) in spec_leaves(spec, spec_record(spec, stream)).items():
        if nullable and path.partition(".")[0] not in DROPPED.get(stream, ()):
            head, _, rest = path.partition(".")
            ours = schema_at(schema, ".".join(filter(None, [renames.get(head, head), rest])))
            assert "null" in type_set(ours), f"{stream}.{path} is nullable in the spec"


def test_collaborations_use_vcs_type_with_an_underscore():
    properties = committed("collaborations")["properties"]
    assert "vcs_type" in properties and "vcs-type" not in properties


def test_project_settings_are_flattened_from_advanced(spec):
    properties = committed("project_settings")["properties"]
    assert "advanced" not in properties
    assert {"disable_ssh", "forks_receive_secret_env_vars", "build_fork_prs"} <= set(properties)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_stream_has_its_parent_keys(stream):
    properties = committed(stream)["properties"]
    for key, fmt in PARENT_KEYS[stream].items():
        assert key in properties, f"{stream} lacks parent key {key}"
        assert type_set(properties[key]) - {"null"} == {"string"}, f"{stream}.{key}"
        assert properties[key].get("format") == fmt, f"{stream}.{key} format"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_schema_is_a_valid_draft7_object_schema(stream):
    schema = committed(stream)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)
    assert schema["type"] == "object"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_schema_has_no_required_enum_or_example_and_objects_stay_open(stream):
    for node in walk_schemas(committed(stream)):
        assert not {"required", "enum", "example"} & set(node), f"{stream}: {sorted(node)}"
        if "object" in type_set(node):
            assert node.get("additionalProperties") is True, f"{stream}: closed object {node.get('description')}"


def test_enum_values_are_listed_in_the_description():
    status = committed("workflows")["properties"]["status"]
    assert "One of: success, running, not_run, failed, error, failing, on_hold, canceled, unauthorized." in status["description"]


def test_security_controls_record_id_is_a_string():
    properties = committed("security_controls")["properties"]
    assert properties["record_id"]["type"] == "string"
    assert properties["evidence"]["items"]["properties"]["executed"]["type"] == ["null", "object"]


@pytest.mark.parametrize("stream", sorted(DROPPED))
def test_secret_fields_are_not_in_the_schema(spec, stream):
    schema = committed(stream)
    leaves = spec_leaves(spec, spec_record(spec, stream))
    for key in DROPPED[stream]:
        assert key in leaves, f"{stream}: {key} is no longer in the spec; update DROPPED"
        assert key not in schema["properties"], f"{stream}: {key} must never be emitted"
        assert key in schema["description"], f"{stream}: the description says why {key} is absent"


@pytest.mark.parametrize("stream", sorted(NON_STRING_KEYS))
def test_non_string_added_keys_have_their_type(stream):
    properties = committed(stream)["properties"]
    for key, type_ in NON_STRING_KEYS[stream].items():
        assert type_set(properties[key]) - {"null"} == {type_}, f"{stream}.{key}"


@pytest.mark.parametrize("stream", sorted(PRIMARY_KEYS))
def test_primary_key_fields_are_in_the_schema(stream):
    properties = committed(stream)["properties"]
    assert set(PRIMARY_KEYS[stream]) <= set(properties), stream


def test_policy_bundles_are_one_record_per_policy_with_its_rego_source():
    properties = committed("policy_bundles")["properties"]
    assert {"name", "content", "created_at", "created_by", "owner_id"} <= set(properties)


def test_simulator_truth_records_validate_against_the_new_schemas():
    """The records the simulator says the connector must emit fit the committed schemas."""
    from circleci_simulator import Simulator, SimulatorSettings

    truth = Simulator(SimulatorSettings.preset("tiny", policy_orgs=(0, 1))).truth()
    for stream in PRIMARY_KEYS:
        validator = Draft7Validator(committed(stream))
        assert truth[stream], stream
        for record in truth[stream]:
            errors = [e.message for e in validator.iter_errors(record)]
            assert not errors, (stream, errors[:3])
            assert set(record) <= set(committed(stream)["properties"]), (stream, set(record) - set(committed(stream)["properties"]))
