"""`circleci-ccm-report`: read the DuckDB file a sync wrote, write one self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Optional

from . import model, render
from .queries import Warehouse

DEFAULT_DUCKDB = Path(".cache/circleci_ccm.duckdb")
DEFAULT_OUT = Path(".cache/circleci_ccm_report.html")


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="circleci-ccm-report", description=__doc__)
    parser.add_argument("--duckdb", type=Path, default=DEFAULT_DUCKDB, help=f"DuckDB file a sync wrote (default {DEFAULT_DUCKDB})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"HTML file to write (default {DEFAULT_OUT})")
    parser.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="only pipelines created on or after this date count for trend, history, exceptions and period")
    return parser.parse_args(argv)


def write_report(duckdb_path: Path, out: Path, since: Optional[date] = None) -> Path:
    warehouse = Warehouse(str(duckdb_path), since)
    try:
        page = render.render(model.load(warehouse), str(duckdb_path))
    finally:
        warehouse.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if not args.duckdb.is_file():
        print(f"No DuckDB file at {args.duckdb}: run `make sync` first, or pass --duckdb PATH.", file=sys.stderr)
        return 2
    started = time.monotonic()
    out = write_report(args.duckdb, args.out, args.since)
    print(f"Evidence report: {out.resolve()} ({out.stat().st_size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
