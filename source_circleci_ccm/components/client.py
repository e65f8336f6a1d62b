"""CircleCIClient: the one way a sync talks to CircleCI.

The source builds one per run and hands it to every stream and to the crawl. It owns:
- the request: the Circle-Token header, sent to the configured origin only (a redirect is refused, never followed);
- errors: 429 waits as CircleCI says, 5xx / resets / timeouts / a 200 that is not JSON are retried with backoff,
  401 fails the sync as a config error, 400/403/404 skip the object with a warning naming it (skips.py);
- paging: CircleCI's one scheme (`next_page_token`), with the stops a loop or a newest-first feed needs;
- the few answers kept for the whole sync because several streams need them and they are small (`keep=True`:
  the identity, organisations, contexts, projects and their settings). Everything else is not kept.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import urlencode, urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_circleci_ccm.components.http import CircleCISession
from source_circleci_ccm.components.progress import parse_time
from source_circleci_ccm.components.skips import SkipReporter, Subject
from source_circleci_ccm.config import TOKEN_SETTINGS

LOGGER = logging.getLogger("airbyte")

REJECTED_TOKEN = (
    "CircleCI rejected the API token (401 Unauthorized): it is invalid, expired or deleted. Regenerate it under "
    f"{TOKEN_SETTINGS} and update the token in this connection."
)
MAX_RETRIES = 8  # 5xx, resets, timeouts, bodies that are not JSON: 0.5 s doubling, about two minutes in all
MAX_RATE_LIMITED = 60  # 429s in a row for one request, each waited out as CircleCI says
SKIPPED_STATUSES = frozenset({400, 403, 404})
_RETRIED_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class CircleCIUnavailable(AirbyteTracedException):
    """CircleCI kept failing on one request (network errors, 5xx, bodies that are not JSON) past every retry."""

    def __init__(self, message: str, what: str, unreachable: bool) -> None:
        super().__init__(message=message, failure_type=FailureType.transient_error)
        self.what = what
        self.unreachable = unreachable  # no answer at all came back: the host cannot be reached


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class Answer:
    """A status and, for a 200, the parsed body."""

    __slots__ = ("status", "body")

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body


class Listing:
    """The items of a paginated list, read page by page as it is iterated. `complete` is False once CircleCI
    rejected a page token part-way: the items read are kept, and what was not read must not count as done."""

    def __init__(self, client: "CircleCIClient", path: str, params: Mapping[str, str], subject: Subject, stop_below: Optional[float]) -> None:
        self._client = client
        self._path = path
        self._params = dict(params)
        self._subject = subject
        self._stop_below = stop_below
        self.complete = True
        self.status = 200  # of the first page: 400/403/404 when the object was skipped

    @property
    def readable(self) -> bool:
        return self.status == 200

    def __iter__(self) -> Iterator[dict[str, Any]]:
        first = self._client.fetch(self._path, self._params, self._subject)
        self.status, body = first.status, first.body
        if first.status != 200:
            return
        seen: set[str] = set()
        while True:
            yield from page_items(body)
            token = next_page_token(body, seen, self._stop_below)
            if token is None:
                repeated = body.get("next_page_token") if isinstance(body, Mapping) else None
                if isinstance(repeated, str) and repeated in seen:
                    LOGGER.warning(
                        f"CircleCI returned the same page token twice for {self._client.listing_name(self._path, self._params)}; "
                        "stopped paging there instead of looping."
                    )
                return
            seen.add(token)
            answer = self._client.fetch(self._path, {**self._params, "page-token": token}, subject=None)
            if answer.status != 200:
                self.complete = False
                self._client.skips.page_token_rejected(self._client.listing_name(self._path, self._params), answer.status, _message(answer.body))
                return
            body = answer.body


def next_page_token(body: Any, seen_tokens: set[str], stop_below: Optional[float] = None) -> Optional[str]:
    """The token of the next page, or None: no token, a token already followed (no loops), or
    (newest-first lists) the page already reaches below `stop_below`."""
    if not isinstance(body, Mapping):
        return None
    token = body.get("next_page_token")
    if not token or not isinstance(token, str) or token in seen_tokens:
        return None
    if stop_below is not None:
        items = body.get("items") or []
        oldest = parse_time(items[-1].get("created_at")) if isinstance(items, list) and items and isinstance(items[-1], Mapping) else None
        if oldest is not None and oldest < stop_below:
            return None
    return token


def page_items(body: Any) -> Iterator[dict[str, Any]]:
    """The objects in a page's `items` list; nothing when `items` is missing or not a list."""
    items = body.get("items") if isinstance(body, Mapping) else None
    return (item for item in items if isinstance(item, dict)) if isinstance(items, list) else iter(())


class CircleCIClient:
    def __init__(self, api_url: str, token: str, session: CircleCISession) -> None:
        self.api_url = api_url.rstrip("/")
        self.origin = origin_of(self.api_url)
        self._headers = {"Circle-Token": token, "Accept": "application/json"}
        self.session = session
        self.skips = SkipReporter()
        self._kept: dict[tuple[str, str, str], Future[Any]] = {}
        self._kept_lock = threading.Lock()

    @property
    def server_time(self) -> Optional[float]:
        """CircleCI's clock (its first `Date` header) in epoch seconds, once any answer came back."""
        return self.session.server_time

    # --- one object -------------------------------------------------------------------------------------
    def get(self, path: str, params: Optional[Mapping[str, str]] = None, *, subject: Optional[Subject], keep: bool = False) -> Any:
        """The parsed body of a 200, or None when CircleCI answered 400/403/404 (skipped with a warning about
        `subject`). With `keep`, the answer is kept for the rest of the sync and shared by every caller."""
        params = params or {}
        if keep:
            answer = self._once(("get", path, _query(params)), lambda: self.fetch(path, params, subject))
        else:
            answer = self.fetch(path, params, subject)
        return answer.body if answer.status == 200 else None

    def kept_items(self, path: str, params: Optional[Mapping[str, str]] = None, *, subject: Subject) -> list[dict[str, Any]]:
        """A small list several streams need (contexts, their variables and restrictions): read once a sync."""
        params = params or {}
        return self._once(("items", path, _query(params)), lambda: list(self.items(path, params, subject=subject)))

    def kept_list(self, path: str, params: Optional[Mapping[str, str]] = None, *, subject: Subject) -> Optional[list[dict[str, Any]]]:
        """A small list a stream and a control both need (deploy components, webhooks): read once a sync;
        None when CircleCI answered 400/403/404 (a feature the account lacks), so callers can tell it from empty."""
        params = params or {}

        def read() -> Optional[list[dict[str, Any]]]:
            listing = self.items(path, params, subject=subject)
            items = list(listing)
            return items if listing.readable else None

        return self._once(("list", path, _query(params)), read)

    def _once(self, key: tuple[str, str, str], compute: Any) -> Any:
        """`compute()` the first time `key` is asked for, and its result for everyone after (or meanwhile)."""
        with self._kept_lock:
            future = self._kept.get(key)
            leader = future is None
            if leader:
                future = self._kept[key] = Future()
        assert future is not None
        if not leader:
            return future.result()
        try:
            result = compute()
        except BaseException as error:
            with self._kept_lock:
                del self._kept[key]  # a failure is not kept: the next caller asks again
            future.set_exception(error)
            raise
        future.set_result(result)
        return result

    def identity(self, attempts: int) -> Any:
        """`GET /v2/me`, asked at most `attempts` times (a connection test must not retry for minutes); kept
        for the `me` stream."""
        return self._once(("get", "/v2/me", ""), lambda: self.fetch("/v2/me", {}, None, max_failures=attempts - 1)).body

    def fetch(self, path: str, params: Mapping[str, str], subject: Optional[Subject], max_failures: int = MAX_RETRIES) -> Answer:
        """GET `path` (relative to api_url) with retries; a 400/403/404 is reported about `subject` unless it is None."""
        url = f"{self.api_url}{path}" + (f"?{urlencode(params)}" if params else "")
        rate_limited = failures = 0
        while True:
            if LOGGER.isEnabledFor(logging.DEBUG):  # the token in these headers is masked by the CDK's log filter
                LOGGER.debug("Making outbound API request", extra={"url": url, "headers": self._headers})
            try:
                response = self.session.fetch(url, self._headers)
            except requests.exceptions.SSLError as error:
                raise AirbyteTracedException(message=self._tls_failed(error), failure_type=FailureType.config_error) from None
            except _RETRIED_ERRORS as error:
                failures += 1
                self._give_up_after(failures, max_failures, path, type(error).__name__, unreachable=True)
                continue
            status = response.status_code
            if 300 <= status < 400:
                raise AirbyteTracedException(message=self._redirect_refused(response), failure_type=FailureType.config_error)
            if status == 401:
                raise AirbyteTracedException(message=REJECTED_TOKEN, failure_type=FailureType.config_error)
            if status == 429:
                rate_limited += 1
                if rate_limited > MAX_RATE_LIMITED:
                    raise AirbyteTracedException(
                        message=f"CircleCI kept answering 429 (rate limit) for {path} after {MAX_RATE_LIMITED} waits. Lower "
                        "num_workers or sync when the account is less busy.",
                        failure_type=FailureType.transient_error,
                    )
                continue  # the session waits as Retry-After / RateLimit-Reset say before the next start
            if status >= 500 or status == 408:
                failures += 1
                self._give_up_after(failures, max_failures, path, f"HTTP {status}")
                continue
            if status == 200:
                try:
                    return Answer(200, orjson.loads(response.content))
                except orjson.JSONDecodeError:
                    # Truncated, or an HTML page from a proxy: asked again, never half-parsed.
                    failures += 1
                    self._give_up_after(failures, max_failures, path, f"a body that is not JSON ({len(response.content)} bytes)")
                    continue
            body = _json_or_none(response)
            if status in SKIPPED_STATUSES and subject is not None:
                self.skips.skipped(subject, status, _message(body))
            return Answer(status, body)

    def _give_up_after(self, failures: int, max_failures: int, path: str, what: str, unreachable: bool = False) -> None:
        if failures > max_failures:
            raise CircleCIUnavailable(
                f"CircleCI at {self.api_url} answered {path} with {what} {failures} times in a row; giving up. Try again "
                "later (https://status.circleci.com says whether CircleCI is having trouble).",
                what,
                unreachable,
            )
        time.sleep(min(0.5 * 2 ** (failures - 1), 60.0))

    def _tls_failed(self, error: Exception) -> str:
        return (
            f"The TLS certificate of {self.origin} could not be verified ({_tls_reason(error)}). If this is a CircleCI "
            "server whose certificate a private certificate authority signed, put that authority's certificate (PEM) "
            "in ca_certificate; otherwise check api_url and the network path (a proxy replacing certificates?)."
        )

    def _redirect_refused(self, response: requests.Response) -> str:
        target = requests.compat.urljoin(response.url, response.headers.get("Location", ""))
        target_origin = origin_of(target) if target else "an unnamed location"
        where = "another origin" if target_origin != self.origin else "the same origin"
        return (
            f"CircleCI at {self.origin} answered {urlsplit(response.url).path} with a redirect ({response.status_code}) to "
            f"{where}, {target_origin}. The connector follows no redirect, so the API token is never sent anywhere but "
            f"{self.origin}. Set api_url to the address that answers the API itself (for CircleCI server: "
            "https://<your-host>/api)."
        )

    # --- lists --------------------------------------------------------------------------------------------
    def items(self, path: str, params: Optional[Mapping[str, str]] = None, *, subject: Optional[Subject], stop_below: Optional[float] = None) -> Listing:
        """Every item of a paginated list, fetched page by page as the listing is iterated."""
        return Listing(self, path, params or {}, subject or Subject("list", path), stop_below)

    def listing_name(self, path: str, params: Mapping[str, str]) -> str:
        """How warnings name a list (`/api/v2/pipeline?org-slug=gh/acme`): two feeds share one path."""
        name = urlsplit(f"{self.api_url}{path}").path
        rest = urlencode(sorted(params.items()), safe="/")
        return f"{name}?{rest}" if rest else name

    def close(self) -> None:
        self.session.close()


def _tls_reason(error: Exception) -> str:
    text = str(error)
    for reason in ("certificate verify failed", "self-signed certificate", "unable to get local issuer certificate", "hostname mismatch", "certificate has expired"):
        if reason in text:
            return reason
    return "TLS handshake failed"


def _query(params: Mapping[str, str]) -> str:
    return urlencode(sorted(params.items()))


def _json_or_none(response: requests.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _message(body: Any) -> str:
    message = body.get("message") if isinstance(body, Mapping) else None
    return str(message) if message else ""
