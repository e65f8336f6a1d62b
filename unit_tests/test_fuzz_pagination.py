"""Property-based tests of response parsing and the pagination loop: whatever CircleCI (or a proxy in front
of it) answers, nothing raises, nothing loops, and only dict items are taken as records."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from source_circleci_ccm.components.client import CircleCIClient, next_page_token, page_items

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
tokens = st.text(min_size=1, max_size=12)
items_lists = st.lists(json_values | st.dictionaries(st.sampled_from(["id", "created_at", "x"]), json_values), max_size=6)
# Bodies shaped like CircleCI's, with every part possibly wrong.
page_bodies = st.fixed_dictionaries(
    {},
    optional={
        "items": items_lists,
        "next_page_token": st.none() | tokens | json_values,
        "message": st.text(max_size=20),
    },
)
bodies = page_bodies | json_values
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _response(body: Any, status: int = 200, url: str = "https://circleci.example.com/api/v2/pipeline") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.url = url
    response.headers["Content-Type"] = "application/json"
    return response


# --- client.next_page_token ------------------------------------------------------------------------------------


@FAST
@given(body=bodies, seen=st.sets(tokens, max_size=3))
def test_next_page_token_is_a_fresh_non_empty_string_or_none(body: Any, seen: set[str]) -> None:
    token = next_page_token(body, seen)
    if token is not None:
        assert isinstance(token, str) and token and token not in seen
        assert token == body["next_page_token"]


@FAST
@given(body=page_bodies, token=tokens)
def test_a_token_already_followed_is_never_followed_again(body: dict, token: str) -> None:
    body = {**body, "next_page_token": token}  # drawn directly: filtering for a string token rejected too many
    assert next_page_token(body, {token}) is None


@FAST
@given(
    items=st.lists(
        st.fixed_dictionaries({"created_at": st.datetimes().map(lambda d: d.isoformat() + "Z")}), min_size=1, max_size=4
    ),
    token=tokens,
    stop_below=st.floats(min_value=-1e10, max_value=1e10),
)
def test_stop_below_never_raises_on_well_formed_dates(items: list, token: str, stop_below: float) -> None:
    result = next_page_token({"items": items, "next_page_token": token}, set(), stop_below)
    assert result in (None, token)


@pytest.mark.parametrize("created_at", ["garbage", 12345])
def test_stop_below_with_a_malformed_date_does_not_raise(created_at: Any) -> None:
    next_page_token({"items": [{"created_at": created_at}], "next_page_token": "t"}, set(), 0.0)


# --- crawl.page_items ---------------------------------------------------------------------------------------------


@FAST
@given(body=page_bodies | st.lists(json_values, max_size=4) | json_scalars)
def test_page_items_yields_exactly_the_dict_items_in_order(body: Any) -> None:
    items = body.get("items") if isinstance(body, dict) else None
    assume(items is None or isinstance(items, list))
    got = list(page_items(body))
    assert got == [item for item in (items or []) if isinstance(item, dict)]


@pytest.mark.parametrize("items", [5, True, 1.5])
def test_page_items_with_a_non_list_items_does_not_raise(items: Any) -> None:
    assert list(page_items({"items": items})) == []


# --- CircleCIClient.items: the pagination loop, over a fake session ------------------------------------------------


class FakeSession:
    """Answers `page-token` -> body from a table; an unknown token answers 404 like a stale one."""

    server_time = None

    def __init__(self, pages: Mapping[Optional[str], Any]) -> None:
        self.pages = pages
        self.calls: list[Optional[str]] = []

    def fetch(self, url: str, headers: Mapping[str, str]) -> requests.Response:
        token = parse_qs(urlsplit(url).query).get("page-token", [None])[0]
        self.calls.append(token)
        if token not in self.pages:
            return _response({"message": "Not found"}, status=404, url=url)
        return _response(self.pages[token], url=url)


def _client(session: FakeSession) -> CircleCIClient:
    return CircleCIClient("https://circleci.example.com/api", "token", session)  # type: ignore[arg-type]


# A graph of pages: each token leads to a page whose next_page_token may point anywhere, itself included.
@st.composite
def page_graphs(draw: Any) -> dict[Optional[str], Any]:
    names = draw(st.lists(tokens, min_size=0, max_size=6, unique=True))
    keys: list[Optional[str]] = [None, *names]
    graph: dict[Optional[str], Any] = {}
    for key in keys:
        body = draw(page_bodies)
        if isinstance(body, dict) and draw(st.booleans()) and "next_page_token" in body:
            body["next_page_token"] = draw(st.sampled_from(keys[1:] + ["stale-token", None]) if keys[1:] else st.none())
        graph[key] = body
    return graph


@FAST
@given(graph=page_graphs())
@example(graph={None: {"items": [{"id": 1}], "next_page_token": "a"}, "a": {"items": [{"id": 2}], "next_page_token": "a"}})
@example(graph={None: {"items": [{"id": 1}], "next_page_token": "a"}, "a": {"items": [], "next_page_token": "b"}, "b": {"next_page_token": "a"}})
@example(graph={None: {"next_page_token": "gone"}})
@example(graph={None: ["not", "an", "object"]})
def test_the_pagination_loop_ends_and_requests_each_page_at_most_once(graph: dict) -> None:
    session = FakeSession(graph)

    got = []
    for item in _client(session).items("/v2/pipeline", {"org-slug": "gh/acme"}, subject=None):
        got.append(item)
        assert len(got) < 1000, "runaway pagination"

    assert len(session.calls) == len(set(session.calls)), f"a page was asked twice: {session.calls}"
    assert len(session.calls) <= len(graph) + 1
    expected = [item for token in session.calls if token in graph for item in page_items(graph[token])]
    assert got == expected
    assert all(isinstance(item, dict) for item in got)


def test_a_server_that_always_answers_the_same_token_is_asked_twice_then_left(caplog: pytest.LogCaptureFixture) -> None:
    session = FakeSession({None: {"items": [{"id": 1}], "next_page_token": "same"}, "same": {"items": [{"id": 2}], "next_page_token": "same"}})
    assert [item["id"] for item in _client(session).items("/v2/context", subject=None)] == [1, 2]
    assert session.calls == [None, "same"]
    assert "same page token twice" in caplog.text


def test_a_rejected_page_token_keeps_what_was_read_and_marks_the_list_incomplete(caplog: pytest.LogCaptureFixture) -> None:
    session = FakeSession({None: {"items": [{"id": 1}], "next_page_token": "stale"}})
    listing = _client(session).items("/v2/pipeline", {"org-slug": "gh/acme"}, subject=None)
    assert [item["id"] for item in listing] == [1]
    assert listing.complete is False
    assert "remaining pages of /api/v2/pipeline?org-slug=gh/acme" in caplog.text


def test_a_newest_first_list_stops_once_a_page_reaches_below_the_floor() -> None:
    pages = {
        None: {"items": [{"created_at": "2026-01-02T00:00:00Z"}, {"created_at": "2025-12-01T00:00:00Z"}], "next_page_token": "t"},
        "t": {"items": [{"created_at": "2025-11-01T00:00:00Z"}], "next_page_token": None},
    }
    below, above = FakeSession(pages), FakeSession(pages)
    assert len(list(_client(below).items("/v2/pipeline", subject=None, stop_below=1767225600.0))) == 2  # 2026-01-01
    assert below.calls == [None]
    assert len(list(_client(above).items("/v2/pipeline", subject=None, stop_below=1700000000.0))) == 3
