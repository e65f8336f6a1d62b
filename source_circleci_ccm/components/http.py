"""The sync's one HTTP session: every stream's requests go through it.

It is what makes "every URL fetched once per sync" and "never more than `num_workers` requests in
flight" hold across streams: the CDK gives each stream its own session and only caches a stream's
direct parent, so a four-level sync would fetch the same pages several times.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from typing import Any, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from source_circleci_ccm.components.skips import SkipReporter

LOGGER = logging.getLogger("airbyte")

# Answers that will not change if asked again in the same sync: kept and shared. 5xx, 429 and 401
# are not: the CDK's error handler retries or fails them for each caller.
_SHAREABLE_STATUSES = frozenset({200, 400, 403, 404})


class InvalidResponseBody(requests.exceptions.RequestException):
    """A 200 whose body is not JSON (truncated, or an HTML page from a proxy): retried, never parsed."""


class _Flight:
    """One URL's fetch, shared by everyone who asks for it while it is under way or after."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.response: Optional[requests.Response] = None

    def resolve(self, response: Optional[requests.Response]) -> None:
        self.response = response
        self._done.set()

    def wait(self) -> Optional[requests.Response]:
        self._done.wait()
        return self.response


class SyncSession(requests.Session):
    """A `requests.Session` that shares answers, caps requests in flight and paces by rate-limit headers."""

    def __init__(self, max_in_flight: int, timeout_seconds: float) -> None:
        super().__init__()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(max_in_flight * 2, 16))
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._timeout = (10.0, timeout_seconds)
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._max_in_flight = max_in_flight
        self._paused_until = 0.0  # monotonic time before which no request starts (after a 429)
        self._next_start = 0.0  # earliest start of the next request while pacing
        self._interval = 0.0  # seconds between request starts while the quota is nearly spent
        self.skips = SkipReporter()
        self.server_time: Optional[float] = None  # epoch seconds of the first `Date` header seen
        # requests re-reads proxy variables and ~/.netrc on every request; at thousands of requests a sync that
        # was a measurable share of the connector's CPU. The token travels in a header, so .netrc is never
        # needed, and proxy and CA-bundle settings are read once per host below.
        self.trust_env = False
        self._environment: dict[str, dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        host = urlsplit(url).netloc if url else ""
        if host not in self._environment:
            with requests.Session() as environment:  # trusts the environment, as requests does by default
                self._environment[host] = environment.merge_environment_settings(url, {}, None, None, None)
        settings = dict(self._environment[host])
        if proxies:
            settings["proxies"] = {**settings["proxies"], **proxies}
        for key, value in (("stream", stream), ("verify", verify), ("cert", cert)):
            if value is not None:
                settings[key] = value
        return settings

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.method != "GET":
            return self._send_over_network(request, **kwargs)
        key = _canonical(request.url or "")
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None
        if not leader:
            shared = flight.wait()
            if shared is not None:
                return shared
            # The first caller got an error the CDK retries per caller: ask again ourselves.
        try:
            response = self._send_over_network(request, **kwargs)
        except BaseException:
            if leader:
                self._forget(key, flight)
            raise
        if leader:
            if response.status_code in _SHAREABLE_STATUSES:
                flight.resolve(response)
            else:
                self._forget(key, flight)
        return response

    def _forget(self, key: str, flight: _Flight) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.resolve(None)

    def _send_over_network(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:  # the CDK passes none unless the manifest sets one
            kwargs["timeout"] = self._timeout
        with self._slots:
            self._wait_for_turn()
            response = super().send(request, **kwargs)
            self._observe(response)
        if response.status_code == 200:
            _ensure_json(response)
        elif response.status_code in (400, 403, 404):
            self.skips.report(response)
        return response

    def _wait_for_turn(self) -> None:
        """After a 429 every request waits as CircleCI said; while the quota left would not cover the requests
        in flight, request starts are spaced at the rate the quota comes back, instead of bouncing off 429s."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._paused_until, self._next_start)
            self._next_start = start + self._interval
        if start > now:
            time.sleep(start - now)

    def _observe(self, response: requests.Response) -> None:
        headers = response.headers
        if self.server_time is None:
            date = headers.get("Date")
            parsed = email.utils.parsedate_to_datetime(date) if date else None
            self.server_time = parsed.timestamp() if parsed else time.time()
        limit = _number(_header(headers, "Limit"))
        remaining = _header(headers, "Remaining")
        reset = _seconds(_header(headers, "Reset"))
        with self._lock:
            if response.status_code == 429:
                wait = _seconds(headers.get("Retry-After")) or reset or 1.0
                self._paused_until = max(self._paused_until, time.monotonic() + wait)
            if limit and reset and remaining is not None:
                self._interval = reset / limit if _number(remaining) < self._max_in_flight else 0.0



def _canonical(url: str) -> str:
    """The same request whatever order its query parameters were added in."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))))


def _header(headers: Any, name: str) -> Optional[str]:
    """`RateLimit-<name>`, or the older `X-RateLimit-<name>`."""
    return headers.get(f"RateLimit-{name}", headers.get(f"X-RateLimit-{name}"))


def _seconds(value: Optional[str]) -> float:
    """A wait in seconds; an epoch timestamp (as some APIs send in X-RateLimit-Reset) becomes the time until it."""
    number = _number(value)
    if number > 1_000_000_000:
        number -= time.time()
    return min(max(number, 0.0), 3600.0)


def _number(value: Optional[str]) -> float:
    try:
        return max(float(value), 0.0) if value is not None else 0.0
    except ValueError:
        return 0.0


def _ensure_json(response: requests.Response) -> None:
    try:
        orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise InvalidResponseBody(
            f"CircleCI answered {_path_of(response)} with HTTP 200 but a body that is not JSON "
            f"({len(response.content)} bytes, {response.headers.get('Content-Type', 'no content type')}); retrying.",
            response=response,
        ) from None


def _path_of(response: requests.Response) -> str:
    return requests.utils.urlparse(response.url).path
