"""The sync's one HTTP session: one cap on requests in flight, pacing by rate-limit headers, no redirects.

Every request of a sync goes through it (the client in client.py is its only user), so "never more than
`num_workers` requests in flight" and "the token goes nowhere but the configured origin" hold for every stream.
"""

from __future__ import annotations

import email.utils
import threading
import time
from typing import Any, Mapping, Optional

import requests
from requests.adapters import HTTPAdapter
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import select_proxy
from urllib3 import HTTPConnectionPool


class CircleCISession(requests.Session):
    """A `requests.Session` that caps requests in flight, paces by CircleCI's rate-limit headers and never
    follows a redirect (the client refuses them: a redirect would carry the Circle-Token header elsewhere)."""

    def __init__(self, max_in_flight: int, timeout_seconds: float, ca_bundle: Optional[str] = None) -> None:
        super().__init__()
        adapter = _APIAdapter(pool_connections=4, pool_maxsize=max(max_in_flight * 2, 16))
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._timeout = (10.0, timeout_seconds)
        self._lock = threading.Lock()
        self._max_in_flight = max_in_flight
        self._paused_until = 0.0  # monotonic time before which no request starts (after a 429)
        self._last_start = 0.0  # when the last request started
        self._interval = 0.0  # seconds between request starts while the quota is nearly spent
        self._ca_bundle = ca_bundle  # a private CA (CircleCI server); TLS is verified either way
        self.server_time: Optional[float] = None  # epoch seconds of the first `Date` header seen
        # requests re-reads proxy variables and ~/.netrc on every request; at thousands of requests a sync that
        # was a measurable share of the connector's CPU. The token travels in a header, so .netrc is never
        # needed; proxy settings (HTTPS_PROXY, NO_PROXY) are read once per origin below.
        self.trust_env = False
        self._environment: dict[str, dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        settings = dict(self._host_settings(url))
        if proxies:
            settings["proxies"] = {**settings["proxies"], **proxies}
        for key, value in (("stream", stream), ("verify", verify), ("cert", cert)):
            if value is not None:
                settings[key] = value
        return settings

    def _host_settings(self, url: Any) -> Mapping[str, Any]:
        """The environment's settings for the URL's origin (proxies, CA bundle), read the first time it is asked."""
        host = origin(url) if url else ""
        if host not in self._environment:
            with requests.Session() as environment:  # trusts the environment, as requests does by default
                settings = environment.merge_environment_settings(url, {}, None, None, None)
            if self._ca_bundle:
                settings["verify"] = self._ca_bundle
            self._environment[host] = settings
        return self._environment[host]

    def fetch(self, url: str, headers: Mapping[str, str]) -> requests.Response:
        """GET `url`, a well-formed ASCII URL with its query already encoded (the client builds it). The request
        is put together directly: Session.request and PreparedRequest.prepare would merge cookies, auth, hooks
        and settings and re-parse the URL on every request, a sixth of the connector's CPU on a full sync."""
        request = requests.PreparedRequest()
        request.method, request.url, request.body = "GET", url, None
        request.headers = CaseInsensitiveDict(headers)
        request.hooks = default_hooks()
        return self.send(request, **self._host_settings(url))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        with self._slots:
            self._wait_for_turn()
            response = super().send(request, **kwargs)
            self._observe(response)
        return response

    def resolve_redirects(self, response: requests.Response, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        """Follows nothing, whoever asks. requests calls this even with allow_redirects=False (to fill
        `response.next`), so `max_redirects = 0` made every 3xx a TooManyRedirects before the client could
        refuse it with a message naming both origins; with no redirect ever resolved the client sees the 3xx."""
        return iter(())

    def _wait_for_turn(self) -> None:
        """After a 429 every request waits as CircleCI said; while the quota left would not cover the requests
        in flight, request starts are spaced as `_pace` says, instead of bouncing off 429s. A waiting request
        looks again every few milliseconds, so a new answer's figures apply at once."""
        while True:
            with self._lock:
                now = time.monotonic()
                start = max(self._paused_until, self._last_start + self._interval)
                if start <= now:
                    self._last_start = now
                    return
            time.sleep(min(start - now, 0.02))

    def _observe(self, response: requests.Response) -> None:
        headers = response.headers
        if self.server_time is None:
            date = headers.get("Date")
            try:
                parsed = email.utils.parsedate_to_datetime(date) if date else None
            except (TypeError, ValueError):
                parsed = None
            self.server_time = parsed.timestamp() if parsed else time.time()
        limit = _header(headers, "Limit")
        remaining = _header(headers, "Remaining")
        reset = _seconds(_header(headers, "Reset"))
        with self._lock:
            if response.status_code == 429:
                wait = _seconds(headers.get("Retry-After")) or reset or 1.0
                self._paused_until = max(self._paused_until, time.monotonic() + wait)
            if limit is not None and remaining is not None:
                self._interval = self._pace(_number(remaining), reset)

    def _pace(self, remaining: float, reset_seconds: float) -> float:
        """Seconds between request starts: none while the quota left covers twice the requests in flight, else
        the quota left spread over the time until it comes back. That one rule fits a fixed window (spend what
        is left before the reset), a token bucket whose Reset says "until full" (it settles at half the bucket,
        sending as fast as it refills) and an epoch Reset (read as the time until then). A Reset that says
        "until the next request" is 0 while any quota is left and tells nothing: the spacing then stays as the
        last empty quota set it, the longest wait seen (the refill period)."""
        if remaining >= 2 * self._max_in_flight:
            return 0.0
        if remaining < 1:
            return max(self._interval, reset_seconds)
        return reset_seconds / remaining if reset_seconds > 0 else self._interval


class _APIAdapter(HTTPAdapter):
    """requests' adapter without per-request work an API client does not need: parsing the URL again to find
    the proxy and the pool of an origin it already knows, and copying cookies (CircleCI's token is a header).
    Both are requests' documented hooks for subclasses; sending, and turning urllib3's errors into requests'
    own, stay requests' code. About a tenth of the CPU a request costs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool_keys: dict[tuple[str, Any, Any], tuple[dict[str, Any], dict[str, Any]]] = {}

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any, proxies: Any = None,
                                        cert: Any = None) -> HTTPConnectionPool:
        if proxies and select_proxy(request.url, proxies):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        key = (origin(request.url), verify, cert)
        if key not in self._pool_keys:
            self._pool_keys[key] = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = self._pool_keys[key]
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url
        response.request = req
        response.connection = self
        return response


def origin(url: str) -> str:
    """`scheme://host:port` of an absolute URL, without parsing all of it."""
    end = url.find("/", url.find("//") + 2)
    return url if end < 0 else url[:end]


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
