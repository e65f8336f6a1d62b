"""Bad configuration through the real console script: `check` says what is wrong and how to fix it,
`read` fails with the same message as a config_error trace, and neither prints a bare traceback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from integration_tests.harness import Output, catalog, run_connector
from source_circleci_ccm.config import ConfigError, normalize_config


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorSettings.preset("tiny")) as simulator:
        yield simulator


def _base(sim: Simulator) -> dict[str, Any]:
    return {"api_token": sim.token, "api_url": sim.base_url}


# name -> (config built from the simulator's, words the message must hold)
BAD: dict[str, tuple[Callable[[Simulator], dict[str, Any]], list[str]]] = {
    "token missing": (lambda s: {"api_url": s.base_url}, ["api_token is missing", "Personal API Tokens"]),
    "token empty": (lambda s: {**_base(s), "api_token": "   "}, ["api_token is missing or empty", "Personal API Tokens"]),
    "token not text": (lambda s: {**_base(s), "api_token": 12345}, ["api_token must be text", "Personal API Tokens"]),
    "api_url not a URL": (lambda s: {**_base(s), "api_url": "circleci"}, ["'circleci' is not a URL", "https://circleci.com/api"]),
    "api_url with a path but no /api": (
        lambda s: {**_base(s), "api_url": s.base_url[: -len("/api")] + "/v2"},
        ["must end with /api", "/api."],
    ),
    "unknown org slug": (
        lambda s: {**_base(s), "org_slugs": ["gh/does-not-exist"]},
        ["gh/does-not-exist", "Organisations visible to this token: ", "gh/acme"],
    ),
    "start_date in the future": (lambda s: {**_base(s), "start_date": "2999-01-01"}, ["is in the future", "pick a past date"]),
    "start_date malformed": (lambda s: {**_base(s), "start_date": "01/02/2024"}, ["'01/02/2024' is not an RFC 3339 date", "2026-01-01"]),
    "start_date impossible": (lambda s: {**_base(s), "start_date": "2024-02-30"}, ["'2024-02-30' is not an RFC 3339 date"]),
    "num_workers 0": (lambda s: {**_base(s), "num_workers": 0}, ["num_workers is 0", "from 1 to 32"]),
    "num_workers 33": (lambda s: {**_base(s), "num_workers": 33}, ["num_workers is 33", "from 1 to 32"]),
    "num_workers text": (lambda s: {**_base(s), "num_workers": "many"}, ["num_workers must be a whole number", "from 1 to 32"]),
    "plain http to a remote host": (
        lambda s: {**_base(s), "api_url": "http://example.com/api"},
        ["plain http", "https://example.com/api"],
    ),
}


@pytest.fixture(scope="module")
def outputs(sim: Simulator) -> dict[tuple[str, str], Output]:
    """check and read of every bad config, a few processes at a time (each spends most of its time starting)."""
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for name, (make, _) in BAD.items():
            jobs[(name, "check")] = pool.submit(run_connector, "check", make(sim), timeout=90)
            jobs[(name, "read")] = pool.submit(run_connector, "read", make(sim), catalog(["me", "pipelines"]), timeout=90)
        return {key: job.result() for key, job in jobs.items()}


def _no_traceback(output: Output) -> None:
    assert "Traceback" not in output.stderr, output.stderr[-2000:]
    assert not any("Traceback" in m for m in output.logs()), "no traceback logged either"


@pytest.mark.parametrize("name", list(BAD))
def test_check_fails_with_a_message_saying_what_to_fix(outputs: dict, name: str) -> None:
    words = BAD[name][1]
    output = outputs[(name, "check")]

    statuses = output.of_type("CONNECTION_STATUS")
    assert statuses and statuses[0]["connectionStatus"]["status"] == "FAILED", output.messages
    message = statuses[0]["connectionStatus"]["message"]
    assert all(word in message for word in words), message
    assert "does not match" not in message and "Config validation error" not in message
    _no_traceback(output)


@pytest.mark.parametrize("name", list(BAD))
def test_read_fails_with_a_config_error_trace_and_a_non_zero_exit(outputs: dict, name: str) -> None:
    words = BAD[name][1]
    output = outputs[(name, "read")]

    assert output.returncode != 0
    assert output.errors, "a TRACE error message"
    first = output.errors[0]
    assert first["failure_type"] == "config_error"
    assert all(word in first["message"] for word in words), first["message"]
    assert len(output.errors) == 1, [e["message"] for e in output.errors]
    assert not output.records
    _no_traceback(output)


def test_whitespace_around_the_token_and_url_is_trimmed(sim: Simulator) -> None:
    config = {"api_token": f"  {sim.token}\n", "api_url": f"\t{sim.base_url}/  "}

    check = run_connector("check", config, timeout=60)
    read = run_connector("read", config, catalog(["me"]), timeout=60)

    assert check.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"] == "SUCCEEDED"
    assert read.returncode == 0 and not read.errors
    assert read.records["me"]


@pytest.mark.parametrize(
    "url, accepted",
    [
        ("http://127.0.0.1:8080/api", True),
        ("http://localhost:8080/api", True),
        ("http://[::1]:8080/api", True),
        ("http://127.8.9.10/api", True),
        ("https://circleci.example.com/api", True),
        ("http://example.com/api", False),
        ("http://10.0.0.5/api", False),
        ("http://localhost.example.com/api", False),
        ("http://[2001:db8::1]/api", False),
    ],
)
def test_plain_http_only_for_loopback_hosts(url: str, accepted: bool) -> None:
    config = {"api_token": "tok", "api_url": url}
    if accepted:
        assert normalize_config(config)["api_url"] == url
    else:
        with pytest.raises(ConfigError, match="plain http"):
            normalize_config(config)


@pytest.mark.parametrize(
    "url",
    ["https://user:pass@circleci.com/api", "https://circleci.com/api?x=1", "https://circle ci.com/api", "https://circleci.com:port/api", "ftp://circleci.com/api"],
)
def test_urls_that_cannot_work_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="api_url"):
        normalize_config({"api_token": "tok", "api_url": url})
