"""`make sync`: sync every stream of source-circleci-ccm into a local DuckDB file with PyAirbyte.

Without CIRCLECI_TOKEN it starts the bundled CircleCI simulator on a free loopback port (and stops it
at the end, also on Ctrl-C). With CIRCLECI_TOKEN it syncs that account:

    CIRCLECI_TOKEN        personal API token (CircleCI -> User Settings -> Personal API Tokens)
    CIRCLECI_API_URL      optional, default https://circleci.com/api (CircleCI server: https://<host>/api)
    CIRCLECI_ORG_SLUGS    optional, comma-separated, e.g. gh/acme,circleci/<org-id>; default: every organisation
    CCM_DUCKDB_PATH       optional, where the DuckDB file goes (default .cache/circleci_ccm.duckdb)
    CCM_DEMO_NEW_ACTIVITY simulator only: =1 adds new pipelines to the simulator before a repeat sync

The first run reads everything; later runs against the same DuckDB file are incremental (PyAirbyte keeps
the connector's state in the file) and report how many records each stream added. It ends by writing the
evidence report (circleci-ccm-report) next to the DuckDB file and printing its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Optional

# PyAirbyte must not reach out to its connector registry or telemetry: everything runs locally.
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the simulator is test and demo infrastructure, not part of the installed package

from circleci_simulator.process import SimulatorProcess  # noqa: E402
DEFAULT_DB = REPO / ".cache" / "circleci_ccm.duckdb"
REPORT_NAME = "circleci_ccm_report.html"  # written beside the DuckDB file
SIMULATOR_CLOCK = REPO / ".cache" / "simulator.json"
EXAMPLE_QUERY = "SELECT status, COUNT(*) AS jobs FROM {schema}.jobs GROUP BY status ORDER BY jobs DESC, status"
PLAIN_PROGRESS_EVERY_SECONDS = 5.0


def say(message: str = "") -> None:
    print(message, flush=True)


# --- the bundled simulator ------------------------------------------------------------------------------
def start_simulator(size: str = "tiny", seed: int = 7) -> SimulatorProcess:
    """The simulator on a free loopback port. It dates its history back from an anchor time; the first run
    records it in .cache/simulator.json and later runs reuse it, so a repeat sync sees the same history and
    reads nothing but what is new."""
    try:
        saved = json.loads(SIMULATOR_CLOCK.read_text())
        anchor = float(saved["anchor"]) if (saved.get("size"), saved.get("seed")) == (size, seed) else None
    except (OSError, ValueError, KeyError, TypeError):
        anchor = None
    if anchor is None:
        anchor = time.time()
        SIMULATOR_CLOCK.parent.mkdir(parents=True, exist_ok=True)
        SIMULATOR_CLOCK.write_text(json.dumps({"size": size, "seed": seed, "anchor": anchor}))
    return SimulatorProcess("--size", size, "--seed", str(seed), "--anchor", repr(anchor), own_session=True, start_timeout=30)


# --- progress where PyAirbyte shows none ----------------------------------------------------------------
class Progress:
    """Keeps the per-stream record counts of the read, and prints them when PyAirbyte has no live view.

    In a terminal PyAirbyte draws a live table (which stream, records so far). Piped into a file or a CI
    log it prints nothing while it reads, so this prints one line every few seconds instead.
    """

    def __init__(self) -> None:
        self.tracker: Any = None
        self._last_print = 0.0
        self._last_streams: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        self._last_line = ""
        self._lock = threading.Lock()

    def install(self) -> None:
        from airbyte import progress as ab_progress

        tracker_class = ab_progress.ProgressTracker
        original_init = tracker_class.__init__
        original_update = tracker_class._update_display
        me = self

        def init(tracker: Any, *args: Any, **kwargs: Any) -> None:
            original_init(tracker, *args, **kwargs)
            me.tracker = tracker

        def update(tracker: Any, *args: Any, **kwargs: Any) -> None:
            original_update(tracker, *args, **kwargs)
            if tracker is me.tracker and getattr(tracker, "style", None) in (
                ab_progress.ProgressStyle.PLAIN,
                ab_progress.ProgressStyle.NONE,
            ):
                me._maybe_print(tracker, force=bool(kwargs.get("force_refresh")))

        tracker_class.__init__ = init  # type: ignore[method-assign]
        tracker_class._update_display = update  # type: ignore[method-assign]

    def counts(self) -> dict[str, int]:
        return dict(getattr(self.tracker, "stream_read_counts", {}) or {})

    def _maybe_print(self, tracker: Any, force: bool) -> None:
        now = time.monotonic()
        counts = dict(tracker.stream_read_counts)
        finished = set(getattr(tracker, "stream_read_end_times", {}) or {})
        parts = [f"{name} {count:,}{' (done)' if name in finished else ''}" for name, count in counts.items()]
        line = f"  … {sum(counts.values()):,} records so far: " + (", ".join(parts) if parts else "waiting for the first record")
        with self._lock:
            # A new line when a stream starts or finishes, else at most every few seconds; never the same line twice
            # in a row (PyAirbyte keeps refreshing while it writes the records into DuckDB).
            changed_streams = (tuple(counts), tuple(sorted(finished))) != self._last_streams
            due = now - self._last_print >= PLAIN_PROGRESS_EVERY_SECONDS
            if line == self._last_line or not (changed_streams or due or force):
                return
            self._last_print, self._last_streams, self._last_line = now, (tuple(counts), tuple(sorted(finished))), line
        say(line)


# --- the sync --------------------------------------------------------------------------------------------
def connector_config(simulator: Optional[SimulatorProcess]) -> dict[str, Any]:
    if simulator:
        return {"api_token": simulator.token, "api_url": simulator.url}
    config: dict[str, Any] = {"api_token": os.environ["CIRCLECI_TOKEN"].strip()}
    if os.environ.get("CIRCLECI_API_URL", "").strip():
        config["api_url"] = os.environ["CIRCLECI_API_URL"].strip()
    slugs = [s.strip() for s in os.environ.get("CIRCLECI_ORG_SLUGS", "").split(",") if s.strip()]
    if slugs:
        config["org_slugs"] = slugs
    return config


def row_counts(cache: Any, streams: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in streams:
        try:
            counts[name] = len(cache[name])
        except Exception:  # noqa: BLE001 - no table yet: the stream has never been synced into this file
            counts[name] = 0
    return counts


def example_query(cache: Any) -> tuple[str, list[tuple[Any, ...]]]:
    from sqlalchemy import text

    query = EXAMPLE_QUERY.format(schema=cache.schema_name)
    with cache.get_sql_engine().connect() as connection:
        rows = [tuple(row) for row in connection.execute(text(query))]
    return query, rows


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[f"{c:,}" if isinstance(c, int) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    say(line(headers))
    say(line(["-" * w for w in widths]))
    for row in cells:
        say(line(row))


def write_report(db_path: Path) -> None:
    """The evidence report, by the installed console script, as a user would run it (the caller has released
    PyAirbyte's read-write connection: DuckDB allows no other connection to the file beside it)."""
    command = Path(sys.executable).with_name("circleci-ccm-report")
    out = db_path.with_name(REPORT_NAME)
    sys.stdout.flush()
    status = subprocess.run([str(command), "--duckdb", str(db_path), "--out", str(out)]).returncode
    if status != 0:
        raise SystemExit(f"circleci-ccm-report failed (exit {status}); the DuckDB file is complete, rerun it with --duckdb {db_path}.")
    say("Open it in any browser: it works offline and prints one project per page.")


def main() -> int:
    executable = Path(sys.executable).with_name("source-circleci-ccm")
    if not executable.exists():
        raise SystemExit(f"{executable} is missing: install the connector into this environment first (make sync does).")
    if not sys.stderr.isatty():
        # PyAirbyte's live view draws only in a terminal; elsewhere Progress prints plain lines instead.
        os.environ.setdefault("NO_LIVE_PROGRESS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)  # Python-version notices of Google client libraries
    try:
        import airbyte as ab
    except ImportError:
        raise SystemExit("PyAirbyte is not installed here: run `make sync`, or `pip install -e '.[warehouse]'`.") from None

    db_path = Path(os.environ.get("CCM_DUCKDB_PATH") or DEFAULT_DB).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    first_run = not db_path.exists()

    simulator: Optional[SimulatorProcess] = None
    progress = Progress()
    progress.install()
    started = time.monotonic()
    try:
        if os.environ.get("CIRCLECI_TOKEN", "").strip():
            say("Syncing your CircleCI account (CIRCLECI_TOKEN is set) "
                f"at {os.environ.get('CIRCLECI_API_URL') or 'https://circleci.com/api'}.")
        else:
            simulator = start_simulator()
            say("No CIRCLECI_TOKEN set: syncing the bundled CircleCI SIMULATOR (generated demo data, not a real account)")
            say(f"  simulator at {simulator.url}; it stops when this sync ends. "
                "Set CIRCLECI_TOKEN to sync your own account instead.")
            if not first_run and os.environ.get("CCM_DEMO_NEW_ACTIVITY") == "1":
                added = len(simulator.admin("POST", "activity", {"pipelines": 5}).get("pipeline_ids", []))
                say(f"  CCM_DEMO_NEW_ACTIVITY=1: the simulator received {added} new pipelines since the last sync.")

        source = ab.get_source(
            "source-circleci-ccm",
            config=connector_config(simulator),
            local_executable=executable,
            install_if_missing=False,
        )
        source.select_all_streams()
        streams = source.get_selected_streams()
        cache = ab.DuckDBCache(db_path=db_path)
        before = row_counts(cache, streams)

        say(f"DuckDB file: {db_path}")
        say(("First sync: reading everything" if first_run else "Repeat sync: incremental, reading only what changed")
            + f" from {len(streams)} streams: {', '.join(streams)}")
        source.read(cache=cache)

        after = row_counts(cache, streams)
        read_counts = progress.counts()
        say()
        say(f"Done in {time.monotonic() - started:,.1f} s. Records per stream in {db_path}:")
        rows = [[name, after[name], read_counts.get(name, 0), after[name] - before[name]] for name in streams]
        rows.append(["total", sum(after.values()), sum(read_counts.values()), sum(after.values()) - sum(before.values())])
        print_table(["stream", "rows in DuckDB", "read this sync", "added this sync"], rows)
        if not first_run:
            say("  (full-refresh streams — me, collaborations, contexts and the like — are re-read and replaced each sync;"
                " activity streams read only new or newly finished work)")

        query, result = example_query(cache)
        say()
        say("Example query (jobs per status):")
        say(f"  {query}")
        print_table(["status", "jobs"], [list(row) for row in result])
        say()
        say("Open the file yourself: python -c \"import duckdb; print(duckdb.connect('"
            f"{db_path}').sql('SHOW TABLES'))\"")
        say("Run this command again for an incremental sync.")
        say()
        cache.get_sql_engine().dispose()  # releases the file's lock for the report's read-only connection
        write_report(db_path)
        return 0
    except KeyboardInterrupt:
        say("\nInterrupted: the sync stopped; the DuckDB file keeps what was committed and the next run resumes.")
        return 130
    finally:
        if simulator:
            simulator.stop()
            say("Simulator stopped.")


if __name__ == "__main__":
    sys.exit(main())
