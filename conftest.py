"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from circleci_simulator import Simulator, SimulatorSettings


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A small simulated CircleCI (two organisations, several pages a feed) on a free loopback port."""
    with Simulator(SimulatorSettings.preset("tiny")) as sim:
        yield sim


@pytest.fixture
def sim_config(simulator: Simulator) -> dict:
    return {"api_token": simulator.token, "api_url": simulator.base_url}


def require_shared_file(path: Path, what: str) -> None:
    """Tests that read ../shared (the OpenAPI spec, the labelled config corpus) call this first.

    Outside CI a missing file skips the test with a message saying what is missing and where it was looked
    for. On CI (environment CI=true, as CI services set it) it FAILS the test: there ../shared must be present,
    and a silent skip would hide that the check did not run.
    """
    if path.exists():
        return
    message = f"{what} not found at {path} (../shared is not beside this checkout)"
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{message}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def require_shared() -> Callable[[Path, str], None]:
    """The fixture form of require_shared_file (no import of conftest needed)."""
    return require_shared_file
