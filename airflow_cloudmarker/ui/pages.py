"""The HTML of the tabs: plain server-rendered pages, forms for filters, an inline SVG chart, no CDN.

Every value from the state is escaped. Links to Airflow's own pages target ``_top`` (the pages are
iframes inside the Airflow UI); relative links stay in the plugin's app (``/cloudmarker/``).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from airflow_cloudmarker.util import SEVERITIES

if TYPE_CHECKING:
    from airflow_cloudmarker.findings_index import Query, RunSummary

CHANGES_PAGE = 200
SORTS = (
    ("severity", "Most severe first"),
    ("-severity", "Least severe first"),
    ("-first_seen", "Newest first seen"),
    ("first_seen", "Oldest first seen"),
    ("-last_seen", "Last seen, latest first"),
    ("record_type", "Record type"),
    ("reference", "Reference"),
    ("status", "Status"),
)
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 200, 32


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="stylesheet" href="static/cloudmarker.css">'
        '<script src="static/cloudmarker.js" defer></script>'
        f"</head><body><main>{body}</main></body></html>"
    )


def message(dag_id: str, text: str) -> str:
    """A page that only says why there is nothing to show."""
    return _document(f"Findings of {dag_id}", f'<h1>Findings of {_e(dag_id)}</h1><p class="note">{_e(text)}</p>')


def _dag_link(dag_id: str, label: str, tab: str = "plugin/cloudmarker-findings") -> str:
    return f'<a href="../dags/{quote(dag_id, safe="")}/{tab}" target="_top">{_e(label)}</a>'


def _severity_cells(by_severity: dict) -> str:
    return "".join(f'<td class="num sev-{s}">{by_severity.get(s, 0)}</td>' for s in SEVERITIES)


def overview(audits: list[dict]) -> str:
    """The Cloudmarker navigation page: every readable audit at a glance."""
    heads = "".join(f'<th scope="col" class="num">{s.capitalize()}</th>' for s in SEVERITIES)
    lines = []
    for a in audits:
        latest = a["latest_run"] or {}
        lines.append(
            f"<tr><th scope='row'>{_dag_link(a['audit'], a['audit'])}</th><td class='num'>{a['open']}</td>"
            f"{_severity_cells(a['by_severity'])}<td class='num'>{a['new']}</td><td class='num'>{a['resolved']}</td>"
            f"<td class='num'>{a['muted']}</td><td>{_e(_short_time(latest.get('time')))}"
            f"{' <strong>damaged state</strong>' if a.get('damaged') else ''}</td></tr>"
        )
    table = (
        '<table><caption>Open findings by audit (latest run)</caption><thead><tr><th scope="col">Audit</th>'
        f'<th scope="col" class="num">Open</th>{heads}<th scope="col" class="num">New</th>'
        '<th scope="col" class="num">Resolved</th><th scope="col" class="num">Muted</th>'
        f'<th scope="col">Latest run</th></tr></thead><tbody>{"".join(lines)}</tbody></table>'
    )
    empty = '<p class="note">No audit you may read has findings yet.</p>'
    return _document("Cloudmarker", f"<h1>Cloudmarker audits</h1>{table if audits else empty}")


def _short_time(value: object) -> str:
    """``2026-12-01T09:55:51.123+00:00`` -> ``2026-12-01 09:55 UTC`` (times in the state are UTC)."""
    text = str(value or "")
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 else text


def _cards(overview_line: dict) -> str:
    cards = [("Open", overview_line["open"], "open"), ("New", overview_line["new"], "new")]
    cards += [("Resolved", overview_line["resolved"], "resolved"), ("Muted", overview_line["muted"], "muted")]
    cards += [(s.capitalize(), overview_line["by_severity"][s], f"sev-{s}") for s in SEVERITIES]
    items = "".join(
        f'<li class="card card-{cls}"><span class="label">{label}</span> '
        f'<span class="count" data-count="{cls}">{n}</span></li>'
        for label, n, cls in cards
    )
    return f'<ul class="cards" aria-label="Counts of the latest run">{items}</ul>'


def chart(runs: list[RunSummary]) -> str:
    """New and resolved findings per run (bars) and open findings (a line), oldest run left, as inline SVG."""
    runs = list(reversed(runs))  # oldest first
    if not runs:
        return ""
    top = max([1, *(max(r.total_open, r.new, r.resolved) for r in runs)])
    width = (CHART_WIDTH - 2 * CHART_PAD) / len(runs)
    bar = min(24.0, max(1.0, width / 3))

    def y(n: int) -> float:
        return CHART_HEIGHT - CHART_PAD - n * (CHART_HEIGHT - 2 * CHART_PAD) / top

    parts, points = [], []
    for i, r in enumerate(runs):
        x = CHART_PAD + i * width + width / 2
        parts.append(_bar("bar-new", x - bar, bar, y(r.new), y(0), f"{r.run_id}: {r.new} new"))
        parts.append(_bar("bar-resolved", x, bar, y(r.resolved), y(0), f"{r.run_id}: {r.resolved} resolved"))
        points.append(f"{x:.1f},{y(r.total_open):.1f}")
        parts.append(
            f'<circle class="dot-open" cx="{x:.1f}" cy="{y(r.total_open):.1f}" r="3">'
            f"<title>{_e(r.run_id)}: {r.total_open} open</title></circle>"
        )
    axis = (
        f'<line class="axis" x1="{CHART_PAD}" y1="{y(0):.1f}" x2="{CHART_WIDTH - CHART_PAD}" y2="{y(0):.1f}"/>'
        f'<text class="tick" x="4" y="{y(top) + 4:.1f}">{top}</text>'
        f'<text class="tick" x="4" y="{y(0) + 4:.1f}">0</text>'
    )
    line = f'<polyline class="line-open" fill="none" points="{" ".join(points)}"/>'
    legend = (
        '<p class="legend"><span class="key bar-new"></span> new <span class="key bar-resolved"></span> resolved '
        '<span class="key line-open"></span> open</p>'
    )
    label = f"New, resolved and open findings over the last {len(runs)} runs"
    text_alt = "; ".join(f"{r.run_id}: {r.new} new, {r.resolved} resolved, {r.total_open} open" for r in runs)
    return (
        '<figure class="chart"><svg role="img" aria-labelledby="chart-title chart-desc" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f'<title id="chart-title">{label}</title><desc id="chart-desc">{_e(text_alt)}</desc>'
        f"{axis}{''.join(parts)}{line}</svg><figcaption>{label}</figcaption>{legend}</figure>"
    )


def _bar(cls: str, x: float, width: float, top: float, bottom: float, title: str) -> str:
    return (
        f'<rect class="{cls}" x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{bottom - top:.1f}">'
        f"<title>{_e(title)}</title></rect>"
    )


def _on(condition: bool, attribute: str) -> str:
    return f" {attribute}" if condition else ""


def _filters(dag_id: str, query: Query) -> str:
    severities = "".join(
        f'<label><input type="checkbox" name="severity" value="{s}"{_on(s in query.severities, "checked")}> {s}</label>'
        for s in SEVERITIES
    )
    statuses = "".join(
        f'<option value="{v}"{_on(set(filter(None, v.split(","))) == set(query.statuses), "selected")}>{label}</option>'
        for v, label in (("", "new and open"), ("new", "new"), ("open", "open"))
    )
    sorts = "".join(f'<option value="{v}"{_on(v == query.sort, "selected")}>{label}</option>' for v, label in SORTS)
    return (
        '<form class="filters" method="get" action="audit" role="search">'
        f'<input type="hidden" name="dag_id" value="{_e(dag_id)}">'
        f"<fieldset><legend>Severity</legend>{severities}</fieldset>"
        f'<label>Status <select name="status">{statuses}</select></label>'
        f'<label>Search <input type="search" name="q" value="{_e(query.q)}" '
        'placeholder="reference, description, id"></label>'
        f'<label>Sort <select name="sort">{sorts}</select></label><button type="submit">Apply</button></form>'
    )


def _params(dag_id: str, query: Query, **extra: object) -> dict:
    params = {"dag_id": dag_id, "status": ",".join(sorted(query.statuses)), "severity": ",".join(query.severities)}
    params.update({"q": query.q, "sort": query.sort if query.sort != "severity" else ""})
    params.update(extra)
    return {k: v for k, v in params.items() if v not in ("", None)}


def _row(line: dict) -> str:
    reference = _e(line.get("reference"))
    if line.get("console_url"):
        reference = f'<a href="{_e(line["console_url"])}" target="_blank" rel="noopener noreferrer">{reference}</a>'
    muted = f' <span class="muted" title="{_e(line.get("mute_reason"))}">muted</span>' if line.get("muted") else ""
    return (
        f'<tr><td><span class="badge sev-{_e(line["severity"])}">{_e(line["severity"])}</span></td>'
        f'<td>{_e(line["status"])}{muted}</td><td>{_e(line.get("record_type"))}</td><td class="ref">{reference}</td>'
        f"<td>{_e(line.get('description'))}<div class='rec'>{_e(line.get('recommendation'))}</div></td>"
        f"<td>{_e(line.get('cloud'))}</td><td>{_e(_short_time(line.get('first_seen')))}</td>"
        f"<td>{_e(_short_time(line.get('last_seen') or line.get('resolved_at')))}</td></tr>"
    )


def _table(rows: list[dict], caption: str) -> str:
    heads = ("Severity", "Status", "Record type", "Reference", "Description", "Cloud", "First seen", "Last seen")
    head = "".join(f'<th scope="col">{h}</th>' for h in heads)
    body = "".join(_row(r) for r in rows) or f'<tr><td colspan="{len(heads)}">No findings match.</td></tr>'
    return (
        f'<table class="findings"><caption>{_e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _pager(base: str, params: dict, offset: int, shown: int, total: int, size: int) -> str:
    links = []
    if offset > 0:
        links.append(f'<a href="{base}?{_e(urlencode({**params, "offset": max(0, offset - size)}))}">Previous</a>')
    if offset + shown < total:
        links.append(f'<a href="{base}?{_e(urlencode({**params, "offset": offset + size}))}">Next</a>')
    where = f"{offset + 1}–{offset + shown} of {total}" if shown else f"0 of {total}"
    return f'<nav class="pager" aria-label="Pages"><span>{where}</span> {" ".join(links)}</nav>'


def audit(overview_line: dict, rows: list[dict], total: int, query: Query, runs: list[RunSummary]) -> str:
    """The Findings tab of an audit DAG: counts, chart, filters, the table, its pages and the exports."""
    dag_id = overview_line["audit"]
    params = _params(dag_id, query)
    export = urlencode({k: v for k, v in params.items() if k in ("status", "severity", "q")})
    audit_path = quote(dag_id, safe="")
    exports = (
        f"<p class='exports'>Export these {total} findings: "
        f'<a href="api/v1/audits/{audit_path}/findings.csv?{_e(export)}" download>CSV</a>'
        f' · <a href="api/v1/audits/{audit_path}/findings.json?{_e(export)}" download>JSON</a></p>'
    )
    latest = overview_line["latest_run"] or {}
    body = (
        f"<h1>Findings of {_e(dag_id)}</h1><p class='note'>Latest run {_e(latest.get('run_id'))}, "
        f"{_e(_short_time(latest.get('time')))}</p>{_cards(overview_line)}{chart(runs)}{_filters(dag_id, query)}"
        f"{exports}{_table(rows, f'{total} open findings')}"
        f"{_pager('audit', params, query.offset, len(rows), total, query.limit)}"
    )
    return _document(f"Findings of {dag_id}", body)


def changes(dag_id: str, run: dict, rows: list[dict], total: int, offset: int) -> str:
    """The Changes tab of an audit run: what the run opened and what it resolved."""
    body = (
        f"<h1>Changes in run {_e(run['run_id'])}</h1><p class='note'>{_e(_short_time(run['time']))}: "
        f"{run['new']} new, {run['resolved']} resolved, {run['open']} open after the run. "
        f"{_dag_link(dag_id, 'All findings of ' + dag_id)}</p>"
        f"{_table(rows, f'{total} findings opened or resolved by this run')}"
        f"{_pager('run', {'dag_id': dag_id, 'run_id': run['run_id']}, offset, len(rows), total, CHANGES_PAGE)}"
    )
    return _document(f"Changes in {run['run_id']}", body)
