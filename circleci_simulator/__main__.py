"""CLI: python -m circleci_simulator --size tiny --port 0 --latency-ms 0 --rate-limit 0 --seed 7"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from . import Simulator, SimulatorSettings


def main(argv=None):
    ap = argparse.ArgumentParser(prog="circleci_simulator", description="Serve a simulated CircleCI API")
    ap.add_argument("--size", default="tiny", choices=["tiny", "small", "bench"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--rate-limit", type=float, default=0.0, help="requests/second, 0 = off")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--token", default=None)
    ap.add_argument("--vcs-key", default="vcs_type", choices=["vcs_type", "vcs-type"])
    ap.add_argument("--anchor", type=float, default=None,
                    help="epoch seconds the history is dated back from (default: now); the same anchor and seed "
                         "serve the same history, so a later sync sees only what was added since")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                    help="any other SimulatorSettings field, e.g. --set restricted_projects=0")
    args = ap.parse_args(argv)
    over = dict(seed=args.seed, latency_ms=args.latency_ms, rate_limit_rps=args.rate_limit,
                collaborations_vcs_key=args.vcs_key, anchor=args.anchor)
    if args.token:
        over["token"] = args.token
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        over[name] = json.loads(value)
    settings = SimulatorSettings.preset(args.size, **over)
    sim = Simulator(settings, host=args.host, port=args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"CIRCLECI_SIMULATOR_URL={sim.base_url}", flush=True)
    print(f"CIRCLECI_SIMULATOR_TOKEN={sim.token}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
