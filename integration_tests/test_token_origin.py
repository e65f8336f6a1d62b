"""Issue 14: the token goes to the configured origin only, over verified TLS, through the user's proxy.

Through the real console script (`check`, `read`, `--debug`), against local servers that record every request:
- redirects (301, 302, 303, 307, 308, a chain that leaves the host and comes back, one mid-sync, one to the
  same origin) are all refused: the other server receives nothing, so never the Circle-Token header, and the
  user gets a config error naming the configured origin and the target;
- TLS: a CircleCI server whose certificate a private CA (generated here) signed works with that CA in
  `ca_certificate`, and fails with a message saying the certificate could not be verified with a wrong CA or none;
- proxies: HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment are honoured, and the token appears in no
  proxy URL, no proxy credential, and no output.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import unquote

import pytest

from circleci_simulator import Simulator, SimulatorSettings
from integration_tests.harness import Output, catalog, run_connector
from integration_tests.local_servers import ForwardProxy, Recorder, Reply, make_ca, relay_to, server_context
from integration_tests.test_secrets import forms

SECRET = "CCIPAT_0r1g1nT0k3n_5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"
IDENTITY = json.dumps({"id": "9f8e7d6c-0000-4000-8000-000000000001", "login": "attacker", "name": "Not CircleCI"}).encode()
REDIRECTS = (301, 302, 303, 307, 308)


def identity(path: str, headers: Mapping[str, str]) -> Reply:
    """What a server that pretends to be CircleCI answers: a user for /me, an empty list for everything else."""
    body = IDENTITY if path.split("?")[0].endswith("/v2/me") else b"[]"
    return 200, {"Content-Type": "application/json"}, body


def assert_no_leak(output: Output, *secrets: str) -> None:
    leaks = [form[:12] for secret in secrets for form in forms(secret) for text in (output.stdout, output.stderr) if form in text or form in unquote(text)]
    assert not leaks, f"the token appears in the output: {leaks}"


def assert_no_traceback(output: Output) -> None:
    assert "Traceback" not in output.stderr, output.stderr[-2000:]
    assert not any("Traceback" in message for message in output.logs())


def check_status(output: Output) -> dict[str, Any]:
    statuses = output.of_type("CONNECTION_STATUS")
    assert statuses, (output.messages, output.stderr[-2000:])
    return statuses[0]["connectionStatus"]


# --- redirects --------------------------------------------------------------------------------------------


def _redirect(status: int, to: Callable[[], str]) -> Callable[[str, Mapping[str, str]], Reply]:
    return lambda path, headers: (status, {"Location": to() + path}, b"")


def _servers(case: str) -> tuple[Recorder, Recorder]:
    """(configured, other) for a case; the configured server redirects, the other would answer as CircleCI."""
    configured, other = Recorder(identity), Recorder(identity)
    if case.isdigit():
        configured.answer = _redirect(int(case), lambda: other.origin)
    elif case == "chain leaving and coming back":
        # 302 to the other host, which sends it back to the original one, which then answers as CircleCI.
        configured.answer = lambda path, h: identity(path, h) if "back=1" in path else (302, {"Location": f"{other.origin}/hop"}, b"")
        other.answer = lambda path, h: (307, {"Location": f"{configured.origin}/api/v2/me?back=1"}, b"")
    elif case == "mid-sync":
        # /v2/me answers; the next request of the sync (collaborations) is redirected.
        configured.answer = lambda path, h: identity(path, h) if path.split("?")[0].endswith("/v2/me") else (307, {"Location": other.origin + path}, b"")
    elif case == "same origin":
        configured.answer = lambda path, h: (301, {"Location": f"{configured.origin}/api/v2/me/"}, b"")
        other.answer = identity
    else:
        raise ValueError(case)
    return configured, other


REDIRECT_RUNS = [(str(status), command) for status in REDIRECTS for command in ("check", "read")] + [
    ("chain leaving and coming back", "check"),
    ("chain leaving and coming back", "read"),
    ("mid-sync", "read"),
    ("same origin", "check"),
]


class Run:
    """One connector run against a pair of servers, and what each server received."""

    def __init__(self, case: str, command: str) -> None:
        configured, other = _servers(case)
        with configured, other:
            config = {"api_token": SECRET, "api_url": f"{configured.origin}/api", "request_timeout_seconds": 5}
            streams = catalog(["me", "collaborations"]) if command == "read" else None
            self.output = run_connector(command, config, streams, timeout=120, debug=True)
        self.configured, self.other = configured, other


@pytest.fixture(scope="module")
def redirect_runs() -> Iterator[dict[tuple[str, str], Run]]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {key: pool.submit(Run, *key) for key in REDIRECT_RUNS}
        yield {key: run.result() for key, run in runs.items()}


@pytest.mark.parametrize("case, command", REDIRECT_RUNS, ids=[f"{c} {m}" for c, m in REDIRECT_RUNS])
def test_a_redirect_never_carries_the_token_elsewhere(redirect_runs: dict, case: str, command: str) -> None:
    run = redirect_runs[(case, command)]
    assert not [seen for seen in run.other.seen if seen.carries(SECRET)], "the other server received the token"
    assert run.other.seen == [], "redirects are not followed at all, so the other server receives no request"
    assert run.configured.seen and all(seen.carries(SECRET) for seen in run.configured.seen), "the configured one did"
    assert_no_leak(run.output, SECRET)
    if case == "mid-sync":
        # The CDK logs any exception of a stream with its traceback; the first error says what happened.
        assert "Traceback" not in run.output.stderr and "follows no redirect" in run.output.errors[0]["message"]
    else:
        assert_no_traceback(run.output)


@pytest.mark.parametrize("case, command", REDIRECT_RUNS, ids=[f"{c} {m}" for c, m in REDIRECT_RUNS])
def test_the_user_is_told_which_origins_and_why(redirect_runs: dict, case: str, command: str) -> None:
    run = redirect_runs[(case, command)]
    if command == "check":
        status = check_status(run.output)
        assert status["status"] == "FAILED"
        message = status["message"]
    else:
        assert run.output.returncode != 0
        assert run.output.errors, run.output.stderr[-2000:]
        error = run.output.errors[0]
        assert error["failure_type"] == "config_error", error
        message = error["message"]
        assert not run.output.records.get("collaborations")
    target = run.configured.origin if case == "same origin" else run.other.origin
    assert f"CircleCI at {run.configured.origin} answered" in message, message
    assert f"to {'the same origin' if case == 'same origin' else 'another origin'}, {target}." in message, message
    assert "follows no redirect" in message and "api_url" in message, message


# --- TLS with a private certificate authority ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[Simulator]:
    with Simulator(SimulatorSettings.preset("tiny", token=SECRET)) as sim:
        yield sim


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_ca("CircleCI server test CA")


@pytest.fixture(scope="module")
def https_front(tls_sim: Simulator, private_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    """The simulator behind a TLS front whose certificate (for 127.0.0.1) the private CA signed."""
    origin = tls_sim.base_url[: -len("/api")]
    with Recorder(relay_to(origin), tls=server_context(private_ca, tmp_path_factory.mktemp("tls"))) as front:
        yield front


def _tls_config(front: Recorder, ca_pem: str | None) -> dict[str, Any]:
    config = {"api_token": SECRET, "api_url": f"{front.origin}/api", "request_timeout_seconds": 5}
    if ca_pem is not None:
        config["ca_certificate"] = ca_pem
    return config


def test_check_and_read_succeed_with_the_private_ca(https_front: Recorder, private_ca: Any) -> None:
    config = _tls_config(https_front, private_ca.pem)
    check = run_connector("check", config, timeout=90, debug=True)
    read = run_connector("read", config, catalog(["me", "collaborations"]), timeout=120, debug=True)

    assert check_status(check)["status"] == "SUCCEEDED", check_status(check)
    assert read.returncode == 0 and not read.errors, (read.errors, read.stderr[-2000:])
    assert read.records["me"] and read.records["collaborations"]
    assert any(seen.target.startswith("/api/v2/me/collaborations") for seen in https_front.seen)
    for output in (check, read):
        assert_no_leak(output, SECRET)


@pytest.mark.parametrize("ca", ["a wrong CA", "no CA"])
def test_a_certificate_that_does_not_verify_fails_with_a_clear_message(https_front: Recorder, ca: str) -> None:
    pem = make_ca("Some other CA").pem if ca == "a wrong CA" else None
    config = _tls_config(https_front, pem)
    before = len(https_front.seen)
    check = run_connector("check", config, timeout=90, debug=True)
    read = run_connector("read", config, catalog(["me"]), timeout=90, debug=True)

    status = check_status(check)
    assert status["status"] == "FAILED"
    for message in (status["message"], read.errors[0]["message"] if read.errors else ""):
        assert f"The TLS certificate of {https_front.origin} could not be verified" in message, message
        assert "certificate verify failed" in message and "ca_certificate" in message, message
    assert read.returncode != 0 and read.errors[0]["failure_type"] == "config_error"
    assert len(https_front.seen) == before, "no request got through the failed handshake, so the token was never sent"
    for output in (check, read):
        assert_no_leak(output, SECRET)
        assert_no_traceback(output)


def test_spec_lists_ca_certificate_as_a_multiline_field() -> None:
    spec = run_connector("spec", timeout=60)
    properties = spec.of_type("SPEC")[0]["spec"]["connectionSpecification"]["properties"]
    field = properties["ca_certificate"]
    assert field["type"] == "string" and field.get("multiline") is True
    assert field["title"] and "certificate authority" in field["description"]
    assert not field.get("airbyte_secret"), "a CA certificate is public: shown, not hidden"


# --- proxies ---------------------------------------------------------------------------------------------


PROXY_USER, PROXY_PASSWORD = "proxyuser", "pr0xy-Pa55w0rd-7c1e"


def _proxy_env(proxy_url: str, no_proxy: str = "") -> dict[str, str]:
    """Both spellings, as requests reads lowercase first; NO_PROXY empty means even 127.0.0.1 goes through the proxy."""
    with_credentials = proxy_url.replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@")
    env = {}
    for name in ("http_proxy", "https_proxy"):
        env[name] = env[name.upper()] = with_credentials
    env["no_proxy"] = env["NO_PROXY"] = no_proxy
    return env


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as forward:
        yield forward


def test_http_proxy_from_the_environment_is_used_and_gets_no_token_in_its_url_or_credentials(proxy: ForwardProxy, tls_sim: Simulator) -> None:
    config = {"api_token": SECRET, "api_url": tls_sim.base_url}
    check = run_connector("check", config, timeout=90, env=_proxy_env(proxy.url), debug=True)
    read = run_connector("read", config, catalog(["me", "collaborations"]), timeout=120, env=_proxy_env(proxy.url), debug=True)

    assert check_status(check)["status"] == "SUCCEEDED", check_status(check)
    assert read.returncode == 0 and read.records["me"], (read.errors, read.stderr[-2000:])
    origin = tls_sim.base_url[: -len("/api")]
    assert proxy.seen and all(seen.target.startswith(f"{origin}/api/v2/me") for seen in proxy.seen), [s.target for s in proxy.seen]
    for seen in proxy.seen:
        assert SECRET not in seen.target and SECRET not in unquote(seen.target)
        credentials = dict((k.lower(), v) for k, v in seen.headers)["proxy-authorization"]
        assert base64.b64decode(credentials.split()[1]).decode() == f"{PROXY_USER}:{PROXY_PASSWORD}"
    for output in (check, read):
        assert_no_leak(output, SECRET)
        assert PROXY_PASSWORD not in output.stdout + output.stderr, "the proxy's password is not logged either"


def test_no_proxy_lets_the_configured_host_bypass_the_proxy(proxy: ForwardProxy, tls_sim: Simulator) -> None:
    config = {"api_token": SECRET, "api_url": tls_sim.base_url}
    check = run_connector("check", config, timeout=90, env=_proxy_env(proxy.url, no_proxy="127.0.0.1"), debug=True)

    assert check_status(check)["status"] == "SUCCEEDED", check_status(check)
    assert proxy.seen == []
    assert_no_leak(check, SECRET)


def test_https_proxy_sees_only_a_tunnel_never_the_token(proxy: ForwardProxy, https_front: Recorder, private_ca: Any) -> None:
    config = _tls_config(https_front, private_ca.pem)
    check = run_connector("check", config, timeout=90, env=_proxy_env(proxy.url), debug=True)

    assert check_status(check)["status"] == "SUCCEEDED", check_status(check)
    authority = https_front.origin[len("https://") :]
    assert [(seen.method, seen.target) for seen in proxy.seen] == [("CONNECT", authority)]
    assert not any(seen.carries(SECRET) for seen in proxy.seen)
    assert_no_leak(check, SECRET)


def test_an_unreachable_proxy_fails_the_check_without_leaking(tls_sim: Simulator) -> None:
    config = {"api_token": SECRET, "api_url": tls_sim.base_url}
    check = run_connector("check", config, timeout=90, env=_proxy_env("http://127.0.0.1:9"), debug=True)

    status = check_status(check)
    assert status["status"] == "FAILED"
    assert "ProxyError" in status["message"] and "HTTPS_PROXY / HTTP_PROXY did not answer" in status["message"], status["message"]
    assert_no_leak(check, SECRET)
    assert PROXY_PASSWORD not in check.stdout + check.stderr
    assert_no_traceback(check)
