"""The simulator in a child process, for scripts that run the connector against it (demo sync, benchmark)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    """`python -m circleci_simulator ARGS...` on a free loopback port; `url`, `token`, admin calls, `stop()`."""

    def __init__(self, *args: str, own_session: bool = False, start_timeout: float = 120) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        # own_session: Ctrl-C reaches only the parent, which then stops the simulator in order.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "circleci_simulator", "--port", "0", *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, start_new_session=own_session,
        )
        self.url = self.token = ""
        deadline = time.monotonic() + start_timeout
        assert self._proc.stdout is not None
        while not (self.url and self.token):
            line = self._proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the CircleCI simulator did not start (no URL and token printed)")
            key, _, value = line.strip().partition("=")
            if key == "CIRCLECI_SIMULATOR_URL":
                self.url = value
            elif key == "CIRCLECI_SIMULATOR_TOKEN":
                self.token = value

    def admin(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        """Call `/_sim/<path>` (truth, stats, requests, activity, finish, faults)."""
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(
            f"{self.url.rsplit('/api', 1)[0]}/_sim/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> "SimulatorProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
