"""The README's pictures of the evidence report: summary, a project's detail and the matrix on a phone.

    make sync && .venv/bin/python scripts/report_screenshots.py   # needs `make browser` and apt-get install chromium

Reads the report make sync wrote (.cache/circleci_ccm_report.html) and writes docs/report-*.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from circleci_ccm_report.screenshots import save

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / ".cache" / "circleci_ccm_report.html"


def main() -> int:
    if not REPORT.is_file():
        raise SystemExit(f"No report at {REPORT}: run `make sync` first.")
    for shot in save(REPORT, REPO / "docs"):
        print(shot.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
