"""Fixtures of the unit tests: the requests-mock CircleCI that unit_tests/builders.py fills."""

from __future__ import annotations

from typing import Iterator

import pytest
import requests_mock

from unit_tests.builders import CircleCI


@pytest.fixture
def circleci() -> Iterator[CircleCI]:
    """A CircleCI answered by requests-mock (case-sensitive: page tokens are)."""
    with requests_mock.Mocker(case_sensitive=True) as mocker:
        yield CircleCI(mocker)
