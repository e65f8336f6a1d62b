"""Tests that need ../shared skip with a clear message outside CI and fail on CI (conftest.require_shared_file)."""
from pathlib import Path

import pytest


def test_missing_shared_file_skips_outside_ci(require_shared, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="OpenAPI spec not found at .*nope.json"):
        require_shared(tmp_path / "nope.json", "OpenAPI spec")


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_missing_shared_file_fails_on_ci(require_shared, monkeypatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true, so this is a failure"):
        require_shared(tmp_path / "nope.json", "OpenAPI spec")


def test_present_shared_file_passes(require_shared, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    (tmp_path / "here.json").write_text("{}")
    require_shared(tmp_path / "here.json", "OpenAPI spec")
