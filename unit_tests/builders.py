"""Request and response builders for CircleCI, in one place, used by every unit test.

`CircleCI` registers answers on a requests-mock adapter the way the real API pages them (20 items a page,
opaque `next_page_token`), and `read()` runs the real source in-process through the CDK's entrypoint.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Optional

import requests_mock
from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalogSerializer
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_circleci_ccm.source import SourceCircleciCcm

API = "https://circleci.example.com/api"
TOKEN = "CCIPAT_unit_test_token_0123456789"
PAGE_SIZE = 20
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)


def _uuid() -> str:
    return str(uuid.UUID(int=next(_ids)))


def timestamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def config(**overrides: Any) -> dict[str, Any]:
    return {"api_token": TOKEN, "api_url": API, **overrides}


def organization(slug: str = "gh/acme") -> dict[str, Any]:
    return {"id": _uuid(), "vcs_type": "github", "name": slug.split("/")[-1], "avatar_url": None, "slug": slug}


def pipeline(project_slug: str = "gh/acme/api", minutes_ago: float = 10, **fields: Any) -> dict[str, Any]:
    return {
        "id": _uuid(),
        "project_slug": project_slug,
        "number": next(_ids),
        "state": "created",
        "created_at": timestamp(minutes_ago),
        "updated_at": timestamp(minutes_ago),
        "errors": [],
        "trigger": {"type": "webhook", "received_at": timestamp(minutes_ago), "actor": {"login": "dev", "avatar_url": None}},
        "vcs": {"branch": "main", "revision": "abc", "provider_name": "GitHub", "origin_repository_url": "", "target_repository_url": ""},
        **fields,
    }


def workflow(of: dict[str, Any], status: str = "success", **fields: Any) -> dict[str, Any]:
    terminal = status in {"success", "failed", "error", "canceled", "not_run", "unauthorized"}
    return {
        "id": _uuid(),
        "name": "build-test-deploy",
        "pipeline_id": of["id"],
        "pipeline_number": of["number"],
        "project_slug": of["project_slug"],
        "status": status,
        "started_by": _uuid(),
        "created_at": of["created_at"],
        "stopped_at": timestamp(1) if terminal else None,
        **fields,
    }


def job(of: dict[str, Any], name: str = "test", job_type: str = "build", **fields: Any) -> dict[str, Any]:
    record = {
        "id": _uuid(),
        "name": name,
        "type": job_type,
        "status": "success",
        "project_slug": of["project_slug"],
        "dependencies": [],
        "started_at": None if job_type == "approval" else timestamp(5),
        "stopped_at": timestamp(4),
        **fields,
    }
    if job_type == "build":
        record.setdefault("job_number", next(_ids))
    else:
        record.setdefault("approval_request_id", _uuid())
    return record


def context(name: str = "prod") -> dict[str, Any]:
    return {"id": _uuid(), "name": name, "created_at": timestamp(10_000)}


def context_env_var(of: dict[str, Any], variable: str = "AWS_ACCESS_KEY_ID") -> dict[str, Any]:
    """An item of `GET /v2/context/{id}/environment-variable` (values are never returned)."""
    return {"variable": variable, "context_id": of["id"], "created_at": timestamp(9_000), "updated_at": timestamp(8_000)}


def context_restriction(of: dict[str, Any], project_name: str = "api") -> dict[str, Any]:
    """An item of `GET /v2/context/{id}/restrictions`."""
    project_id = _uuid()
    return {
        "id": _uuid(),
        "context_id": of["id"],
        "project_id": project_id,
        "name": project_name,
        "restriction_type": "project",
        "restriction_value": project_id,
    }


def user(login: str = "dev") -> dict[str, Any]:
    """`GET /v2/user/{id}`."""
    return {"id": _uuid(), "login": login, "name": login.title(), "avatar_url": None}


def pipeline_config(source: str = "version: 2.1\n") -> dict[str, Any]:
    """`GET /v2/pipeline/{id}/config`."""
    return {"source": source, "compiled": source, "setup-config": "", "compiled-setup-config": ""}


def job_details(of_job: dict[str, Any]) -> dict[str, Any]:
    """`GET /v2/project/{slug}/job/{number}` of a build job."""
    return {
        "number": of_job["job_number"],
        "name": of_job["name"],
        "status": of_job["status"],
        "started_at": of_job["started_at"],
        "stopped_at": of_job["stopped_at"],
        "created_at": of_job["started_at"],
        "queued_at": of_job["started_at"],
        "duration": 60_000,
        "parallelism": 1,
        "web_url": f"https://app.circleci.com/jobs/{of_job['job_number']}",
        "contexts": [],
        "messages": [],
    }


def step(name: str, *actions: dict[str, Any]) -> dict[str, Any]:
    """One step of a v1.1 build."""
    return {"name": name, "actions": list(actions)}


def action(name: str, status: str = "success", **fields: Any) -> dict[str, Any]:
    """One action (a parallel run) of a v1.1 build step."""
    return {"name": name, "status": status, "exit_code": 0 if status == "success" else 1, "failed": status != "success", "index": 0, **fields}


def v1_build(of_job: dict[str, Any], *steps: dict[str, Any], with_steps_key: bool = True) -> dict[str, Any]:
    """`GET /v1.1/project/{vcs}/{org}/{repo}/{build_num}`: the build and its steps (absent when `with_steps_key` is False)."""
    build = {"build_num": of_job["job_number"], "status": of_job["status"], "lifecycle": "finished"}
    if with_steps_key:
        build["steps"] = list(steps)
    return build


def project(slug: str) -> dict[str, Any]:
    """`GET /v2/project/{slug}`."""
    provider, org, name = slug.split("/")
    return {
        "id": _uuid(),
        "slug": slug,
        "name": name,
        "organization_name": org,
        "organization_slug": f"{provider}/{org}",
        "organization_id": _uuid(),
        "vcs_info": {"vcs_url": f"https://example.com/{org}/{name}", "provider": provider, "default_branch": "main"},
    }


def project_settings(**advanced: Any) -> dict[str, Any]:
    """`GET /v2/project/{provider}/{org}/{project}/settings`: the `advanced` flags."""
    return {"advanced": {"autocancel_builds": False, "build_fork_prs": False, "disable_ssh": True, "oss": False, **advanced}}


def project_env_var(name: str = "DEPLOY_TOKEN") -> dict[str, Any]:
    """An item of `GET /v2/project/{slug}/envvar` (the value masked as CircleCI masks it)."""
    return {"name": name, "value": "xxxx1234", "created-at": timestamp(9_000)}


def checkout_key() -> dict[str, Any]:
    """An item of `GET /v2/project/{slug}/checkout-key`."""
    return {
        "fingerprint": ":".join(f"{next(_ids) % 256:02x}" for _ in range(16)),
        "type": "deploy-key",
        "preferred": True,
        "public-key": "ssh-ed25519 AAAA",
        "created-at": timestamp(9_000),
    }


def stream_states(**states: dict[str, Any]) -> list[AirbyteStateMessage]:
    """Per-stream state messages, as a platform passes a previous sync's state."""
    builder = StateBuilder()
    for name, state in states.items():
        builder.with_stream_state(name, state)
    return builder.build()


class CircleCI:
    """A requests-mock CircleCI: register what it holds, then read through the real source."""

    def __init__(self, mocker: requests_mock.Mocker) -> None:
        """`mocker` must be created with `case_sensitive=True` (page tokens are case-sensitive)."""
        self.mocker = mocker
        self.mocker.get(f"{API}/v2/me", json={"id": _uuid(), "login": "machine-user", "name": "CCM", "avatar_url": None})

    def collaborations(self, *orgs: dict[str, Any]) -> "CircleCI":
        self.mocker.get(f"{API}/v2/me/collaborations", json=list(orgs))
        return self

    def pages(self, path: str, items: list[dict[str, Any]], query: Optional[dict[str, str]] = None) -> "CircleCI":
        """Serve `items` at `path` in pages of 20 with opaque tokens, as CircleCI does."""
        chunks = [items[i : i + PAGE_SIZE] for i in range(0, len(items), PAGE_SIZE)] or [[]]
        tokens = [None] + [f"tok-{uuid.uuid4().hex}" for _ in chunks[1:]]  # tokens[i] asks for page i
        for index, chunk in enumerate(chunks):
            params = dict(query or {}, **({"page-token": tokens[index]} if tokens[index] else {}))
            following = tokens[index + 1] if index + 1 < len(chunks) else None
            self.mocker.get(
                f"{API}{path}",
                json={"items": chunk, "next_page_token": following},
                additional_matcher=_query_is(params),
            )
        return self

    def answer(self, path: str, status: int, body: Optional[dict[str, Any]] = None) -> "CircleCI":
        self.mocker.get(f"{API}{path}", status_code=status, json=body or {"message": "Not found"})
        return self

    def holds(self, path: str, body: Any) -> "CircleCI":
        """Answer `path` with `body` (a single object, not a paged list)."""
        self.mocker.get(f"{API}{path}", json=body)
        return self

    def urls(self) -> list[str]:
        """Every URL asked, in order, query included."""
        return [r.url for r in self.mocker.request_history]

    def requests_to(self, path_fragment: str) -> list[str]:
        return [r.url for r in self.mocker.request_history if path_fragment in r.url]


def _query_is(expected: dict[str, str]):
    def matches(request: Any) -> bool:
        return {key: values[-1] for key, values in request.qs.items()} == expected

    return matches


def catalog(*streams: str, incremental: bool = True) -> Any:
    return ConfiguredAirbyteCatalogSerializer.load(
        {
            "streams": [
                {
                    "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                    "sync_mode": "incremental" if incremental else "full_refresh",
                    "destination_sync_mode": "append",
                }
                for name in streams
            ]
        }
    )


def read_streams(
    *streams: str, config_overrides: Optional[dict[str, Any]] = None, state: Optional[list[Any]] = None
) -> EntrypointOutput:
    """Read through the real source (config, catalog and state given to the constructor, as the CDK requires)."""
    configured = catalog(*streams)
    cfg = config(**(config_overrides or {}))
    source = SourceCircleciCcm(catalog=configured, config=cfg, state=state)
    return read(source, cfg, configured, state)


def records_of(output: EntrypointOutput, stream: str) -> list[dict[str, Any]]:
    return [message.record.data for message in output.records if message.record.stream == stream]


def ids(records: Iterable[dict[str, Any]]) -> list[str]:
    return [record["id"] for record in records]


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
