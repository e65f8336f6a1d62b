"""job_steps records: one per step of a v1.1 build, numbered in the order the steps ran."""

from __future__ import annotations

import json

import requests

from source_circleci_ccm.components.extractors import JobStepsExtractor


def _response(body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


def _extract(body: object) -> list[dict]:
    return list(JobStepsExtractor(config={}, parameters={}).extract_records(_response(body)))


def test_each_step_becomes_one_record_with_its_index_name_and_actions() -> None:
    actions = [{"name": "Run tests", "status": "success", "exit_code": 0, "bash_command": "make test", "failed": False}]
    records = _extract({"build_num": 7, "steps": [{"name": "Spin up environment", "actions": []}, {"name": "Run tests", "actions": actions}]})

    assert records == [
        {"step_index": 0, "name": "Spin up environment", "actions": []},
        {"step_index": 1, "name": "Run tests", "actions": actions},
    ]


def test_a_build_without_steps_gives_no_records() -> None:
    assert _extract({"build_num": 7, "steps": []}) == []
    assert _extract({"build_num": 7}) == []


def test_a_body_that_is_not_json_gives_no_records() -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = b"<html>"
    assert list(JobStepsExtractor(config={}, parameters={}).extract_records(response)) == []
