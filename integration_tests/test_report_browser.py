"""The evidence report of a real `make sync` (scripts/sync_to_duckdb.py, PyAirbyte, the simulator), in Chromium.

Needs Debian's Chromium, Playwright for Python and PyAirbyte (`make browser`). Where one is missing the test is
skipped with how to install it; with CI=true it fails instead, since CI installs all three (.ci/run).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest

from circleci_ccm_report.screenshots import CHROMIUM, browser_page, open_richest_project

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / ".cache" / "test-artifacts" / "report"
INSTALL = "apt-get install chromium (as root) and `make browser` (PyAirbyte and Playwright into .venv)"


def missing_requirements() -> list[str]:
    missing = [] if CHROMIUM.exists() else [f"Chromium at {CHROMIUM}"]
    missing += [name for name in ("playwright", "airbyte") if importlib.util.find_spec(name) is None]
    return missing


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    missing = missing_requirements()
    if missing:
        message = f"the report's browser test needs {', '.join(missing)}: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    db = tmp_path_factory.mktemp("sync") / "circleci_ccm.duckdb"
    env = {key: value for key, value in os.environ.items() if key != "CIRCLECI_TOKEN"}
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "sync_to_duckdb.py")], env={**env, "CCM_DUCKDB_PATH": str(db)},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    printed = re.search(r"^Evidence report: (\S+)", run.stdout, re.MULTILINE)
    assert printed, run.stdout[-2000:]
    yield db, Path(printed[1])


def rollups(db: Path) -> dict[str, dict[str, str]]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        rows = connection.execute("SELECT project_slug, control_id, status FROM security_controls WHERE scope = 'project'").fetchall()
    finally:
        connection.close()
    result: dict[str, dict[str, str]] = {}
    for project, control, status in rows:
        result.setdefault(project, {})[control] = status
    return result


def matrix(page: Any) -> tuple[list[str], dict[str, list[str]]]:
    controls = page.eval_on_selector_all(".matrix thead .control-col", "cells => cells.map(c => c.textContent)")
    rows = page.eval_on_selector_all(
        ".matrix tbody tr", "rows => rows.map(r => [r.dataset.project, [...r.querySelectorAll('td')].map(td => td.className)])")
    return controls, dict(rows)


def test_the_synced_report_shows_the_rollups_and_a_projects_evidence_offline(synced: tuple[Path, Path]) -> None:
    db, report = synced
    expected = rollups(db)
    with browser_page() as (page, outside):
        page.goto(report.as_uri())
        controls, rows = matrix(page)
        assert sorted(controls) == sorted({c for statuses in expected.values() for c in statuses})
        assert {project: [cell.removeprefix("s-") for cell in cells] for project, cells in rows.items()} == {
            project: [statuses.get(control, "none") for control in controls] for project, statuses in expected.items()
        }
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "summary.png"))

        slug = open_richest_project(page)
        detail = page.locator(".project:target")
        assert detail.locator(".slug").inner_text() == slug
        assert detail.locator("ul.ev li").count() > 0  # config path, job, step and rule of the passing controls
        assert "Latest evaluated pipeline" in detail.inner_text()
        assert page.evaluate("document.activeElement.tagName") == "H3"  # keyboard focus follows the click
        page.screenshot(path=str(ARTIFACTS / "project.png"))
        page.keyboard.press("Escape")
        assert page.evaluate("document.activeElement.closest('tr').dataset.project") == slug
        assert detail.count() == 0  # closed
        assert outside == []
