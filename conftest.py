"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from typing import Iterator

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
