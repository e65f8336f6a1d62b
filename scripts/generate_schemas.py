#!/usr/bin/env python3
"""Generate the Airbyte stream schemas of source-circleci-ccm from the CircleCI API v2 OpenAPI spec.

Usage:
    python scripts/generate_schemas.py [--spec PATH]           # (re)write source_circleci_ccm/schemas/*.json
    python scripts/generate_schemas.py [--spec PATH] --check   # exit 1 and list the files that drifted

The spec defaults to ``<repo>/../shared/reference/circleci-openapi.json``.

Conversion rules (OpenAPI 3.0 -> Airbyte JSON Schema, draft-07):
- ``$ref`` is resolved inline; ``allOf`` members are merged; ``oneOf``/``anyOf`` become ``anyOf``.
- ``nullable: true`` / ``x-nullable: true`` add ``"null"`` to ``type``.
- ``format`` and ``description`` are kept. ``required``, ``enum``, ``example``, ``title`` and validation
  keywords (``minimum``...) are dropped: Airbyte must deliver records even when CircleCI omits a "required"
  field or adds an enum value. The allowed values of an enum go into the description ("One of: ...").
- Every object gets ``additionalProperties: true`` (also where the spec says ``false``). A map whose values
  the spec describes (``additionalProperties: {schema}``) keeps that description in its own description.

Spec properties that are secrets are dropped from their stream's schema (``StreamSource.dropped``): the
webhook ``signing-secret`` and the artifact's signed ``url`` are never emitted, and the schema says why.

Two streams (``job_steps`` and ``security_controls``) have no v2 spec; their schemas are the hand-written
constants ``JOB_STEPS_SCHEMA`` and ``SECURITY_CONTROLS_SCHEMA`` below.

``build_schemas(spec)`` returns ``{stream_name: schema}``; the unit tests import it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "reference" / "circleci-openapi.json"
SCHEMAS_DIR = REPO_ROOT / "source_circleci_ccm" / "schemas"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"

# Keywords carried over from the spec as they are. Everything else not handled explicitly is dropped.
_KEPT_KEYWORDS = ("description", "format")


# ---------------------------------------------------------------------------------------------------------
# Parent keys and other properties the connector adds to records
# ---------------------------------------------------------------------------------------------------------


def _added(type_: str | list[str], description: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": type_, "description": f"Added by the connector: {description}"}
    if fmt:
        schema["format"] = fmt
    return schema


ORG_SLUG = _added("string", "slug of the organization the record was read for (e.g. gh/acme or circleci/<uuid>).")
ORG_ID = _added("string", "ID of the organization (context owner) the record was read for.", "uuid")
PROJECT_SLUG = _added("string", "slug of the project the record belongs to (e.g. gh/acme/repo).")
PIPELINE_ID = _added("string", "ID of the pipeline the record belongs to.", "uuid")
WORKFLOW_ID = _added("string", "ID of the workflow the record belongs to.", "uuid")
JOB_ID = _added("string", "ID of the job (from the workflow's job list) the record belongs to.", "uuid")
JOB_NUMBER = _added("integer", "number of the job the record belongs to (the {job-number} of the request).")
ORG_ID_DEPLOY = _added("string", "ID of the organization the record was read for.", "uuid")
OWNER_ID = _added("string", "ID of the organization (policy owner, the {ownerID} of the request).", "uuid")
PROJECT_ID = _added("string", "ID of the project the record was read for.", "uuid")
COMPONENT_ID = _added("string", "ID of the deploy component the version belongs to (the {component_id} of the request).", "uuid")
PIPELINE_DEFINITION_ID = _added("string", "ID of the pipeline definition the trigger belongs to.", "uuid")
TEST_INDEX = _added("integer", "position of the test in the job's test metadata, over all pages (0-based).")
MESSAGE_TRUNCATED = _added(
    "boolean", "true when `message` was longer than 4,096 UTF-8 bytes and was cut to that (at a character boundary)."
)
ORG_KEYS = {"org_id": ORG_ID_DEPLOY, "org_slug": ORG_SLUG}
OWNER_KEYS = {"owner_id": OWNER_ID, "org_slug": ORG_SLUG}
JOB_KEYS = {
    "job_id": JOB_ID,
    "job_number": JOB_NUMBER,
    "project_slug": PROJECT_SLUG,
    "workflow_id": WORKFLOW_ID,
    "pipeline_id": PIPELINE_ID,
}


@dataclass(frozen=True)
class StreamSource:
    """Where a stream's record schema comes from in the spec and what the connector changes."""

    operation: str  # path of the GET operation in the spec
    shape: str  # "object": the 200 body; "items": one element of body.items; "array": one element of the body;
    #             "map": one element of any array value of a body that is a map (name -> [record])
    added: dict[str, dict[str, Any]] = field(default_factory=dict)  # properties added by the connector
    expected: tuple[str, ...] = ()  # parent keys the spec already has (asserted, not added)
    renamed: dict[str, str] = field(default_factory=dict)  # spec name -> record name
    flatten: str | None = None  # the record is this object property of the body, lifted to top level
    why_renamed: str = ""
    dropped: tuple[str, ...] = ()  # spec properties the connector never emits
    why_dropped: str = ""


SPEC_STREAMS: dict[str, StreamSource] = {
    "me": StreamSource("/me", "object"),
    "collaborations": StreamSource(
        "/me/collaborations",
        "array",
        renamed={"vcs-type": "vcs_type"},
        why_renamed="The spec spells it `vcs-type`, real servers send `vcs_type`; the connector normalises both"
        " spellings to `vcs_type`.",
    ),
    "pipelines": StreamSource("/pipeline", "items", added={"org_slug": ORG_SLUG}),
    "workflows": StreamSource("/pipeline/{pipeline-id}/workflow", "items", expected=("pipeline_id", "project_slug")),
    "jobs": StreamSource(
        "/workflow/{id}/job",
        "items",
        added={"workflow_id": WORKFLOW_ID, "pipeline_id": PIPELINE_ID},
        expected=("project_slug",),
    ),
    "contexts": StreamSource("/context", "items", added={"org_slug": ORG_SLUG, "org_id": ORG_ID}),
    "pipeline_configs": StreamSource(
        "/pipeline/{pipeline-id}/config", "object", added={"pipeline_id": PIPELINE_ID, "project_slug": PROJECT_SLUG}
    ),
    "projects": StreamSource("/project/{project-slug}", "object"),
    "project_settings": StreamSource(
        "/project/{provider}/{organization}/{project}/settings",
        "object",
        flatten="advanced",
        added={"project_slug": PROJECT_SLUG},
    ),
    "project_env_vars": StreamSource("/project/{project-slug}/envvar", "items", added={"project_slug": PROJECT_SLUG}),
    "project_checkout_keys": StreamSource(
        "/project/{project-slug}/checkout-key", "items", added={"project_slug": PROJECT_SLUG}
    ),
    "context_env_vars": StreamSource(
        "/context/{context_id}/environment-variable", "items", added={"org_slug": ORG_SLUG}, expected=("context_id",)
    ),
    "context_restrictions": StreamSource(
        "/context/{context_id}/restrictions", "items", added={"org_slug": ORG_SLUG}, expected=("context_id",)
    ),
    "job_details": StreamSource(
        "/project/{project-slug}/job/{job-number}",
        "object",
        added={"project_slug": PROJECT_SLUG, "job_id": JOB_ID, "workflow_id": WORKFLOW_ID, "pipeline_id": PIPELINE_ID},
    ),
    "users": StreamSource("/user/{id}", "object"),
    # Deployment and governance evidence (issue 12)
    "deploy_environments": StreamSource("/deploy/environments", "items", added=dict(ORG_KEYS)),
    "deploy_components": StreamSource("/deploy/components", "items", added=dict(ORG_KEYS), expected=("project_id",)),
    "deploy_component_versions": StreamSource(
        "/deploy/components/{component_id}/versions",
        "items",
        added={"component_id": COMPONENT_ID, **ORG_KEYS},
        expected=("environment_id", "pipeline_id", "workflow_id", "job_id", "last_deployed_at"),
    ),
    "job_tests": StreamSource(
        "/project/{project-slug}/{job-number}/tests",
        "items",
        added={**JOB_KEYS, "test_index": TEST_INDEX, "message_truncated": MESSAGE_TRUNCATED},
    ),
    "job_artifacts": StreamSource(
        "/project/{project-slug}/{job-number}/artifacts",
        "items",
        added=dict(JOB_KEYS),
        expected=("path", "node_index"),
        dropped=("url",),
        why_dropped="`url` is a signed download link that grants access to the artifact: never emitted.",
    ),
    "project_schedules": StreamSource("/project/{project-slug}/schedule", "items", added={"project_slug": PROJECT_SLUG}),
    "pipeline_definitions": StreamSource(
        "/projects/{project_id}/pipeline-definitions",
        "items",
        added={"project_id": PROJECT_ID, "project_slug": PROJECT_SLUG},
    ),
    "pipeline_triggers": StreamSource(
        "/projects/{project_id}/pipeline-definitions/{pipeline_definition_id}/triggers",
        "items",
        added={"pipeline_definition_id": PIPELINE_DEFINITION_ID, "project_id": PROJECT_ID},
    ),
    "policy_settings": StreamSource(
        "/owner/{ownerID}/context/{context}/decision/settings", "object", added=dict(OWNER_KEYS)
    ),
    "policy_bundles": StreamSource("/owner/{ownerID}/context/{context}/policy-bundle", "map", added=dict(OWNER_KEYS)),
    "policy_decisions": StreamSource(
        "/owner/{ownerID}/context/{context}/decision", "array", added=dict(OWNER_KEYS), expected=("created_at",)
    ),
    "org_groups": StreamSource("/organizations/{org_id}/groups", "items", added=dict(ORG_KEYS)),
    "url_orb_allow_list": StreamSource(
        "/organization/{org-slug-or-id}/url-orb-allow-list", "items", added=dict(ORG_KEYS)
    ),
    "webhooks": StreamSource(
        "/webhook",
        "items",
        added={"project_slug": PROJECT_SLUG},
        expected=("verify-tls", "url", "events", "scope"),
        dropped=("signing-secret",),
        why_dropped="`signing-secret` (the key that signs webhook payloads, masked or not) is never emitted.",
    ),
}

# Where real servers or the spec's own prose contradict the spec's types. Each entry only widens a type
# (adds "null", or gives a type to an untyped field), so a record valid for the spec stays valid.
# (stream, property path inside the record) -> (type to set, or None to keep it and only add "null"; why)
SPEC_CORRECTIONS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("jobs", "started_at"): (None, "Null for approval jobs, although the spec does not mark it nullable."),
    ("context_restrictions", "name"): (None, "The spec does not mark it nullable; the schema allows null."),
    ("project_env_vars", "created-at"): (
        "string",
        "The spec gives this field no type; the example is a string like '#joda/inst 2023-04-14T21:20:14+0000',"
        " not RFC 3339, so no date-time format is claimed.",
    ),
}


# ---------------------------------------------------------------------------------------------------------
# Streams without a v2 spec: hand-written, NOT derived from the OpenAPI spec
# ---------------------------------------------------------------------------------------------------------


def _t(type_: str | list[str], description: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": type_, "description": description}
    if fmt:
        schema["format"] = fmt
    return schema


def _obj(type_: str | list[str], description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "description": description, "additionalProperties": True, "properties": properties}


# NOT FROM THE OPENAPI SPEC: v1.1 `GET /v1.1/project/{vcs}/{org}/{repo}/{build_num}`, one record per step.
JOB_STEPS_SCHEMA: dict[str, Any] = _obj(
    "object",
    "One step of a job, from CircleCI API v1.1 GET /v1.1/project/{vcs}/{org}/{repo}/{build_num} (steps[]); "
    "not described by the v2 OpenAPI spec. Evidence that a step really ran and how it ended.",
    {
        "job_id": _added("string", "ID of the v2 job the step belongs to.", "uuid"),
        "job_number": _added("integer", "number of the job (v1.1 build_num)."),
        "project_slug": PROJECT_SLUG,
        "workflow_id": WORKFLOW_ID,
        "pipeline_id": PIPELINE_ID,
        "step_index": _added("integer", "position of the step in the job (0-based)."),
        "name": _t("string", "Name of the step."),
        "actions": {
            "type": "array",
            "description": "The step's actions: one per parallel run (container index).",
            "items": _obj(
                "object",
                "One action (a step on one parallel container).",
                {
                    "name": _t("string", "Name of the action."),
                    "status": _t(["null", "string"], "Status of the action, e.g. success, failed, running, canceled."),
                    "exit_code": _t(["null", "integer"], "Exit code of the command; null when it did not run."),
                    "bash_command": _t(["null", "string"], "The shell command of a run step."),
                    "start_time": _t(["null", "string"], "When the action started.", "date-time"),
                    "end_time": _t(["null", "string"], "When the action ended.", "date-time"),
                    "run_time_millis": _t(["null", "integer"], "Run time in milliseconds."),
                    "type": _t(["null", "string"], "Action type, e.g. test, build, deploy."),
                    "failed": _t(["null", "boolean"], "Whether the action failed."),
                    "index": _t(["null", "integer"], "Index of the parallel container that ran the action."),
                    "step": _t(["null", "integer"], "Step number reported by v1.1."),
                },
            ),
        },
    },
)

# NOT FROM THE OPENAPI SPEC: results computed by the connector's security-control evaluator.
SECURITY_CONTROLS_SCHEMA: dict[str, Any] = _obj(
    "object",
    "Result of evaluating one security control against a pipeline or a project. Computed by the connector "
    "(not a CircleCI API response, not described by the OpenAPI spec).",
    {
        "record_id": _t("string", "Primary key: `<scope>:<pipeline_id or project_slug>:<control_id>`."),
        "scope": _t("string", "What the control was evaluated on. One of: pipeline, project, deployment (a live deploy component version)."),
        "project_slug": _t("string", "Slug of the project evaluated (or of the pipeline's project)."),
        "pipeline_id": _t(["null", "string"], "ID of the pipeline evaluated; null for project-scope results.", "uuid"),
        "workflow_id": _t(["null", "string"], "ID of the workflow the evidence comes from, if any."),
        "control_id": _t("string", "ID of the control in the rule catalogue."),
        "status": _t("string", "Outcome. One of: pass, fail, not_applicable, unknown."),
        "required": _t("boolean", "Whether the user's policy requires this control."),
        "reason": _t(["null", "string"], "Why the control has this status."),
        "evidence": {
            "type": "array",
            "description": "What matched where (declared in config and/or executed).",
            "items": _obj(
                "object",
                "One piece of evidence.",
                {
                    "where": _t(["null", "string"], "Where the evidence was found (e.g. compiled config, job steps)."),
                    "job": _t(["null", "string"], "Job name."),
                    "step": _t(["null", "string"], "Step name or command."),
                    "orb": _t(["null", "string"], "Orb (or orb command) that matched."),
                    "rule_id": _t(["null", "string"], "ID of the catalogue rule that matched."),
                    "matched": _t(["null", "string"], "The text that matched."),
                    "executed": _obj(
                        ["null", "object"],
                        "How the matching step ran, when it was seen in job steps; null when only declared.",
                        {
                            "job_number": _t(["null", "integer"], "Number of the job that ran the step."),
                            "step": _t(["null", "string"], "Name of the step that ran."),
                            "status": _t(["null", "string"], "Status the step ended with."),
                        },
                    ),
                },
            ),
        },
        "frameworks": {
            "type": "array",
            "description": "Framework references carried by the control (e.g. SOC 2, ISO/IEC 27001, CIS).",
            "items": _obj(
                "object",
                "One framework reference.",
                {
                    "framework": _t("string", "Framework name."),
                    "id": _t("string", "Reference in that framework (e.g. CC8.1, A.8.32)."),
                    "title": _t("string", "Title of the reference."),
                },
            ),
        },
        "branch": _t(["null", "string"], "Branch of the pipeline evaluated, if known."),
        "evaluated_at": _t("string", "When the control was evaluated.", "date-time"),
        "catalogue_version": _t("string", "Version of the rule catalogue used."),
    },
)

HAND_WRITTEN_STREAMS: dict[str, dict[str, Any]] = {
    "job_steps": JOB_STEPS_SCHEMA,
    "security_controls": SECURITY_CONTROLS_SCHEMA,
}


# ---------------------------------------------------------------------------------------------------------
# OpenAPI 3.0 -> JSON Schema conversion
# ---------------------------------------------------------------------------------------------------------


class SpecError(ValueError):
    """The spec does not have what a stream needs."""


def _resolve_pointer(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise SpecError(f"only local $refs are supported, got {ref!r}")
    node: Any = spec
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise SpecError(f"unresolvable $ref {ref!r}") from exc
    return node


def _deref(spec: dict[str, Any], node: Any, stack: tuple[str, ...] = ()) -> tuple[Any, tuple[str, ...]]:
    """Follow $ref chains; return the target and the refs followed (for cycle detection)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in stack:
            raise _Cycle(ref)
        stack = stack + (ref,)
        node = _resolve_pointer(spec, ref)
    return node, stack


class _Cycle(Exception):
    pass


def _merge_all_of(spec: dict[str, Any], node: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
    """Merge allOf members (and the node's own keywords) into one raw OpenAPI schema."""
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for member in node["allOf"]:
        member, _ = _deref(spec, member, stack)
        if "allOf" in member:
            member = _merge_all_of(spec, member, stack)
        for key, value in member.items():
            if key == "properties":
                props = dict(merged.get("properties", {}))
                props.update(value)
                merged["properties"] = props
            elif key == "required":
                merged["required"] = sorted(set(merged.get("required", [])) | set(value))
            elif key in ("nullable", "x-nullable"):
                merged[key] = bool(merged.get(key)) or bool(value)
            else:
                merged.setdefault(key, value)
    return merged


def _enum_note(values: list[Any]) -> str:
    shown = [("null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for v in values]
    return "One of: " + ", ".join(shown) + "."


def _join(*parts: str | None) -> str | None:
    """Join description fragments into sentences (a fragment that is followed by another gets a full stop)."""
    kept = [p.strip() for p in parts if p and p.strip()]
    kept = [p if i == len(kept) - 1 or p[-1] in ".!?:" else p + "." for i, p in enumerate(kept)]
    return " ".join(kept) or None


def _with_null(type_: str | list[str]) -> list[str]:
    types = [type_] if isinstance(type_, str) else list(type_)
    return ["null"] + [t for t in types if t != "null"]


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def convert(spec: dict[str, Any], node: Any, stack: tuple[str, ...] = ()) -> dict[str, Any]:
    """Convert one OpenAPI 3.0 schema object to an Airbyte JSON Schema (draft-07) fragment."""
    try:
        node, stack = _deref(spec, node, stack)
    except _Cycle:
        return {"description": "Recursive structure; not expanded.", "type": ["null", "object"], "additionalProperties": True}
    if not isinstance(node, dict):
        raise SpecError(f"schema object expected, got {node!r}")
    if "allOf" in node:
        node = _merge_all_of(spec, node, stack)

    nullable = bool(node.get("nullable")) or bool(node.get("x-nullable"))
    out: dict[str, Any] = {k: node[k] for k in _KEPT_KEYWORDS if k in node}

    enum = node.get("enum")
    if enum:
        if None in enum:
            nullable = True
        out["description"] = _join(out.get("description"), _enum_note([v for v in enum if v is not None]))

    members = node.get("oneOf") or node.get("anyOf")
    if members:
        converted = [convert(spec, m, stack) for m in members]
        if nullable:
            converted.append({"type": "null"})
        out["anyOf"] = converted
        return out

    type_ = node.get("type")
    if type_ is None:
        if "properties" in node or "additionalProperties" in node:
            type_ = "object"
        elif "items" in node:
            type_ = "array"
        elif enum:
            kinds = sorted({_json_type_of(v) for v in enum if v is not None})
            type_ = kinds[0] if len(kinds) == 1 else kinds
    if type_ is not None:
        out["type"] = _with_null(type_) if nullable else type_

    types = {type_} if isinstance(type_, str) else set(type_ or ())
    if "object" in types:
        out["additionalProperties"] = True
        props = node.get("properties") or {}
        out["properties"] = {name: convert(spec, sub, stack) for name, sub in props.items()}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            value = convert(spec, extra, stack)
            note = _join(value.get("description"), (value.get("items") or {}).get("description"))
            if note:
                out["description"] = _join(out.get("description"), f"Each value: {note}")
    if "array" in types and "items" in node:
        out["items"] = convert(spec, node["items"], stack)
    return out


# ---------------------------------------------------------------------------------------------------------
# Stream assembly
# ---------------------------------------------------------------------------------------------------------


def response_schema(spec: dict[str, Any], operation: str) -> Any:
    """The raw (unconverted) JSON schema of the 200 response of GET <operation>."""
    try:
        response = spec["paths"][operation]["get"]["responses"]["200"]
    except KeyError as exc:
        raise SpecError(f"GET {operation} has no 200 response in the spec") from exc
    response, _ = _deref(spec, response)
    try:
        return response["content"]["application/json"]["schema"]
    except KeyError as exc:
        raise SpecError(f"GET {operation}: 200 response has no application/json schema") from exc


def record_schema_raw(spec: dict[str, Any], source: StreamSource) -> Any:
    """The raw schema of one record: the body, one element of body.items, or one element of a bare array."""
    body, _ = _deref(spec, response_schema(spec, source.operation))
    if source.shape == "object":
        node = body
    elif source.shape == "items":
        items, _ = _deref(spec, body.get("properties", {}).get("items"))
        if not isinstance(items, dict) or "items" not in items:
            raise SpecError(f"GET {source.operation}: body has no `items` array")
        node = items["items"]
    elif source.shape == "array":
        if body.get("type") != "array" or "items" not in body:
            raise SpecError(f"GET {source.operation}: body is not a bare array")
        node = body["items"]
    elif source.shape == "map":
        values, _ = _deref(spec, body.get("additionalProperties"))
        if body.get("properties") or not isinstance(values, dict) or "items" not in values:
            raise SpecError(f"GET {source.operation}: body is not a map of arrays")
        node = values["items"]
    else:  # pragma: no cover - programming error
        raise ValueError(source.shape)
    if source.flatten:
        node, _ = _deref(spec, node)
        inner = (node.get("properties") or {}).get(source.flatten)
        if inner is None:
            raise SpecError(f"GET {source.operation}: body has no `{source.flatten}` object to flatten")
        node = inner
    return node


def _find(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.split("."):
        node = node["properties"][part]
    return node


def build_stream_schema(spec: dict[str, Any], name: str, source: StreamSource) -> dict[str, Any]:
    record = convert(spec, record_schema_raw(spec, source))
    if record.get("type") not in ("object", ["null", "object"]):
        raise SpecError(f"stream {name}: GET {source.operation} record is not an object")
    properties: dict[str, Any] = record.setdefault("properties", {})

    for old, new in source.renamed.items():
        if old not in properties:
            raise SpecError(f"stream {name}: property {old!r} to rename is not in the spec")
        if new in properties:
            raise SpecError(f"stream {name}: cannot rename {old!r}: {new!r} already exists")
        prop = properties.pop(old)
        prop["description"] = _join(prop.get("description"), source.why_renamed)
        properties[new] = prop

    for key in source.dropped:
        if key not in properties:
            raise SpecError(f"stream {name}: property {key!r} to drop is not in the spec")
        del properties[key]

    for key in source.expected:
        if key not in properties:
            raise SpecError(f"stream {name}: parent key {key!r} expected in GET {source.operation} but missing")

    for key, added in source.added.items():
        if key in properties:
            raise SpecError(f"stream {name}: added property {key!r} collides with a spec property")
        properties[key] = copy.deepcopy(added)

    for (stream, path), (type_, why) in SPEC_CORRECTIONS.items():
        if stream != name:
            continue
        try:
            prop = _find(record, path)
        except KeyError as exc:
            raise SpecError(f"stream {name}: correction target {path!r} no longer in the spec") from exc
        prop["type"] = _with_null(type_ if type_ is not None else prop["type"])
        prop["description"] = _join(prop.get("description"), why)

    description = f"CircleCI API v2 GET {source.operation}: " + {
        "object": "the 200 response body.",
        "items": "one element of `items` in the 200 response.",
        "array": "one element of the 200 response (a bare array).",
        "map": "one element of any array value of the 200 response (an object mapping names to arrays).",
    }[source.shape]
    if source.flatten:
        description += f" The `{source.flatten}` object, flattened to top level."
    if source.dropped:
        description = _join(description, source.why_dropped)
    return {
        "$schema": DRAFT_07,
        "type": "object",
        "description": _join(description, record.get("description")),
        "additionalProperties": True,
        "properties": properties,
    }


def build_schemas(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """All stream schemas, keyed by stream name."""
    schemas = {name: build_stream_schema(spec, name, source) for name, source in SPEC_STREAMS.items()}
    for name, schema in HAND_WRITTEN_STREAMS.items():
        schemas[name] = {"$schema": DRAFT_07, **copy.deepcopy(schema)}
    return dict(sorted(schemas.items()))


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help=f"OpenAPI spec (default: {DEFAULT_SPEC})")
    parser.add_argument("--out", type=Path, default=SCHEMAS_DIR, help=f"schemas folder (default: {SCHEMAS_DIR})")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if any schema file differs")
    args = parser.parse_args(argv)

    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
        schemas = build_schemas(spec)
    except (OSError, json.JSONDecodeError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    wanted = {f"{name}.json": render(schema) for name, schema in schemas.items()}
    existing = {p.name for p in args.out.glob("*.json")} if args.out.is_dir() else set()

    if args.check:
        drift = [n for n, text in sorted(wanted.items()) if n not in existing or (args.out / n).read_text("utf-8") != text]
        stale = sorted(existing - wanted.keys())
        for n in drift:
            print(f"drift: {args.out / n} differs from the spec (run scripts/generate_schemas.py)")
        for n in stale:
            print(f"drift: {args.out / n} is not a generated stream schema")
        if drift or stale:
            return 1
        print(f"ok: {len(wanted)} schemas match {args.spec}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in sorted(wanted.items()):
        path = args.out / n
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for n in sorted(existing - wanted.keys()):
        (args.out / n).unlink()
        print(f"removed stale {args.out / n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
