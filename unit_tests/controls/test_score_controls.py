"""The scoring script's confidence figure: what a recall measured on a few positives can be trusted to mean."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scorer():
    spec = importlib.util.spec_from_file_location("score_controls", REPO / "scripts/score_controls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("successes, trials, expected", [
    (3, 5, 0.231),     # three of five positives found: as low as 23 % on more files like these
    (10, 10, 0.722),   # a perfect score on ten positives still only promises 72 %
    (95, 100, 0.888),
])
def test_wilson_lower_bound_matches_the_textbook_interval(scorer, successes, trials, expected):
    assert scorer.wilson_lower(successes, trials) == pytest.approx(expected, abs=0.001)


def test_wilson_lower_bound_of_no_trials_is_vacuously_one(scorer):
    assert scorer.wilson_lower(0, 0) == 1.0
