"""Odd data from CircleCI: records still arrive intact, and those that break their schema are reported.

The real source runs in-process against a requests-mock CircleCI (config, catalog and state given to the
constructor). The CDK's message serializer leaves out a record's top-level keys whose value is null, so
records are compared with those keys removed: a destination reads an absent key and a null alike.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from source_circleci_ccm.components.validation import SchemaCheck
from unit_tests.builders import CircleCI, as_json, context, job, organization, pipeline, read_streams, records_of, workflow

LONG = "x" * 200_000
UNICODE = "déploiement 🚀 生产环境 — Ærøskøbing ‮rtl‬ e\u0301 \u200b Привет"


def _without_nulls(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


def _odd_activity(circleci: CircleCI) -> dict[str, list[dict[str, Any]]]:
    org = organization("gh/acme")
    org["name"] = UNICODE
    normal = pipeline(minutes_ago=30)
    odd = pipeline(
        minutes_ago=20,
        state="a-state-from-the-future",  # not in the spec's enum
        number=None,  # required by the spec
        x_new_field={"nested": [1, None, {"deep": UNICODE}]},
        commit_message=LONG,
    )
    odd["trigger"]["actor"]["login"] = UNICODE
    workflows = [
        workflow(normal, name=UNICODE),
        workflow(normal, status="success", name=None, tag=LONG),  # name is required
        workflow(odd, status="brand_new_status"),  # unknown: not finished, no jobs read; pipeline_number null
    ]
    jobs = [
        job(normal, name=UNICODE, status="unheard_of_status"),
        job(normal, name=None, job_number="12"),  # required name null, a number as a string
        job(normal, job_type="approval", approved_by=None, extra={"k": LONG}),  # approved_by is not nullable
    ]
    contexts = [context(UNICODE), context(LONG), {**context("c"), "created_at": None, "new": True}]
    circleci.collaborations(org)
    circleci.pages("/v2/pipeline", [odd, normal], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{normal['id']}/workflow", workflows[:2])
    circleci.pages(f"/v2/pipeline/{odd['id']}/workflow", workflows[2:])
    circleci.pages(f"/v2/workflow/{workflows[0]['id']}/job", jobs)
    circleci.pages(f"/v2/workflow/{workflows[1]['id']}/job", [])
    circleci.pages("/v2/context", contexts, {"owner-id": org["id"]})
    return {
        "collaborations": [org],
        "pipelines": [{**p, "org_slug": "gh/acme"} for p in (odd, normal)],
        "workflows": workflows,
        "jobs": [
            {**j, "workflow_id": workflows[0]["id"], "pipeline_id": normal["id"], "project_slug": j["project_slug"]}
            for j in jobs
        ],
        "contexts": [{**c, "org_slug": "gh/acme", "org_id": org["id"]} for c in contexts],
    }


def test_odd_records_arrive_intact(circleci: CircleCI) -> None:
    expected = _odd_activity(circleci)

    output = read_streams("collaborations", "pipelines", "workflows", "jobs", "contexts")

    assert not output.errors
    for stream, records in expected.items():
        got = sorted(as_json(r) for r in records_of(output, stream))
        assert got == sorted(as_json(_without_nulls(r)) for r in records), stream
    long_ones = [r for r in records_of(output, "pipelines") if r.get("commit_message")]
    assert len(long_ones[0]["commit_message"]) == len(LONG)


def test_records_that_break_their_schema_are_reported_per_stream(circleci: CircleCI) -> None:
    _odd_activity(circleci)

    output = read_streams("pipelines", "workflows", "jobs", "contexts")

    warnings = [m.log.message for m in output.logs if m.log.level.name == "WARN"]
    schema_warnings = {w.split(" records do not match")[0]: w for w in warnings if "do not match the stream's schema" in w}
    assert set(schema_warnings) == {"1 of 2 pipelines", "2 of 3 workflows", "2 of 3 jobs", "1 of 3 contexts"}, warnings
    assert "job_number: type integer" in schema_warnings["2 of 3 jobs"]
    assert "name: type string" in schema_warnings["2 of 3 jobs"]
    assert "emitted unchanged" in schema_warnings["2 of 3 jobs"]
    assert LONG[:100] not in " ".join(warnings), "values are never quoted"
    assert len(records_of(output, "jobs")) == 3, "reported, not dropped"


def test_a_clean_record_is_not_reported() -> None:
    check = SchemaCheck()
    assert check.observe("workflows", {"id": "a", "name": "build", "status": "success", "stopped_at": None})
    assert check.observe("a_stream_without_a_schema", {"anything": object()})
    assert check.warnings() == []


def test_schema_warnings_name_fields_and_rules_but_not_values(caplog: pytest.LogCaptureFixture) -> None:
    check = SchemaCheck()
    check.observe("jobs", {"id": "j", "name": "secret-looking-value", "job_number": "secret-looking-value"})
    check.observe("jobs", {"id": "k", "name": "ok", "job_number": 3})
    check.report(logging.getLogger("test"))
    assert check.warnings() == [
        "1 of 2 jobs records do not match the stream's schema (job_number: type integer). They were emitted "
        "unchanged; CircleCI's answer differs from its API specification."
    ]
    assert "secret-looking-value" not in caplog.text
