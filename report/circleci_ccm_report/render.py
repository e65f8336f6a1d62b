"""The report as one HTML page: CSS, script and charts inline, nothing fetched from anywhere.

The page works without its script (project detail opens through the URL fragment and CSS :target, and printing
shows every project on its own page); the script only adds a matrix filter and moves focus for keyboard users.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from importlib import resources
from typing import Any, Iterable, Optional

from .model import STATUSES, Control, Project, ProjectControl, Report
from .queries import TABLE_DIGEST_SQL, Result

LABELS = {"pass": "✓ pass", "fail": "✗ fail", "unknown": "? unknown", "not_applicable": "– n/a"}
# History marks: a glyph per status, coloured by a one-letter class (thousands of them: every byte counts).
HISTORY_MARKS = {"pass": ("✓", "p"), "fail": ("✗", "f"), "unknown": ("?", "u"), "not_applicable": ("–", "n")}
# Evidence items shown per control in a project's detail (the rest is counted; the warehouse holds them all):
# three keep a 1,000-project report under 10 MB.
EVIDENCE_ITEMS = 3


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render(report: Report, source: str) -> str:
    body = "".join([
        _header(report, source),
        "<main>",
        _summary(report),
        _matrix(report),
        _details(report),
        _exceptions(report),
        _trend(report),
        _integrity(report),
        "</main>",
    ])
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>CircleCI evidence report</title>"
        f"<style>{_asset('report.css')}</style></head><body>{body}"
        f"<script>{_asset('report.js')}</script></body></html>"
    )


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# --- shared pieces ---------------------------------------------------------------------------------------
def _section(anchor: str, title: str, content: str) -> str:
    return f"<section id=\"{anchor}\" aria-labelledby=\"{anchor}-h\"><h2 id=\"{anchor}-h\">{e(title)}</h2>{content}</section>"


def _missing(streams: Iterable[str]) -> str:
    names = ", ".join(f"<code>{e(s)}</code>" for s in streams)
    return (f"<p class=\"missing\">Not in this warehouse: the stream(s) {names} were not synced. "
            "Select them in the connection (make sync selects every stream) to fill this part.</p>")


def _table(headers: list[str], rows: Iterable[list[str]], caption: str = "", css: str = "") -> str:
    head = "".join(f"<th scope=\"col\">{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f"<div class=\"scroll\"><table class=\"{css}\">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _status(status: str) -> str:
    return f"<span class=\"s s-{e(status)}\">{e(LABELS.get(status, status))}</span>"


def _when(value: Optional[datetime | date]) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return f"<time datetime=\"{value.isoformat()}\">{value:%Y-%m-%d %H:%M} UTC</time>"
    return f"<time datetime=\"{value.isoformat()}\">{value:%Y-%m-%d}</time>"


def _project_anchor(index: int) -> str:
    return f"p-{index}"


# --- header and summary ----------------------------------------------------------------------------------
def _header(report: Report, source: str) -> str:
    links = "".join(
        f"<li><a href=\"#{anchor}\">{title}</a></li>"
        for anchor, title in (("summary", "Summary"), ("matrix", "Matrix"), ("projects", "Project detail"),
                              ("exceptions", "Exceptions"), ("trend", "Trend"), ("integrity", "Integrity"))
    )
    return (
        "<a class=\"skip\" href=\"#matrix\">Skip to the project × control matrix</a>"
        "<header><h1>CircleCI evidence report</h1>"
        f"<p class=\"meta\">Generated {_when(report.generated_at)} from <code>{e(source)}</code>.</p>"
        f"<nav aria-label=\"Sections\"><ul>{links}</ul></nav></header>"
    )


def _summary(report: Report) -> str:
    if report.rollup_missing:
        return _section("summary", "Summary", _scope(report) + _missing(report.rollup_missing))
    rows = [
        [f"<code>{e(c.control_id)}</code>", *(str(c.counts.get(s, 0)) for s in STATUSES), _bar(c), _frameworks(c)]
        for c in report.controls
    ]
    table = _table(["Control", "Pass", "Fail", "Unknown", "Not applicable", "Share", "Frameworks"], rows,
                   f"Projects per status, from each project's roll-up ({len(report.projects)} projects)", "summary")
    return _section("summary", "Summary", _scope(report) + table)


def _scope(report: Report) -> str:
    orgs = (_missing(report.organisations.missing) if report.organisations.missing else
            ", ".join(f"{e(r['name'])} (<code>{e(r['slug'])}</code>)" for r in report.organisations.rows) or "none")
    if report.period.missing:
        period = _missing(report.period.missing)
    else:
        row = report.period.rows[0]
        period = f"{_when(row['first'])} to {_when(row['last'])} ({row['pipelines']:,} pipelines)"
    since = f" (limited with --since {report.since.isoformat()})" if report.since else ""
    items = [
        ("Organisations", orgs),
        ("Period covered", period + since),
        ("Data synced", _when(report.synced_at)),
        ("Control catalogue", ", ".join(e(v) for v in report.catalogue_versions) or "—"),
        ("Connector", e(report.connector_version or "not installed here")),
    ]
    return "<dl class=\"facts\">" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _bar(control: Control) -> str:
    """Proportions of the four statuses as one stacked SVG bar; the numbers are in the cells beside it."""
    total = sum(control.counts.values()) or 1
    x, rects = 0.0, []
    for status in STATUSES:
        width = 120 * control.counts.get(status, 0) / total
        if width:
            rects.append(f"<rect class=\"b-{status}\" x=\"{x:.1f}\" width=\"{width:.1f}\" height=\"12\"/>")
        x += width
    label = ", ".join(f"{control.counts.get(s, 0)} {s.replace('_', ' ')}" for s in STATUSES)
    return f"<svg class=\"bar\" viewBox=\"0 0 120 12\" width=\"120\" height=\"12\" role=\"img\" aria-label=\"{e(label)}\">{''.join(rects)}</svg>"


def _frameworks(control: Control) -> str:
    return "<br>".join(f"<abbr title=\"{e(f.get('title'))}\">{e(f.get('framework'))} {e(f.get('id'))}</abbr>"
                       for f in control.frameworks)


# --- matrix ----------------------------------------------------------------------------------------------
def _matrix(report: Report) -> str:
    if report.rollup_missing:
        return _section("matrix", "Project × control matrix", _missing(report.rollup_missing))
    controls = [c.control_id for c in report.controls]
    head = "<th scope=\"col\" class=\"project-col\">Project</th>" + "".join(
        f"<th scope=\"col\" class=\"control-col\"><span>{e(c)}</span></th>" for c in controls)
    rows = []
    for index, project in enumerate(report.projects):
        cells = "".join(_matrix_cell(project.controls.get(c)) for c in controls)
        rows.append(f"<tr data-project=\"{e(project.slug)}\"><th scope=\"row\"><a href=\"#{_project_anchor(index)}\">{e(project.name)}</a></th>{cells}</tr>")
    legend = "<p class=\"legend\">" + " ".join(_status(s) for s in STATUSES) + \
             " — each cell is the project's roll-up (its newest evaluated pipeline on the default branch, or its settings). Select a project for its evidence.</p>"
    search = ("<p class=\"filter\" hidden><label for=\"filter\">Filter projects</label> "
              "<input id=\"filter\" type=\"search\" autocomplete=\"off\"></p>")
    table = (f"<div class=\"scroll\"><table class=\"matrix\"><caption>{len(report.projects)} projects × {len(controls)} controls</caption>"
             f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return _section("matrix", "Project × control matrix", legend + search + table)


def _matrix_cell(control: Optional[ProjectControl]) -> str:
    if control is None:
        return "<td class=\"s-none\">no result</td>"
    return f"<td class=\"s-{e(control.status)}\">{e(LABELS.get(control.status, control.status))}</td>"


# --- project detail --------------------------------------------------------------------------------------
def _details(report: Report) -> str:
    if report.rollup_missing:
        return _section("projects", "Project detail", _missing(report.rollup_missing))
    hint = "<p class=\"hint\">Select a project in the matrix to see its evidence. Printing shows every project, one per page.</p>"
    articles = "".join(_project(report, index, project) for index, project in enumerate(report.projects))
    return _section("projects", "Project detail", hint + articles)


def _project(report: Report, index: int, project: Project) -> str:
    anchor = _project_anchor(index)
    rows = [_control_row(control) for _, control in sorted(project.controls.items())]
    table = _table(["Control", "Status", "Evidence", "History (oldest → newest)"], rows, "", "evidence")
    return (
        f"<article class=\"project\" id=\"{anchor}\" aria-labelledby=\"{anchor}-h\">"
        f"<h3 id=\"{anchor}-h\" tabindex=\"-1\">{e(project.name)}</h3><p class=\"slug\"><code>{e(project.slug)}</code></p>"
        f"{_pipeline(report, project)}{_approvals(report, project)}{table}"
        f"<p class=\"back\"><a href=\"#matrix\">Back to the matrix</a></p></article>"
    )


def _pipeline(report: Report, project: Project) -> str:
    if report.pipelines_missing:
        return _missing(report.pipelines_missing)
    p = project.pipeline
    if p is None:
        return "<p>No evaluated pipeline on the default branch (see the reasons below).</p>"
    return (
        "<dl class=\"facts\"><dt>Latest evaluated pipeline</dt>"
        f"<dd>#{e(p['number'])} on <code>{e(p['branch'])}</code>, {_when(p['created_at'])}, {e(p['state'])}</dd>"
        f"<dt>Triggered by</dt><dd>{e(p['triggered_by'] or '—')}</dd>"
        f"<dt>Revision</dt><dd><code>{e((p['revision'] or '—')[:12])}</code></dd></dl>"
    )


def _approvals(report: Report, project: Project) -> str:
    if report.approvals_missing:
        return "<h4>Approvals</h4>" + _missing(report.approvals_missing)
    if project.pipeline is None:
        return ""
    if not project.approvals:
        return "<h4>Approvals</h4><p>No approval job in this pipeline.</p>"
    rows = [[e(a["job"]), e(a["status"]), e(a["approver"] or "not approved"), _when(a["approved_at"])] for a in project.approvals]
    return "<h4>Approvals</h4>" + _table(["Hold job", "Status", "Approved by", "When"], rows)


def _control_row(control: ProjectControl) -> list[str]:
    required = " <span class=\"req\">required</span>" if control.required else ""
    reason = f"<p class=\"reason\">{e(control.reason)}</p>" if control.reason else ""
    return [f"<code>{e(control.control_id)}</code>{required}", _status(control.status),
            reason + _evidence(control.evidence), _history(control.history)]


def _evidence(items: list[dict[str, Any]]) -> str:
    if not items:
        return ""
    shown = "".join(f"<li>{_evidence_item(item)}</li>" for item in items[:EVIDENCE_ITEMS])
    more = f"<li>and {len(items) - EVIDENCE_ITEMS} more in the warehouse</li>" if len(items) > EVIDENCE_ITEMS else ""
    return f"<ul class=\"ev\">{shown}{more}</ul>"


def _evidence_item(item: dict[str, Any]) -> str:
    parts = [f"<code>{e(item.get('where'))}</code>"]
    for key, label in (("job", "job"), ("step", "step"), ("orb", "orb"), ("rule_id", "rule")):
        if item.get(key):
            parts.append(f"{label} <b>{e(item[key])}</b>")
    if item.get("matched"):
        parts.append(f"matched <q>{e(item['matched'])}</q>")
    ran = item.get("executed")
    if isinstance(ran, dict):
        step = "" if ran.get("step") == item.get("step") else f" step <b>{e(ran.get('step'))}</b>"
        parts.append(f"ran in job #{e(ran.get('job_number'))}{step}: <b>{e(ran.get('status'))}</b>"
                     + (f" ({e(ran['outcome'])})" if ran.get("outcome") else ""))
    return "; ".join(parts)


def _history(history: list[tuple[str, int]]) -> str:
    if not history:
        return "—"
    marks = "".join("<i class={1}>{0}</i>".format(*HISTORY_MARKS.get(s, ("·", "n"))) for s, _ in history)
    label = ", ".join(f"#{n} {s}" for s, n in history)
    return f"<span class=\"hist\" role=\"img\" aria-label=\"{e(label)}\">{marks}</span>"


# --- exceptions ------------------------------------------------------------------------------------------
def _exceptions(report: Report) -> str:
    parts = [
        _exception("Deploys without an approval gate, tests or scans before them", report.failed_deploy_gates,
                   ["Control", "Project", "Pipeline", "Branch", "Triggered by", "When", "Why"],
                   lambda r: [f"<code>{e(r['control_id'])}</code>", e(r["project_slug"]), f"#{e(r['number'])}",
                              f"<code>{e(r['branch'])}</code>", e(r["triggered_by"] or "—"), _when(r["created_at"]), e(r["reason"])]),
        _exception("Contexts that hold secrets without restrictions", report.unrestricted_contexts,
                   ["Organisation", "Context", "Variables"],
                   lambda r: [f"<code>{e(r['org_slug'])}</code>", e(r["name"]), str(r["variables"])]),
        _exception("Projects that pass secrets to fork pull requests", report.fork_secrets,
                   ["Project", "Builds fork PRs"],
                   lambda r: [e(r["project_slug"]), "yes" if r["build_fork_prs"] else "no"]),
        _exception("Skipped or unreadable projects, and why", report.unreadable,
                   ["Project", "Why", "Controls left unknown"],
                   lambda r: [e(r["project_slug"]), e(r["reason"] or "no reason given"), e(r["controls"])]),
    ]
    return _section("exceptions", "Exceptions", "".join(parts))


def _exception(title: str, result: Result, headers: list[str], row) -> str:
    heading = f"<h3>{e(title)}</h3>"
    if result.missing:
        return heading + _missing(result.missing)
    if not result.rows:
        return heading + "<p class=\"none\">None found.</p>"
    total = result.rows[0].get("total", len(result.rows))
    note = (f"<p>The {len(result.rows)} most recent of {total:,}; the warehouse holds them all.</p>"
            if total > len(result.rows) else "")
    return heading + note + _table(headers, (row(r) for r in result.rows))


# --- trend -----------------------------------------------------------------------------------------------
def _trend(report: Report) -> str:
    missing = report.trend_missing or report.rollup_missing
    if missing:
        return _section("trend", "Trend", _missing(missing))
    intro = "<p>Share of pipelines passing each control, per week (not applicable left out).</p>"
    figures = "".join(_trend_figure(c) for c in report.controls if c.trend)
    idle = [c.control_id for c in report.controls if not c.trend]
    note = (f"<p>No pipeline-level results for: {', '.join(f'<code>{e(c)}</code>' for c in idle)} "
            "(project-level controls, or no pipeline in the period).</p>") if idle else ""
    return _section("trend", "Trend", intro + f"<div class=\"trends\">{figures}</div>" + note)


def _trend_figure(control: Control) -> str:
    weeks = [(week, passed / evaluated if evaluated else None) for week, passed, evaluated in control.trend]
    width, height, pad = 220, 64, 4
    step = (width - 2 * pad) / max(len(weeks) - 1, 1)
    points = [(pad + i * step, pad + (height - 2 * pad) * (1 - share)) for i, (_, share) in enumerate(weeks) if share is not None]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f"<circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"2\"/>" for x, y in points)
    first, last = weeks[0], weeks[-1]
    label = (f"{control.control_id}: {_pct(first[1])} in the week of {first[0]:%Y-%m-%d}, "
             f"{_pct(last[1])} in the week of {last[0]:%Y-%m-%d}, over {len(weeks)} weeks")
    svg = (f"<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{e(label)}\">"
           f"<rect class=\"frame\" x=\"0.5\" y=\"0.5\" width=\"{width - 1}\" height=\"{height - 1}\"/>"
           f"<line class=\"mid\" x1=\"0\" x2=\"{width}\" y1=\"{height / 2}\" y2=\"{height / 2}\"/>"
           f"<polyline points=\"{line}\"/>{dots}</svg>")
    caption = f"<code>{e(control.control_id)}</code> {_pct(last[1])} last week ({first[0]:%Y-%m-%d} → {last[0]:%Y-%m-%d})"
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _pct(share: Optional[float]) -> str:
    return "—" if share is None else f"{share:.0%}"


# --- integrity -------------------------------------------------------------------------------------------
def _integrity(report: Report) -> str:
    rows = [[f"<code>{e(d.table)}</code>", f"{d.records:,}", _when(d.synced_at), f"<code class=\"digest\">{e(d.digest)}</code>"]
            for d in report.digests]
    table = _table(["Table", "Records", "Last synced", "SHA-256 of the content"], rows,
                   "Every stream table of the warehouse, as synced", "integrity")
    how = (
        "<p>Each digest covers every row and column of the table (PyAirbyte's <code>_airbyte_*</code> columns "
        "included), independent of row order: each row is serialised with DuckDB's <code>to_json</code> and hashed, "
        "the row hashes are sorted and concatenated, and that text is hashed. Recompute one with DuckDB on the same "
        "file, replacing <code>{table}</code> with the table's name:</p>"
        f"<pre><code>{e(TABLE_DIGEST_SQL)}</code></pre>"
    )
    return _section("integrity", "Integrity", table + how)
