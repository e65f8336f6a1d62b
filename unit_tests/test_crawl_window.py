"""The crawl holds a bounded window of pipelines' answers: it waits for the slowest stream instead of growing."""

from __future__ import annotations

import time


from source_circleci_ccm.components.client import CircleCIClient
from source_circleci_ccm.components.crawl import END, WORKFLOWS, ActivityCrawl, Consumer, Delivered
from source_circleci_ccm.components.http import CircleCISession
from source_circleci_ccm.components.progress import StreamProgress
from source_circleci_ccm.config import normalize_config
from unit_tests.builders import API, TOKEN, CircleCI, config, organization, pipeline, workflow

WINDOW = 8


def _crawl(consumer: Consumer) -> ActivityCrawl:
    client = CircleCIClient(API, TOKEN, CircleCISession(4, 10))
    return ActivityCrawl(client, normalize_config(config()), [consumer], discover_projects=False, workers=4, window=WINDOW)


def _workflow_lists_asked(circleci: CircleCI) -> int:
    return len([url for url in circleci.requests_to("/workflow") if "/v2/pipeline/" in url])


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _feed_of(circleci: CircleCI, count: int) -> list[dict]:
    """An organisation whose feed lists `count` pipelines, each with one workflow."""
    circleci.collaborations(organization("gh/acme"))
    pipelines = [pipeline(minutes_ago=i) for i in range(count)]
    circleci.pages("/v2/pipeline", pipelines, {"org-slug": "gh/acme"})
    for p in pipelines:
        circleci.pages(f"/v2/pipeline/{p['id']}/workflow", [workflow(p)])
    return pipelines


def _workflows_consumer() -> Consumer:
    return Consumer("workflows", StreamProgress(None, start=None, lookback_seconds=86400), frozenset({WORKFLOWS}), True)


def test_the_crawl_fetches_no_more_than_its_window_until_a_stream_reads_what_it_holds(circleci: CircleCI) -> None:
    pipelines = _feed_of(circleci, 5 * WINDOW)
    consumer = _workflows_consumer()
    crawl = _crawl(consumer)

    crawl.start()
    _wait_for(lambda: _workflow_lists_asked(circleci) >= WINDOW)
    time.sleep(0.3)  # room for any fetch beyond the window to show (there must be none)
    assert _workflow_lists_asked(circleci) == WINDOW
    assert crawl.peak_held == WINDOW

    delivered = 0
    while (item := consumer.inbox.get(timeout=10)) is not END:
        assert isinstance(item, Delivered)
        item.work.release_slot()  # the stream has read it: the crawl may fetch one more
        delivered += 1
    assert delivered == len(pipelines)
    assert _workflow_lists_asked(circleci) == len(pipelines)
    assert crawl.peak_held == WINDOW
    crawl.close()


def test_a_stream_that_stops_reading_lets_go_of_what_it_held(circleci: CircleCI) -> None:
    _feed_of(circleci, 3 * WINDOW)
    consumer = _workflows_consumer()
    crawl = _crawl(consumer)

    crawl.start()
    _wait_for(lambda: _workflow_lists_asked(circleci) >= WINDOW)
    crawl.detach(consumer)  # e.g. the stream failed: the crawl must not wait for it forever

    _wait_for(lambda: crawl.finished)
    assert crawl.peak_held <= WINDOW
    crawl.close()
