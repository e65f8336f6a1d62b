"""Running the connector the way Airbyte does: its console script, with config, catalog and state files.

Shared by the integration tests, the demo sync and the benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

REPO = Path(__file__).resolve().parents[1]
ACTIVITY_STREAMS = ("pipelines", "workflows", "jobs")
CORE_STREAMS = ("me", "collaborations", "pipelines", "workflows", "jobs", "contexts")


def connector_command() -> list[str]:
    """The installed console script, as Airbyte runs it (falls back to the module for a bare checkout)."""
    script = Path(sys.executable).with_name("source-circleci-ccm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "source_circleci_ccm.run"]


def catalog(streams: Iterable[str], incremental: bool = True) -> dict[str, Any]:
    return {
        "streams": [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": "append",
            }
            for name in streams
        ]
    }


@dataclass
class Output:
    """What one run printed, sorted by message type."""

    messages: list[dict[str, Any]]
    returncode: int
    stderr: str
    seconds: float
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    state_messages: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""  # everything printed, for tests that search all output (secret leaks)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records[message["record"]["stream"]].append(message["record"]["data"])
            elif message["type"] == "STATE":
                state = message["state"]
                self.states[state["stream"]["stream_descriptor"]["name"]] = state
                self.state_messages.append(state)

    @property
    def state(self) -> list[dict[str, Any]]:
        """The last state of each stream, ready to be passed to the next run."""
        return list(self.states.values())

    def ids(self, stream: str) -> list[str]:
        return [record["id"] for record in self.records.get(stream, [])]

    def logs(self, *levels: str) -> list[str]:
        return [m["log"]["message"] for m in self.messages if m["type"] == "LOG" and (not levels or m["log"]["level"] in levels)]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m["trace"]["error"] for m in self.messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


def run_connector(
    command: str,
    config: Optional[dict[str, Any]] = None,
    catalog: Optional[dict[str, Any]] = None,
    state: Optional[list[dict[str, Any]]] = None,
    *,
    timeout: float = 600,
    env: Optional[dict[str, str]] = None,
    debug: bool = False,
) -> Output:
    """Run `source-circleci-ccm <command>` in a subprocess and parse what it printed."""
    with tempfile.TemporaryDirectory() as folder:
        args = connector_command() + [command] + (["--debug"] if debug else [])
        for flag, value in (("--config", config), ("--catalog", catalog), ("--state", state)):
            if value is not None:
                path = Path(folder) / f"{flag[2:]}.json"
                path.write_text(json.dumps(value))
                args += [flag, str(path)]
        started = time.monotonic()
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, cwd=folder, env={**os.environ, **(env or {})}
        )
        seconds = time.monotonic() - started
    messages = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            messages.append(json.loads(line))
    return Output(messages=messages, returncode=done.returncode, stderr=done.stderr, seconds=seconds, stdout=done.stdout)


@dataclass
class TwoSyncs:
    """A full sync, then (after new pipelines and every running workflow finished) a sync from its state: what
    each emitted, what the simulator held before and after, and the requests of each."""

    truth: dict[str, Any]
    full: Output
    full_requests: list[dict[str, Any]]
    truth_after: dict[str, Any]
    repeat: Output
    repeat_requests: list[dict[str, Any]]


def sync_twice(sim: Any, streams: Iterable[str], repeat_streams: Optional[Iterable[str]] = None) -> TwoSyncs:
    """`sim` is a running circleci_simulator.Simulator; the repeat reads `repeat_streams` (default: the same)."""
    config = {"api_token": sim.token, "api_url": sim.base_url}
    truth = sim.truth()
    sim.reset_request_log()
    full = run_connector("read", config, catalog(streams))
    full_requests = sim.request_log()
    sim.add_activity(pipelines=3)
    sim.finish_running()
    truth_after = sim.truth()
    sim.reset_request_log()
    repeat = run_connector("read", config, catalog(repeat_streams if repeat_streams is not None else streams), full.state)
    return TwoSyncs(truth, full, full_requests, truth_after, repeat, sim.request_log())
