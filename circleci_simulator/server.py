"""HTTP front of the simulator: routing, pagination, auth, latency, rate limit and fault injection."""
from __future__ import annotations

import base64
import hashlib
import json
import math
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .model import World
from .settings import Faults, SimulatorSettings

PROVIDERS = {"gh": "gh", "github": "gh", "bb": "bb", "bitbucket": "bb", "circleci": "circleci"}

HTML_PAGES = {
    500: b"<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1></body></html>",
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    503: b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>",
}


def _j(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ApiError(Exception):
    def __init__(self, status, message, body=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body if body is not None else {"message": message}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Simulator:
    def __init__(self, settings: SimulatorSettings | None = None, host: str = "127.0.0.1", port: int = 0):
        self.settings = settings or SimulatorSettings.preset("tiny")
        self.world = World(self.settings)
        self.host = host
        self.port = port
        self._faults = self.settings.faults or Faults()
        self._log_lock = threading.Lock()
        self._log = []
        self._attempts = Counter()
        self._faulted = set()
        self._cache = {}
        self._cache_version = -1
        self._secret = hashlib.sha256(f"sim-{self.settings.seed}".encode()).hexdigest()[:16]
        self._rl_lock = threading.Lock()
        window = self.settings.rate_limit_kind == "window"
        self._rl_tokens = float(self.settings.rate_limit_rps) * (self.settings.rate_limit_window_seconds if window else 1.0)
        self._rl_last = time.monotonic()
        self._httpd = None
        self._thread = None

    # ------------------------------------------------------------ lifecycle
    def start(self):
        if self._httpd:
            return self
        sim = self

        class Handler(_Handler):
            simulator = sim

        self._httpd = _Server((self.host, self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="circleci-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}/api"

    @property
    def token(self):
        return self.settings.token

    # ------------------------------------------------------------ public API
    def truth(self):
        return self.world.truth(self.settings.collaborations_vcs_key)

    def request_log(self):
        with self._log_lock:
            return [dict(e) for e in self._log]

    def reset_request_log(self):
        with self._log_lock:
            self._log = []
            self._attempts = Counter()

    def add_activity(self, pipelines=5):
        return self.world.add_activity(pipelines)

    def finish_running(self):
        return self.world.finish_running()

    def set_faults(self, faults: Faults):
        with self._log_lock:
            self._faults = faults or Faults()
            self._faulted = set()

    @property
    def faults(self):
        return self._faults

    def stats(self):
        with self._log_lock:
            paths = Counter((e["method"], e["path"]) for e in self._log)
            return {"requests": len(self._log), "distinct_urls": len(paths),
                    "duplicates": len(self._log) - len(paths),
                    "by_status": dict(Counter(str(e["status"]) for e in self._log))}

    # ------------------------------------------------------------ internals
    def _register(self, method, path):
        with self._log_lock:
            key = (method, path)
            self._attempts[key] += 1
            entry = {"method": method, "path": path, "status": None, "attempt": self._attempts[key]}
            self._log.append(entry)
            return entry

    def _rate_limit(self):
        """(seconds to wait or None, rate-limit headers) for one request, as the settings' kind of limiter."""
        rps = self.settings.rate_limit_rps
        if not rps or rps <= 0:
            return None, []
        window = self.settings.rate_limit_kind == "window"
        cap = max(1.0, float(rps) * (self.settings.rate_limit_window_seconds if window else 1.0))
        with self._rl_lock:
            now = time.monotonic()
            if window:
                if now - self._rl_last >= self.settings.rate_limit_window_seconds:
                    self._rl_tokens, self._rl_last = cap, now
                until_full = until_next = self._rl_last + self.settings.rate_limit_window_seconds - now
            else:
                self._rl_tokens = min(cap, self._rl_tokens + (now - self._rl_last) * rps)
                self._rl_last = now
            allowed = self._rl_tokens >= 1.0
            if allowed:
                self._rl_tokens -= 1.0
            if not window:
                until_full = (cap - self._rl_tokens) / rps
                until_next = max(0.0, (1.0 - self._rl_tokens) / rps)
            remaining = int(self._rl_tokens)
        reset = {"until-full": until_full, "until-next": until_next, "epoch": time.time() + until_full}[self.settings.rate_limit_reset]
        reset_text = str(math.ceil(reset)) if self.settings.rate_limit_reset == "epoch" else f"{reset:.3f}".rstrip("0").rstrip(".") or "0"
        headers = [("RateLimit-Limit", str(int(cap))), ("RateLimit-Remaining", str(remaining)), ("RateLimit-Reset", reset_text),
                   ("X-RateLimit-Limit", str(int(cap))), ("X-RateLimit-Remaining", str(remaining)), ("X-RateLimit-Reset", reset_text)]
        if allowed:
            return None, headers
        wait = max(1, math.ceil(until_next))
        return wait, [("Retry-After", str(wait))] + headers

    def _decide_fault(self, method, path, attempt, has_page_token):
        f = self._faults
        if f.stale_page_token_status and has_page_token:
            return ("stale", f.stale_page_token_status, 0.0)
        rates = [("5xx", f.error_5xx_rate), ("html", f.html_error_rate), ("reset", f.reset_rate),
                 ("slow", f.slow_rate), ("truncated", f.truncated_rate), ("non_json", f.non_json_rate),
                 ("throttle", f.throttle_rate)]
        if not any(r > 0 for _, r in rates):
            return None
        with self._log_lock:
            if f.fail_first_attempt_only and (method, path) in self._faulted:
                return None
        h = hashlib.sha256(f"{f.seed}|{method}|{path}|{attempt}".encode()).digest()
        u = int.from_bytes(h[:7], "big") / float(1 << 56)
        v = int.from_bytes(h[7:14], "big") / float(1 << 56)
        acc = 0.0
        for kind, rate in rates:
            acc += max(0.0, rate)
            if u < acc:
                with self._log_lock:
                    self._faulted.add((method, path))
                return (kind, None, v)
        return None

    # page tokens
    def _token(self, key, offset, last_id):
        c = hashlib.sha256(f"{self._secret}|{key}|{offset}|{last_id}".encode()).hexdigest()[:12]
        raw = _j({"k": hashlib.sha1(key.encode()).hexdigest()[:8], "o": offset, "a": last_id, "c": c})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _parse_token(self, key, token):
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            d = json.loads(raw)
            offset, last_id = int(d["o"]), d["a"]
            ok = (d["k"] == hashlib.sha1(key.encode()).hexdigest()[:8] and
                  d["c"] == hashlib.sha256(f"{self._secret}|{key}|{offset}|{last_id}".encode()).hexdigest()[:12])
        except Exception:
            ok = False
        if not ok:
            raise ApiError(400, "Invalid page-token.")
        return offset, last_id

    def _cached(self, key, build):
        w = self.world
        with w.lock:
            if self._cache_version != w.version:
                self._cache = {}
                self._cache_version = w.version
            hit = self._cache.get(key)
            if hit is None:
                hit = build()
                self._cache[key] = hit
            return hit

    def _page(self, key, build_items, token, page_size=None, extra=None):
        """build_items -> list of (id, dict). Returns page bytes. ``page_size``: the client's (page-size, limit);
        ``extra(listing)``: more top-level fields of every page (e.g. total_count)."""
        listing = self._cached(("list", key), lambda: _Listing(build_items()))
        offset = 0
        if token:
            offset, last_id = self._parse_token(key, token)
            pos = listing.pos.get(last_id)
            if pos is not None:
                offset = pos + 1

        ps = page_size or self.settings.page_size

        def render():
            chunk = listing.items[offset:offset + ps]
            nxt = None
            if offset + ps < len(listing.items):
                nxt = self._token(key, offset + ps, listing.items[offset + ps - 1][0])
            body = {"items": [d for _, d in chunk], "next_page_token": nxt}
            if extra:
                body.update(extra(listing))
            return _j(body)

        return self._cached(("page", key, offset, ps), render)

    # routing
    def route(self, method, raw_path, headers):
        split = urlsplit(raw_path)
        q = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        path = unquote(split.path)
        if headers.get("Circle-Token") != self.settings.token:
            raise ApiError(401, "You must log in first.")
        if method != "GET":
            raise ApiError(405, "Method not allowed")
        segs = [s for s in path[len("/api/"):].split("/") if s != ""]
        token = q.get("page-token") or None
        w = self.world
        if not segs:
            raise ApiError(404, "Not found")
        if segs[0] == "v1.1":
            return self._v1(segs[1:])
        if segs[0] != "v2":
            raise ApiError(404, "Not found")
        s = segs[1:]
        if s == ["me"]:
            return _j(w.me)
        if s == ["me", "collaborations"]:
            return self._cached(("collabs",), lambda: _j([o.collab(self.settings.collaborations_vcs_key) for o in w.orgs]))
        if s == ["pipeline"]:
            org = self._org(q.get("org-slug"))
            return self._page(f"org/{org.id}", lambda: [(p.id, p.d) for p in w.org_pipelines(org)], token)
        if len(s) == 3 and s[0] == "pipeline" and s[2] in ("workflow", "config"):
            p = w.pipelines_by_id.get(s[1])
            if p is None:
                raise ApiError(404, "Pipeline not found")
            self._check_pipeline(p)
            if s[2] == "config":
                return self._cached(("config", p.id), lambda: _j(w.config_api(p)))
            return self._page(f"wf/{p.id}", lambda: [(wf.id, wf.api()) for wf in p.workflows], token)
        if len(s) == 2 and s[0] == "pipeline":
            p = w.pipelines_by_id.get(s[1])
            if p is None:
                raise ApiError(404, "Pipeline not found")
            if p.project.restricted:
                raise ApiError(403, "Permission denied")
            return _j(p.d)
        if len(s) in (2, 3) and s[0] == "workflow":
            wf = w.workflows_by_id.get(s[1])
            if wf is None:
                raise ApiError(404, "Workflow not found")
            self._check_pipeline(wf.pipeline)
            if len(s) == 2:
                return self._cached(("wfone", wf.id), lambda: _j(wf.api()))
            if s[2] != "job":
                raise ApiError(404, "Not found")
            return self._page(f"jobs/{wf.id}", lambda: [(j.id, j.api()) for j in wf.jobs], token)
        if s == ["context"]:
            org = None
            if q.get("owner-id"):
                org = w.orgs_by_id.get(q["owner-id"])
            elif q.get("owner-slug"):
                org = self._org(q["owner-slug"], strict=False)
            else:
                raise ApiError(400, "owner-id or owner-slug is required")
            if org is None:
                raise ApiError(404, "Organization not found")
            return self._page(f"ctx/{org.id}", lambda: [(c["api"]["id"], c["api"]) for c in org.contexts], token)
        if len(s) == 3 and s[0] == "context":
            c = w.contexts_by_id.get(s[1])
            if c is None:
                raise ApiError(404, "Context not found")
            if s[2] == "environment-variable":
                return self._page(f"ctxenv/{s[1]}", lambda: [(e["variable"], e) for e in c["envs"]], token)
            if s[2] == "restrictions":
                return self._page(f"ctxres/{s[1]}", lambda: [(r["id"], r) for r in c["restrictions"]], token)
            raise ApiError(404, "Not found")
        if len(s) == 2 and s[0] == "context":
            c = w.contexts_by_id.get(s[1])
            if c is None:
                raise ApiError(404, "Context not found")
            return _j(c["api"])
        if len(s) == 2 and s[0] == "user":
            u = w.users_by_id.get(s[1])
            if u is None:
                raise ApiError(404, "User not found")
            return _j(u)
        if s and s[0] == "project" and len(s) >= 4:
            return self._project_route(s[1:4], s[4:], q, token)
        if s and s[0] in ("deploy", "projects", "owner", "organizations", "organization", "webhook"):
            return self._governance_route(s, q, token)
        raise ApiError(404, "Not found")

    def _org(self, slug, strict=True):
        if not slug:
            raise ApiError(400, "org-slug is required")
        parts = slug.split("/")
        if len(parts) == 2 and parts[0].lower() in PROVIDERS:
            slug = f"{PROVIDERS[parts[0].lower()]}/{parts[1]}"
        org = self.world.orgs_by_slug.get(slug.lower())
        if org is None:
            raise ApiError(404, "Organization not found")
        return org

    def _project(self, three):
        prov = PROVIDERS.get(three[0].lower())
        if prov is None:
            raise ApiError(404, "Project not found")
        proj = self.world.projects_by_slug.get(f"{prov}/{three[1]}/{three[2]}".lower())
        if proj is None:
            raise ApiError(404, "Project not found")
        if proj.restricted:
            raise ApiError(403, "Permission denied")
        return proj

    def _check_pipeline(self, p):
        if p.project.restricted:
            raise ApiError(403, "Permission denied")
        if p.aged:
            raise ApiError(404, "Not found")

    def _project_route(self, three, rest, q, token):
        w = self.world
        proj = self._project(three)
        if not rest:
            return self._cached(("proj", proj.id), lambda: _j(proj.api()))
        if rest == ["pipeline"]:
            branch = q.get("branch") or None
            return self._page(f"proj/{proj.id}/{branch}",
                              lambda: [(p.id, p.d) for p in w.project_pipelines(proj, branch)], token)
        if rest == ["settings"]:
            if proj.settings_unavailable:
                raise ApiError(404, "Not found")
            return _j(proj.settings)
        if rest == ["envvar"]:
            return self._page(f"envvar/{proj.id}", lambda: [(e["name"], e) for e in proj.envvars], token)
        if rest == ["checkout-key"]:
            return self._page(f"ckey/{proj.id}", lambda: [(k["fingerprint"], k) for k in proj.checkout_keys], token)
        if len(rest) == 2 and rest[0] == "job":
            job = self._job(proj, rest[1])
            return self._cached(("jobdetail", job.id), lambda: _j(w.job_details(job)))
        if len(rest) == 2 and rest[1] in ("tests", "artifacts"):
            job = self._job(proj, rest[0])
            if rest[1] == "tests":
                return self._page(f"tests/{job.id}", lambda: [(str(i), d) for i, d in enumerate(w.gov.job_tests(job))], token)
            return self._page(f"artifacts/{job.id}",
                              lambda: [(f"{d['node_index']}/{d['path']}", d) for d in w.gov.job_artifacts(job)], token)
        if rest == ["schedule"]:
            self._absent("schedules", proj=proj)
            return self._page(f"schedule/{proj.id}", lambda: [(d["id"], d) for d in proj.schedules], token)
        raise ApiError(404, "Not found")

    # ------------------------------------------------------------ deployment and governance (issue 12)
    def _absent(self, feature, org=None, proj=None):
        hit = self.world.gov.feature_absent(feature, org=org, proj=proj)
        if hit:
            status, body = hit
            raise ApiError(status, body.get("message") or body.get("error"), body)

    @staticmethod
    def _page_size(q, name, required):
        raw = q.get(name)
        if raw in (None, ""):
            if required:
                raise ApiError(400, f"{name} is required")
            return None
        try:
            n = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer")
        if n < 1 or n > 100:
            raise ApiError(400, f"{name} must be between 1 and 100")
        return n

    def _org_by_id(self, oid):
        org = self.world.orgs_by_id.get(oid or "")
        if org is None:
            raise ApiError(404, "Organization not found")
        return org

    def _project_by_id(self, pid):
        proj = next((p for p in self.world.projects if p.id == pid), None)
        if proj is None:
            raise ApiError(404, "Project not found")
        if proj.restricted:
            raise ApiError(403, "Permission denied")
        return proj

    def _governance_route(self, s, q, token):
        w, gov = self.world, self.world.gov
        if s[0] == "deploy":
            return self._deploy_route(s[1:], q, token)
        if s[0] == "projects" and len(s) >= 3 and s[2] == "pipeline-definitions":
            proj = self._project_by_id(s[1])
            self._absent("pipeline_definitions", proj=proj)
            if len(s) == 3:
                return self._cached(("pdefs", proj.id), lambda: _j({"items": [d for d, _ in proj.definitions]}))
            hit = gov.definitions_by_id.get(s[3])
            if hit is None or hit[0] is not proj or len(s) != 5 or s[4] != "triggers":
                raise ApiError(404, "Pipeline definition not found")
            return self._cached(("ptrig", s[3]), lambda: _j({"items": hit[2]}))
        if s[0] == "owner" and len(s) >= 4 and s[2] == "context":
            org = w.orgs_by_id.get(s[1])
            if org is None or s[3] != "config":
                raise ApiError(404, "owner or context not found", {"error": "owner or context not found"})
            self._absent("policy", org=org)
            rest = s[4:]
            if rest == ["decision", "settings"]:
                return _j({"enabled": org.policy_enabled})
            if rest == ["policy-bundle"]:
                return self._cached(("bundle", org.id), lambda: _j({p["name"]: [p] for p in org.policies}))
            if rest == ["decision"]:
                return self._decisions(org, q)
            raise ApiError(404, "Not found", {"error": "not found"})
        if s[0] == "organizations" and len(s) == 3 and s[2] == "groups":
            org = self._org_by_id(s[1])
            self._absent("groups", org=org)
            size = self._page_size(q, "limit", required=False)
            return self._page(f"groups/{org.id}", lambda: [(g["id"], g) for g in org.groups], token, size,
                              extra=lambda listing: {"total_count": len(listing.items)})
        if s[0] == "organization" and len(s) in (3, 4) and s[-1] == "url-orb-allow-list":
            ref = "/".join(s[1:-1])
            org = w.orgs_by_id.get(ref) if len(s) == 3 else None
            if org is None:
                org = self._org(ref)
            self._absent("url_orb_allow_list", org=org)
            return self._cached(("urlorbs", org.id), lambda: _j({"items": org.url_orbs}))
        if s == ["webhook"]:
            if q.get("scope-type") != "project":
                raise ApiError(400, "scope-type must be project")
            proj = self._project_by_id(q.get("scope-id"))
            self._absent("webhooks", proj=proj)
            return self._page(f"webhooks/{proj.id}", lambda: [(h["id"], h) for h in proj.webhooks], token)
        raise ApiError(404, "Not found")

    def _deploy_route(self, s, q, token):
        w, gov = self.world, self.world.gov
        if s in (["environments"], ["components"]):
            if not q.get("org-id"):
                raise ApiError(400, "org-id is required")
            org = self._org_by_id(q["org-id"])
            self._absent("deploy", org=org)
            size = self._page_size(q, "page-size", required=True)
            if s == ["environments"]:
                return self._page(f"envs/{org.id}", lambda: [(e["id"], e) for e in org.environments], token, size)
            pid = q.get("project-id") or None
            return self._page(f"comps/{org.id}/{pid}", lambda: [(c["id"], c) for c in gov.components(org, pid)],
                              token, size)
        if len(s) == 3 and s[0] == "components" and s[2] == "versions":
            hit = gov.components_by_id.get(s[1])
            if hit is None:
                raise ApiError(404, "Component not found")
            self._absent("deploy", org=hit[0])
            env = q.get("environment-id") or None
            return self._page(f"versions/{s[1]}/{env}",
                              lambda: [(f"{v['environment_id']}/{v['name']}", v) for v in gov.versions(s[1], env)], token)
        raise ApiError(404, "Not found")

    def _decisions(self, org, q):
        """Decision logs: a bare array, newest first, ``offset`` paging (a page is full at page_size items),
        filtered by after/before (created_at strictly after/before), status, branch, project_id, build_number."""
        try:
            offset = int(q.get("offset") or 0)
        except ValueError:
            raise ApiError(400, "offset must be an integer", {"error": "offset must be an integer"})
        bounds = {}
        for name in ("after", "before"):
            if q.get(name):
                try:
                    bounds[name] = _parse_ts(q[name])
                except ValueError:
                    raise ApiError(400, f"{name} must be a date-time", {"error": f"{name} must be a date-time"})

        def build():
            out = []
            for d in self.world.gov.decisions(org):
                t = _parse_ts(d["created_at"])
                if "after" in bounds and not t > bounds["after"]:
                    continue
                if "before" in bounds and not t < bounds["before"]:
                    continue
                if q.get("status") and d["decision"]["status"].lower() != q["status"].lower():
                    continue
                if q.get("branch") and d["metadata"]["vcs"]["branch"] != q["branch"]:
                    continue
                if q.get("project_id") and d["metadata"]["project_id"] != q["project_id"]:
                    continue
                if q.get("build_number") and str(d["metadata"]["build_number"]) != q["build_number"]:
                    continue
                out.append(d)
            return out

        key = ("decisions", org.id) + tuple(sorted((k, v) for k, v in q.items() if k != "offset"))
        items = self._cached(key, build)
        return _j(items[max(0, offset):max(0, offset) + self.settings.page_size])

    def _job(self, proj, num):
        try:
            n = int(num)
        except ValueError:
            raise ApiError(404, "Job not found")
        job = proj.jobs_by_number.get(n)
        if job is None or job.type != "build":
            raise ApiError(404, "Job not found")
        return job

    def _v1(self, s):
        if len(s) != 5 or s[0] != "project":
            raise ApiError(404, "Not found")
        proj = self._project(s[1:4])
        job = self._job(proj, s[4])
        if job.status == "running":
            return _j(self.world.v1_build(job))
        return self._cached(("v1", job.id), lambda: _j(self.world.v1_build(job)))


def _parse_ts(value):
    import datetime as dt

    d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d


class _Listing:
    __slots__ = ("items", "pos")

    def __init__(self, items):
        self.items = items
        self.pos = {k: i for i, (k, _) in enumerate(items)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CircleCISimulator/1.0"
    sys_version = ""
    simulator: Simulator = None

    def log_message(self, format, *args):  # silence
        pass

    def setup(self):
        super().setup()
        try:  # headers and body go out in one write anyway; avoid Nagle/delayed-ACK stalls
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, body, ctype="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        self.flush_headers()

    def _handle(self, method):
        sim = self.simulator
        try:
            body = self._body()
            path = urlsplit(self.path).path
            if path.startswith("/_sim/"):
                return self._admin(method, path, body)
            if not path.startswith("/api/"):
                return self._send(404, _j({"message": "Not found"}))
            entry = sim._register(method, self.path)
            lat = sim.settings.latency_ms
            if lat:
                time.sleep(lat / 1000.0)
            wait, rl_headers = sim._rate_limit()
            if wait is not None:
                entry["status"] = 429
                return self._send(429, _j({"message": "Rate limit exceeded."}), headers=rl_headers)
            q = parse_qs(urlsplit(self.path).query)
            fault = sim._decide_fault(method, self.path, entry["attempt"], bool(q.get("page-token")))
            if fault:
                kind, status, v = fault
                if kind == "stale":
                    entry["status"] = status
                    msg = "Invalid page-token." if status == 400 else "Not found"
                    return self._send(status, _j({"message": msg}), headers=rl_headers)
                if kind in ("5xx", "html"):
                    code = (500, 502, 503)[int(v * 3) % 3]
                    entry["status"] = code
                    if kind == "html" or v * 6 % 1 < 0.5:
                        return self._send(code, HTML_PAGES[code], "text/html")
                    return self._send(code, _j({"message": "Internal Server Error"}))
                if kind == "reset":
                    entry["status"] = 0
                    self.close_connection = True
                    try:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if kind == "throttle":
                    entry["status"] = 429
                    mode = sim.faults.retry_after_mode
                    hdrs = [("Retry-After", "1")] if mode == "seconds" else ([("RateLimit-Reset", "1")] if mode == "reset-only" else [])
                    return self._send(429, _j({"message": "Rate limit exceeded."}), headers=hdrs)
                if kind == "slow":
                    time.sleep(sim.faults.slow_seconds)
                if kind == "non_json":
                    entry["status"] = 200
                    return self._send(200, b"<html><body><h1>CircleCI</h1><p>Something went wrong.</p></body></html>",
                                      "text/html", headers=rl_headers)
            try:
                payload = sim.route(method, self.path, self.headers)
                status = 200
            except ApiError as e:
                status, payload = e.status, _j(e.body)
            if fault and fault[0] == "truncated" and status == 200:
                payload = payload[: max(1, len(payload) // 2)]
            entry["status"] = status
            self._send(status, payload, headers=rl_headers)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as e:  # never kill the server thread silently
            try:
                self._send(500, _j({"message": f"simulator error: {type(e).__name__}: {e}"}))
            except Exception:
                self.close_connection = True

    def _admin(self, method, path, body):
        sim = self.simulator
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return self._send(400, _j({"message": "invalid JSON"}))
        if method == "GET" and path == "/_sim/truth":
            return self._send(200, _j(sim.truth()))
        if method == "GET" and path == "/_sim/requests":
            return self._send(200, _j(sim.request_log()))
        if method == "GET" and path == "/_sim/stats":
            return self._send(200, _j(sim.stats()))
        if method == "GET" and path == "/_sim/faults":
            return self._send(200, _j(sim.faults.to_dict()))
        if method == "POST" and path == "/_sim/reset_requests":
            sim.reset_request_log()
            return self._send(200, _j({"ok": True}))
        if method == "POST" and path == "/_sim/activity":
            ids = sim.add_activity(int(data.get("pipelines", 5)))
            return self._send(200, _j({"ok": True, "pipeline_ids": ids}))
        if method == "POST" and path == "/_sim/finish":
            n = sim.finish_running()
            return self._send(200, _j({"ok": True, "finished_workflows": n}))
        if method == "POST" and path == "/_sim/faults":
            try:
                sim.set_faults(Faults.from_dict(data))
            except (TypeError, ValueError) as e:
                return self._send(400, _j({"message": str(e)}))
            return self._send(200, _j({"ok": True}))
        return self._send(404, _j({"message": "Not found"}))
