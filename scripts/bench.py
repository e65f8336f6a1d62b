"""Benchmark of issue 6: how fast a sync of a large CircleCI organisation runs against the simulator.

    make bench                                  # or: .venv/bin/python scripts/bench.py [flags]

Starts the simulator in a subprocess (bench-size organisations, a fixed latency per request) and runs the
real console script, one process per sync:

  full         a full sync of the six core streams
  repeat       the same with the full sync's state and no new activity
  +1% activity the same after ~1% new pipelines (and every running workflow finished)
  meltano      `meltano-tap-circle-ci` (installed into its own venv under .cache/) and the connector over
               the same organisations, side by side
  rate-limited a full sync with the simulator enforcing `--rate-limit` requests/s (429 + Retry-After)

It prints a table, the ideal time and the issue's targets with PASS/FAIL. It asserts nothing: the exit code
is 0 whatever the figures (non-zero only when a run could not be made at all).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from integration_tests.harness import CORE_STREAMS, catalog, connector_command  # noqa: E402
from circleci_simulator.process import SimulatorProcess  # noqa: E402
from integration_tests.test_performance import (  # noqa: E402  (the request counts the data implies)
    implied_full_sync_requests,
    incremental_sync_bound,
)

MELTANO_PACKAGE = "meltano-tap-circle-ci==0.6.6"
MELTANO_STREAMS = ("pipelines", "workflows", "jobs", "contexts")  # what the tap reads
# Truth keys of the simulator for each stream the bench checks for completeness.
TRUTH_KEYS = {s: s for s in CORE_STREAMS}

# Targets of issue 6.
MAX_DUPLICATES = 0
FULL_OVER_IDEAL = 1.5
MELTANO_RATIO = 10.0
REPEAT_SHARE = 0.02
ACTIVITY_SHARE = 0.04
MAX_RSS_MB = 300.0
MAX_STATE_BYTES = 16 * 1024
MIN_RATE_SHARE = 18.0 / 20.0  # 18 req/s at 20 req/s


# --------------------------------------------------------------------------- the simulator in a subprocess
def simulator(size: str, latency_ms: float, rate_limit: float = 0.0, overrides: Optional[dict] = None) -> SimulatorProcess:
    """The simulator for one part of the bench; `description` says how it was set up."""
    args = ["--size", size, "--latency-ms", str(latency_ms), "--rate-limit", str(rate_limit)]
    args += [f"--set={name}={json.dumps(value)}" for name, value in (overrides or {}).items()]
    sim = SimulatorProcess(*args)
    sim.description = f"{size}, {latency_ms:g} ms a request" + (f", {rate_limit:g} req/s limit" if rate_limit else "")
    sim.description += "".join(f", {name}={value}" for name, value in (overrides or {}).items())
    return sim


# --------------------------------------------------------------------------- one run of a process
@dataclass
class Run:
    name: str
    seconds: float = 0.0
    returncode: int = 0
    records: dict[str, int] = field(default_factory=dict)
    ids: dict[str, set] = field(default_factory=dict)
    state: list[dict[str, Any]] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0  # user + system CPU of the connector process (GNU time)
    requests: int = 0
    distinct_urls: int = 0
    duplicates: int = 0  # answers of a URL beyond its first, retries of 429/5xx aside
    retries: int = 0  # 429/5xx/reset answers
    by_status: dict[str, int] = field(default_factory=dict)
    complete: Optional[bool] = None
    implied: Optional[int] = None  # requests the data implies (full) or allows at most (incremental)
    note: str = ""
    stderr_tail: str = ""

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    @property
    def state_bytes(self) -> int:
        return len(json.dumps(self.state, separators=(",", ":"))) if self.state else 0

    @property
    def answered(self) -> int:
        return self.requests - self.retries


def run_process(name: str, args: list[str], cwd: str, keep_ids: bool = False) -> Run:
    """Run `args`, stream its stdout (Airbyte/Singer JSON lines), measure wall time and the process's peak RSS.

    Peak RSS is the process's own: `/usr/bin/time -f %M` (GNU time, a tiny parent) when present, else the
    highest `VmHWM` read from /proc while it runs. (`wait4`'s ru_maxrss from this script would be wrong: Linux
    carries the forking parent's RSS into the child's high-water mark across exec.)"""
    import orjson

    run = Run(name)
    states: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryFile() as stderr, tempfile.NamedTemporaryFile("r") as rss_file:
        gnu_time = Path("/usr/bin/time")
        if gnu_time.exists():
            args = [str(gnu_time), "-f", "%M %U %S", "-o", rss_file.name] + args
        started = time.monotonic()
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, bufsize=1 << 20)
        high_water = [0]
        poller = None
        if not gnu_time.exists():
            poller = threading.Thread(target=_poll_high_water, args=(proc, high_water), daemon=True)
            poller.start()
        for line in proc.stdout:
            if not line.startswith(b"{"):
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:  # e.g. a profiler's output interleaved: counted, never fatal
                run.note = f"{int(run.note.split()[0]) + 1 if run.note else 1} unparsable output lines"
                continue
            kind = message.get("type")
            if kind == "RECORD":
                if "stream" in message:  # Singer: {"type", "stream", "record"}
                    stream, data = message["stream"], message.get("record") or {}
                else:  # Airbyte: {"type", "record": {"stream", "data"}}
                    stream, data = message["record"]["stream"], message["record"].get("data") or {}
                run.records[stream] = run.records.get(stream, 0) + 1
                if keep_ids:
                    run.ids.setdefault(stream, set()).add(data.get("id"))
            elif kind == "STATE" and "state" in message and "stream" in message["state"]:
                states[message["state"]["stream"]["stream_descriptor"]["name"]] = message["state"]
        run.returncode = proc.wait()
        run.seconds = time.monotonic() - started
        if poller is not None:
            poller.join(timeout=1)
            run.peak_rss_mb = high_water[0] / 1024.0
        else:
            figures = rss_file.read().split()[-3:]
            if len(figures) == 3 and figures[0].isdigit():
                run.peak_rss_mb = int(figures[0]) / 1024.0
                run.cpu_seconds = float(figures[1]) + float(figures[2])
        stderr.seek(0)
        run.stderr_tail = stderr.read()[-3000:].decode(errors="replace")
    run.state = list(states.values())
    return run


def _poll_high_water(proc: subprocess.Popen, high_water: list[int]) -> None:
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    high_water[0] = max(high_water[0], int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


def write_json(folder: str, name: str, value: Any) -> str:
    path = Path(folder) / name
    path.write_text(json.dumps(value))
    return str(path)


def sync(sim: SimulatorProcess, connector: list[str], name: str, config: dict, streams: tuple[str, ...],
         state: Optional[list] = None, keep_ids: bool = False, profile: Optional[str] = None) -> Run:
    sim.admin("POST", "reset_requests")
    with tempfile.TemporaryDirectory() as folder:
        command = connector
        if profile:
            command = profile_command(profile, connector)
        args = command + ["read", "--config", write_json(folder, "config.json", config),
                          "--catalog", write_json(folder, "catalog.json", catalog(streams))]
        if state is not None:
            args += ["--state", write_json(folder, "state.json", state)]
        run = run_process(name, args, cwd=folder, keep_ids=keep_ids)
    add_request_figures(run, sim)
    if run.returncode != 0:
        print(f"!! {name}: the connector exited with {run.returncode}\n{run.stderr_tail}", file=sys.stderr)
    return run


def profile_command(path: str, connector: list[str]) -> list[str]:
    py_spy = Path(sys.executable).with_name("py-spy")
    if path.endswith(".prof"):
        return [str(Path(connector[0]).with_name("python")), "-m", "cProfile", "-o", path, "-m", "source_circleci_ccm.run"]
    tool = str(py_spy) if py_spy.exists() else "py-spy"
    fmt = "speedscope" if path.endswith(".json") else ("raw" if path.endswith(".txt") else "flamegraph")
    return [tool, "record", "--gil", "--nonblocking", "-r", "100", "-f", fmt, "-o", path, "--"] + connector


def add_request_figures(run: Run, sim: SimulatorProcess) -> None:
    stats = sim.admin("GET", "stats")
    log = sim.admin("GET", "requests")
    run.requests = stats["requests"]
    run.distinct_urls = stats["distinct_urls"]
    run.by_status = stats["by_status"]
    answers: dict[tuple[str, str], int] = {}
    for entry in log:
        status = entry.get("status")
        if status in (429, 0, None) or (isinstance(status, int) and status >= 500):
            run.retries += 1
            continue
        key = (entry["method"], entry["path"])
        answers[key] = answers.get(key, 0) + 1
    run.duplicates = sum(count - 1 for count in answers.values())


def check_complete(run: Run, truth: dict, streams: tuple[str, ...], org_slugs: Optional[list[str]] = None) -> None:
    """Did every record the simulator holds arrive (ids compared when they were kept, else counts)?"""
    missing = []
    for stream in streams:
        expected = expected_ids(truth, stream, org_slugs)
        if run.ids:
            got = run.ids.get(stream, set())
            lost = len(expected - got)
            if lost:
                missing.append(f"{stream}: {lost} missing")
        elif run.records.get(stream, 0) < len(expected):
            missing.append(f"{stream}: {run.records.get(stream, 0)}/{len(expected)}")
    run.complete = not missing
    if missing:
        run.note = (run.note + "; " if run.note else "") + "lost " + ", ".join(missing)


def expected_ids(truth: dict, stream: str, org_slugs: Optional[list[str]] = None) -> set:
    items = truth.get(TRUTH_KEYS[stream]) or []
    if org_slugs is None:
        return {item["id"] for item in items}
    orgs = set(org_slugs)
    pipeline_org = {p["id"]: p["org_slug"] for p in truth["pipelines"]}
    if stream == "pipelines":
        return {p["id"] for p in items if p["org_slug"] in orgs}
    if stream == "workflows":
        return {w["id"] for w in items if pipeline_org.get(w["pipeline_id"]) in orgs}
    if stream == "jobs":
        return {j["id"] for j in items if pipeline_org.get(j["pipeline_id"]) in orgs}
    if stream == "contexts":
        return {c["id"] for c in items if c["org_slug"] in orgs}
    return {item["id"] for item in items}


def startup_seconds(connector: list[str], config: dict) -> float:
    """Wall time of `discover` (imports, manifest, building the streams; no request): the fixed cost of a run."""
    with tempfile.TemporaryDirectory() as folder:
        args = connector + ["discover", "--config", write_json(folder, "config.json", config)]
        times = []
        for _ in range(2):
            started = time.monotonic()
            subprocess.run(args, cwd=folder, capture_output=True, check=False)
            times.append(time.monotonic() - started)
    return min(times)


# --------------------------------------------------------------------------- the connector under test
def shipped_connector(venv: Path) -> list[str]:
    """The connector as its image ships it: this checkout installed (not editable) into a venv of its own with
    the runtime dependencies only. The development venv also holds the test, report and warehouse extras, and
    some of those change what the CDK imports at start-up (requests-cache loads boto3 when it is installed)."""
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not (venv / "bin" / "python").exists():
        print(f"creating {venv} (the connector's runtime dependencies only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    for step in (pip + [str(REPO)], pip + ["--no-deps", "--force-reinstall", str(REPO)]):  # deps, then this code
        done = subprocess.run(step, capture_output=True, text=True, cwd=tempfile.gettempdir())
        if done.returncode != 0:
            raise RuntimeError(f"could not install the connector into {venv}:\n{done.stdout}{done.stderr}")
    return [str(venv / "bin" / "source-circleci-ccm")]


def startup_cpu_seconds(connector: list[str]) -> float:
    """CPU of `discover` (imports, spec, building the streams; no request), the least of two runs."""
    with tempfile.TemporaryDirectory() as folder:
        config = write_json(folder, "config.json", {"api_token": "no-request", "api_url": "http://127.0.0.1:9/api"})
        runs = [run_process("discover", connector + ["discover", "--config", config], cwd=folder) for _ in range(2)]
    return min(run.cpu_seconds for run in runs)


# --------------------------------------------------------------------------- meltano-tap-circle-ci
def meltano_tap(venv: Path) -> Path:
    """The tap in its own venv (never the project's), installed on first use."""
    tap = venv / "bin" / "tap-circle-ci"
    if not tap.exists():
        print(f"installing {MELTANO_PACKAGE} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                               MELTANO_PACKAGE], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"could not install {MELTANO_PACKAGE}:\n{done.stdout}{done.stderr}")
    return tap


def tap_compatible_orgs(truth: dict) -> list[str]:
    """Organisations whose feed the tap can read to the end: it stops at the first 403/404 (singer-sdk's
    FatalAPIError), i.e. at any pipeline of a restricted project or any pipeline older than ~90 days."""
    restricted = set(truth.get("restricted_projects") or [])
    aged = set(truth.get("aged_out_pipelines") or [])
    bad = {p["org_slug"] for p in truth["pipelines"] if p["id"] in aged or p.get("project_slug") in restricted}
    return [c["slug"] for c in truth["collaborations"] if c["slug"] not in bad]


def run_meltano(sim: SimulatorProcess, tap: Path, orgs: list[str]) -> Run:
    total = Run("meltano-tap-circle-ci")
    for org in orgs:
        sim.admin("POST", "reset_requests")
        with tempfile.TemporaryDirectory() as folder:
            config = {"token": sim.token, "org_slug": org, "base_url": f"{sim.url}/v2"}
            args = [str(tap), "--config", write_json(folder, "config.json", config)]
            run = run_process(f"meltano {org}", args, cwd=folder, keep_ids=True)
        add_request_figures(run, sim)
        if run.returncode != 0:
            print(f"!! meltano-tap-circle-ci on {org} exited with {run.returncode}\n{run.stderr_tail}", file=sys.stderr)
            total.returncode = run.returncode
        total.seconds += run.seconds
        total.peak_rss_mb = max(total.peak_rss_mb, run.peak_rss_mb)
        for stream, count in run.records.items():
            total.records[stream] = total.records.get(stream, 0) + count
        for stream, values in run.ids.items():
            total.ids.setdefault(stream, set()).update(values)
        for attr in ("requests", "distinct_urls", "duplicates", "retries"):
            setattr(total, attr, getattr(total, attr) + getattr(run, attr))
    return total


# --------------------------------------------------------------------------- output
def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(runs: list[Run]) -> str:
    header = ["run", "requests", "implied", "distinct", "dup", "429/5xx", "wall s", "records", "rec/s", "req/s",
              "CPU s", "CPU ms/rec", "peak RSS MB", "state B", "complete"]
    rows = [header]
    for run in runs:
        rows.append([
            run.name, fmt(run.requests), fmt(run.implied), fmt(run.distinct_urls), fmt(run.duplicates), fmt(run.retries),
            fmt(run.seconds, 2), fmt(run.total_records), fmt(run.total_records / run.seconds if run.seconds else 0.0, 0),
            fmt(run.answered / run.seconds if run.seconds else 0.0, 1), fmt(run.cpu_seconds, 1) if run.cpu_seconds else "-",
            fmt(1000 * run.cpu_seconds / run.total_records, 2) if run.cpu_seconds and run.total_records else "-",
            fmt(run.peak_rss_mb, 0),
            fmt(run.state_bytes) if run.state else "-",
            {True: "yes", False: "NO", None: "-"}[run.complete] + (" (exit %d)" % run.returncode if run.returncode else ""),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def verdict(ok: Optional[bool]) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a "}[ok]


# --------------------------------------------------------------------------- rate limits
def rate_limited_syncs(args: argparse.Namespace) -> list[Run]:
    """A full sync under a server rate limit, for each kind of limiter and each form of its Reset header."""
    runs = []
    for kind in args.rate_limit_kinds.split(","):
        for reset in args.rate_limit_resets.split(","):
            overrides = {"rate_limit_kind": kind, "rate_limit_reset": reset}
            with simulator(args.rate_limited_size, args.latency_ms, rate_limit=args.rate_limit, overrides=overrides) as rsim:
                rtruth = rsim.admin("GET", "truth")
                rconfig = {"api_token": rsim.token, "api_url": rsim.url, "num_workers": args.workers}
                print(f"# rate-limited full sync on '{rsim.description}'", flush=True)
                limited = sync(rsim, args.connector, f"{args.rate_limit:g} req/s {kind}, reset {reset}", rconfig, CORE_STREAMS, keep_ids=True)
                check_complete(limited, rtruth, CORE_STREAMS)
                runs.append(limited)
    return runs


# --------------------------------------------------------------------------- scale series
SCALE_RSS_GROWTH = 1.25  # peak RSS of the largest sync over the smallest's
SCALE_MAX_CPU_MS_PER_RECORD = 0.5


def scale_series(args: argparse.Namespace) -> int:
    """Full syncs of the core streams at growing history (the bench shape, more pipelines per project): memory
    must not grow with history (the crawl holds a bounded window of pipelines), CPU per record must not either."""
    sizes = [int(size) for size in str(args.scale).split(",") if size.strip()]
    runs: list[Run] = []
    for pipelines in sizes:
        with simulator("bench", args.scale_latency_ms, overrides={"pipelines_per_project": max(1, pipelines // 20)}) as sim:
            config = {"api_token": sim.token, "api_url": sim.url, "num_workers": args.workers}
            run = sync(sim, args.connector, f"full, {pipelines:,} pipelines", config, CORE_STREAMS)
            runs.append(run)
            print(f"# scale {pipelines:,}: {run.seconds:.1f} s, {run.peak_rss_mb:.0f} MB, {run.cpu_seconds:.1f} CPU s", flush=True)
    startup = startup_cpu_seconds(args.connector)
    print()
    print(f"Scale series: bench shape, {args.scale_latency_ms:g} ms a request, num_workers {args.workers}, core streams")
    print(table(runs))
    for run in runs:  # the fixed cost of a run (importing airbyte-cdk) apart from what grows with the records
        print(f"- {run.name}: {1000 * (run.cpu_seconds - startup) / max(run.total_records, 1):.2f} ms CPU a record "
              f"beyond the {startup:.1f} CPU s of start-up (`discover`)")
    if len(runs) >= 2 and runs[0].peak_rss_mb:
        growth = runs[-1].peak_rss_mb / runs[0].peak_rss_mb
        cpu = max(1000 * r.cpu_seconds / max(r.total_records, 1) for r in runs)
        print(f"  {verdict(growth <= SCALE_RSS_GROWTH and runs[-1].peak_rss_mb < MAX_RSS_MB)}  peak RSS at the largest "
              f"<= {SCALE_RSS_GROWTH}x the smallest and < {MAX_RSS_MB:g} MB: {runs[-1].peak_rss_mb:.0f} MB = {growth:.2f}x")
        print(f"  {verdict(cpu < SCALE_MAX_CPU_MS_PER_RECORD)}  CPU per record < {SCALE_MAX_CPU_MS_PER_RECORD} ms: "
              f"{cpu:.2f} ms at most")
    return 0


# --------------------------------------------------------------------------- main
def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="bench", choices=["tiny", "small", "bench"], help="simulator preset (default bench)")
    ap.add_argument("--latency-ms", type=float, default=50.0, help="fixed latency of every request (default 50)")
    ap.add_argument("--workers", type=int, default=16, help="num_workers of the connector (default 16)")
    ap.add_argument("--activity-percent", type=float, default=1.0, help="new pipelines before the third sync, %% of all")
    ap.add_argument("--rate-limit", type=float, default=20.0, help="requests/s the rate-limited run allows (default 20)")
    ap.add_argument("--rate-limited-size", default="small", choices=["tiny", "small", "bench"],
                    help="preset of the rate-limited run (default small: bench size takes ~5 min at 20 req/s)")
    ap.add_argument("--rate-limit-kinds", default="bucket,window", help="limiters to run against (bucket, window)")
    ap.add_argument("--rate-limit-resets", default="until-full,until-next,epoch",
                    help="forms of the RateLimit-Reset header to run against (until-full, until-next, epoch)")
    ap.add_argument("--meltano-orgs", type=int, default=1,
                    help="how many organisations the tap and the connector read side by side (0 = every one the tap "
                         "can read to the end; default 1: the tap reads one request at a time)")
    ap.add_argument("--meltano-venv", default=str(REPO / ".cache" / "bench-meltano-venv"))
    ap.add_argument("--connector-venv", default=str(REPO / ".cache" / "bench-connector-venv"),
                    help="venv the connector runs from, with its runtime dependencies only (as the image ships it); "
                         "empty: run it from this interpreter's environment")
    ap.add_argument("--skip-meltano", action="store_true")
    ap.add_argument("--skip-rate-limited", action="store_true")
    ap.add_argument("--only-rate-limited", action="store_true", help="run the rate-limited syncs alone")
    ap.add_argument("--scale", default="1000,4000,16000", metavar="N,N,...",
                    help="pipelines of each full sync of the scale series (the bench organisation's shape with more "
                         "pipelines per project; default 1000,4000,16000; empty to skip)")
    ap.add_argument("--scale-latency-ms", type=float, default=10.0, help="latency of the scale series (default 10)")
    ap.add_argument("--only-scale", action="store_true", help="run the scale series alone")
    ap.add_argument("--profile", metavar="PATH", help="profile the full sync: PATH.prof = cProfile (main thread only), "
                    "PATH.svg/.json/.txt = py-spy (every thread; py-spy must be installed)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    args.connector = shipped_connector(Path(args.connector_venv)) if args.connector_venv else connector_command()

    if args.only_scale:
        return scale_series(args)
    if args.only_rate_limited:
        limited_runs = rate_limited_syncs(args)
        print(table(limited_runs))
        for run in limited_runs:
            print(f"- {run.name}: {run.answered / run.seconds:.1f} req/s, {run.retries} 429s, complete: {run.complete}")
        return 0
    runs: list[Run] = []
    figures: dict[str, Any] = {}
    started = time.monotonic()
    print(f"# source-circleci-ccm bench: simulator {args.size}, {args.latency_ms:g} ms a request, "
          f"num_workers {args.workers}, {os.cpu_count()} CPUs; connector {' '.join(args.connector)}", flush=True)

    # 1-2. full, repeat, +1% activity ------------------------------------------------------------------
    with simulator(args.size, args.latency_ms) as sim:
        truth = sim.admin("GET", "truth")
        sizes = {k: len(truth[k]) for k in ("collaborations", "pipelines", "workflows", "jobs", "contexts")}
        print(f"# organisation: {sizes['collaborations']} orgs, {len({p['project_slug'] for p in truth['pipelines']})} "
              f"projects, {sizes['pipelines']:,} pipelines, {sizes['workflows']:,} readable workflows, "
              f"{sizes['jobs']:,} jobs of finished workflows, {sizes['contexts']} contexts", flush=True)
        config = {"api_token": sim.token, "api_url": sim.url, "num_workers": args.workers}
        startup = startup_seconds(args.connector, config)
        print(f"# start-up (discover, no request): {startup:.2f} s", flush=True)

        full = sync(sim, args.connector, "full", config, CORE_STREAMS, keep_ids=True, profile=args.profile)
        check_complete(full, truth, CORE_STREAMS)
        full.implied = implied_full_sync_requests(truth)
        runs.append(full)
        print(f"# full: {full.seconds:.1f} s", flush=True)

        repeat = sync(sim, args.connector, "repeat, no activity", config, CORE_STREAMS, state=full.state)
        repeat.implied = incremental_sync_bound(truth, truth)
        runs.append(repeat)
        finished_records = {s: repeat.records.get(s, 0) for s in ("pipelines", "workflows", "jobs")}
        repeat.note = "activity records emitted again: " + ", ".join(f"{k} {v}" for k, v in finished_records.items())

        new = max(1, round(sizes["pipelines"] * args.activity_percent / 100))
        sim.admin("POST", "activity", {"pipelines": new})
        finished = sim.admin("POST", "finish")["finished_workflows"]
        activity = sync(sim, args.connector, f"+{args.activity_percent:g}% activity", config, CORE_STREAMS, state=repeat.state or full.state)
        activity.note = f"{new} new pipelines, {finished} workflows finished"
        activity.implied = incremental_sync_bound(truth, sim.admin("GET", "truth"))
        runs.append(activity)

    ideal = full.distinct_urls * args.latency_ms / 1000 / args.workers
    figures["ideal_seconds"] = ideal
    figures["startup_seconds"] = startup

    # 3. meltano-tap-circle-ci side by side ------------------------------------------------------------
    meltano = connector_side = None
    meltano_note = ""
    if not args.skip_meltano:
        tap = meltano_tap(Path(args.meltano_venv))
        # The tap dies on the first 403/404: same size and latency, but no restricted project and no
        # pipeline past CircleCI's ~90-day retention (the simulator still keeps one, in its first org).
        overrides = {"restricted_projects": 0, "aged_out_fraction": 0.0}
        with simulator(args.size, args.latency_ms, overrides=overrides) as msim:
            mtruth = msim.admin("GET", "truth")
            orgs = tap_compatible_orgs(mtruth)
            if args.meltano_orgs:
                orgs = orgs[: args.meltano_orgs]
            if not orgs:
                meltano_note = "no organisation the tap can read to the end"
            else:
                count = len(expected_ids(mtruth, "pipelines", orgs))
                meltano_note = (f"{len(orgs)} org(s) {', '.join(orgs)} ({count:,} pipelines) of a simulator "
                                f"'{msim.description}'; streams {', '.join(MELTANO_STREAMS)}")
                print(f"# meltano comparison over {meltano_note}", flush=True)
                mconfig = {"api_token": msim.token, "api_url": msim.url, "num_workers": args.workers, "org_slugs": orgs}
                connector_side = sync(msim, args.connector, "connector (meltano subset)", mconfig, MELTANO_STREAMS, keep_ids=True)
                check_complete(connector_side, mtruth, MELTANO_STREAMS, orgs)
                runs.append(connector_side)
                meltano = run_meltano(msim, tap, orgs)
                check_complete(meltano, mtruth, MELTANO_STREAMS, orgs)
                runs.append(meltano)

    # 4. rate-limited full syncs: each kind of limiter, each form of its Reset header ----------------------
    limited_runs = [] if args.skip_rate_limited else rate_limited_syncs(args)
    runs += limited_runs

    # ------------------------------------------------------------------------------------------------ print
    print()
    print(f"Command: {' '.join(['python', 'scripts/bench.py'] + (argv if argv is not None else sys.argv[1:]))}")
    print(f"Simulator: {args.size}, {args.latency_ms:g} ms a request; num_workers {args.workers}; "
          f"{os.cpu_count()} CPUs; bench took {time.monotonic() - started:.0f} s")
    print()
    print(table(runs))
    print()
    for run in runs:
        if run.note:
            print(f"- {run.name}: {run.note}")
    if meltano_note:
        print(f"- meltano comparison: {meltano_note}")
    print("- implied: requests the data implies for the full sync; for the incremental ones the most they need "
          "(feed pages down to the oldest unfinished pipeline, workflow lists of unfinished and new pipelines, "
          f"job pages of newly finished workflows): repeat {repeat.implied / max(full.requests, 1):.2%}, "
          f"+activity {activity.implied / max(full.requests, 1):.2%} of the full sync's requests at best with this data")
    print(f"- ideal full sync: {full.distinct_urls:,} distinct requests x {args.latency_ms:g} ms / {args.workers} "
          f"workers = {ideal:.2f} s; start-up {startup:.2f} s; full took {full.seconds:.2f} s "
          f"= {full.seconds / ideal if ideal else 0:.2f} x ideal")
    ratio = meltano.seconds / connector_side.seconds if meltano and connector_side and connector_side.seconds else None
    if ratio is not None:
        print(f"- meltano-tap-circle-ci {meltano.seconds:.1f} s vs connector {connector_side.seconds:.1f} s over the same "
              f"organisations: connector {ratio:.1f} x faster")
    rates = {run.name: run.answered / run.seconds for run in limited_runs if run.seconds}
    for run in limited_runs:
        print(f"- {run.name} ({args.rate_limited_size}): {run.answered:,} answered requests + {run.retries:,} 429s in "
              f"{run.seconds:.1f} s = {rates[run.name]:.1f} req/s achieved; every record arrived: {'yes' if run.complete else 'NO'}")
    rate = min(rates.values()) if rates else None
    limited_complete = all(run.complete for run in limited_runs)

    full_ok = full.returncode == 0
    checks = [
        ("duplicate fetches in the full sync = 0", full_ok and full.duplicates <= MAX_DUPLICATES,
         f"{full.duplicates}"),
        (f"full sync <= {FULL_OVER_IDEAL} x ideal + start-up", full_ok and full.seconds <= FULL_OVER_IDEAL * ideal + startup,
         f"{full.seconds:.1f} s vs {FULL_OVER_IDEAL * ideal + startup:.1f} s"),
        (f">= {MELTANO_RATIO:g}x faster than meltano-tap-circle-ci", None if ratio is None else ratio >= MELTANO_RATIO
         and meltano.returncode == 0 and connector_side.returncode == 0, "not run" if ratio is None else f"{ratio:.1f}x"),
        (f"repeat sync <= {REPEAT_SHARE:.0%} of the full sync's requests",
         full_ok and repeat.returncode == 0 and repeat.requests <= REPEAT_SHARE * full.requests,
         f"{repeat.requests} = {repeat.requests / max(full.requests, 1):.2%}"),
        (f"+1% activity <= {ACTIVITY_SHARE:.0%} of the full sync's requests",
         full_ok and activity.returncode == 0 and activity.requests <= ACTIVITY_SHARE * full.requests,
         f"{activity.requests} = {activity.requests / max(full.requests, 1):.2%}"),
        (f"peak RSS <= {MAX_RSS_MB:g} MB", max(r.peak_rss_mb for r in (full, repeat, activity)) <= MAX_RSS_MB,
         f"{max(r.peak_rss_mb for r in (full, repeat, activity)):.0f} MB"),
        (f"state <= {MAX_STATE_BYTES // 1024} KB", max(r.state_bytes for r in (full, repeat, activity)) <= MAX_STATE_BYTES
         and bool(full.state), f"{max(r.state_bytes for r in (full, repeat, activity)):,} B"),
        (f">= {MIN_RATE_SHARE * args.rate_limit:g} req/s at {args.rate_limit:g} req/s whatever the limiter, no record lost",
         None if rate is None else (rate >= MIN_RATE_SHARE * args.rate_limit and limited_complete),
         "not run" if rate is None else f"{rate:.1f} req/s at worst, {'complete' if limited_complete else 'records lost'}"
         + ("" if args.rate_limited_size == "bench" else f" ({args.rate_limited_size} preset)")),
        ("full sync complete (every record of the simulator's truth)", bool(full.complete), "yes" if full.complete else full.note),
    ]
    print()
    print("Targets of issue 6:")
    for label, ok, detail in checks:
        print(f"  {verdict(ok)}  {label}: {detail}")

    if args.scale:
        scale_series(args)

    if args.json:
        figures["runs"] = [
            {k: v for k, v in run.__dict__.items() if k not in ("ids", "state", "stderr_tail")}
            | {"state_bytes": run.state_bytes, "total_records": run.total_records}
            for run in runs
        ]
        figures["checks"] = [{"target": label, "pass": ok, "value": detail} for label, ok, detail in checks]
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
