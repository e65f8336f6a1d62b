"""The report in a real browser: Debian's Chromium driven by Playwright for Python (the `browser` extra).

Used by the browser test and by scripts/report_screenshots.py (the README's pictures), so both see the page the
same way. Playwright's own browser downloads are never used: `apt-get install chromium` provides the browser.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextmanager
def browser_page(viewport: dict[str, int] = DESKTOP) -> Iterator[tuple[Any, list[str]]]:
    """A headless Chromium page, and the list of every URL it requests that is not the report file itself."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport=viewport)
            outside: list[str] = []
            page.on("request", lambda request: None if request.url.startswith("file:") else outside.append(request.url))
            yield page, outside
        finally:
            browser.close()


def open_richest_project(page: Any) -> str:
    """Opens, by clicking it in the matrix, the project with the most passing controls; returns its slug."""
    slug = page.evaluate(
        """() => [...document.querySelectorAll('.matrix tbody tr')]
              .map(row => [row.dataset.project, row.querySelectorAll('td.s-pass').length])
              .sort((a, b) => b[1] - a[1])[0][0]"""
    )
    page.click(f'.matrix tr[data-project="{slug}"] th a')
    return slug


def save(report: Path, out_dir: Path) -> list[Path]:
    """Summary, project detail (desktop) and the matrix on a phone, as PNGs in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = [out_dir / "report-summary.png", out_dir / "report-project.png", out_dir / "report-phone.png"]
    with browser_page() as (page, _):
        page.goto(report.resolve().as_uri())
        page.screenshot(path=str(shots[0]))
        open_richest_project(page)
        page.screenshot(path=str(shots[1]))
    with browser_page(PHONE) as (page, _):
        page.goto(report.resolve().as_uri() + "#matrix")
        page.screenshot(path=str(shots[2]))
    return shots
