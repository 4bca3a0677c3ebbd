"""The FastAPI app mounted at ``/cloudmarker``: JSON API v1, the pages of the tabs, and their assets.

Airflow does not authenticate a plugin's app: every route here depends on Airflow's own
``get_user`` (the UI's ``_token`` cookie or an API bearer token; 401 without one), and every route
about one audit on ``requires_access_dag("GET")`` for the audit's DAG (403 without read access).
The audits overview lists only the DAGs the auth manager lets the user read, so a user sees
neither the findings nor the name of an audit they may not read.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep, get_user, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from airflow_cloudmarker import findings
from airflow_cloudmarker import records as rec
from airflow_cloudmarker.ui import pages
from airflow_cloudmarker.ui import state as st

STATIC = {"cloudmarker.css": "text/css; charset=utf-8", "cloudmarker.js": "text/javascript; charset=utf-8"}
DEFAULT_RUNS = 30


def readable_dag_ids(user) -> set[str]:
    """The DAG ids the auth manager lets ``user`` read."""
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def audit_state(dag_id: str) -> st.AuditState:
    """The audit's state; 404 when the audit has none (never run, or not an audit)."""
    state = st.AuditState.read(findings.state_base_url(), dag_id)
    if not state.head and not state.damaged:
        raise HTTPException(404, f"no findings state for audit {dag_id!r} (not an audit, or never run)")
    return state


def checked_query(status: str, severity: str, q: str, sort: str, limit: int, offset: int):
    """The findings query of the request's parameters; 400 naming the bad parameter."""
    try:
        return st.build_query(status, severity, q, sort, limit, offset)
    except st.BadQuery as error:
        raise HTTPException(400, str(error)) from None


router = APIRouter(dependencies=[Depends(get_user)])
read_dag = [Depends(requires_access_dag(method="GET"))]
Status = Annotated[str, Query(description="new, open (comma-separated)")]
Limit = Annotated[int, Query()]


def visible_audits(user) -> list[st.AuditState]:
    """The states of the audits with findings that ``user`` may read (their DAG), by key."""
    readable = readable_dag_ids(user)
    base = findings.state_base_url()
    return [st.AuditState.read(base, key) for key in st.audit_keys(base) if key in readable]


@router.get("/api/v1/audits")
def audits(user: GetUserDep) -> dict:
    """``GET /api/v1/audits``: every readable audit's open findings by severity, and its latest run."""
    return {"audits": [a.overview() for a in visible_audits(user)]}


@router.get("/api/v1/audits/{dag_id}/findings", dependencies=read_dag)
def audit_findings(
    dag_id: str,
    status: Status = "",
    severity: str = "",
    q: str = "",
    sort: str = "",
    limit: Limit = 50,
    offset: int = 0,
) -> dict:
    """``GET /api/v1/audits/{audit}/findings``: one page of the audit's open findings, filtered and sorted."""
    query = checked_query(status, severity, q, sort, limit, offset)
    total, rows = audit_state(dag_id).page(query)
    return {
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "findings": [st.with_link(r) for r in rows],
    }


@router.get("/api/v1/audits/{dag_id}/findings.csv", dependencies=read_dag)
def export_csv(dag_id: str, status: Status = "", severity: str = "", q: str = "") -> StreamingResponse:
    """The filtered open findings as CSV (every match, streamed)."""
    query = checked_query(status, severity, q, "", 0, 0)
    rows = audit_state(dag_id).export(query)
    headers = {"Content-Disposition": f'attachment; filename="{dag_id}-findings.csv"'}
    return StreamingResponse(st.csv_lines(rows), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/api/v1/audits/{dag_id}/findings.json", dependencies=read_dag)
def export_json(dag_id: str, status: Status = "", severity: str = "", q: str = "") -> StreamingResponse:
    """The filtered open findings as one JSON array (every match, streamed)."""
    query = checked_query(status, severity, q, "", 0, 0)
    rows = audit_state(dag_id).export(query)
    headers = {"Content-Disposition": f'attachment; filename="{dag_id}-findings.json"'}
    return StreamingResponse(_json_array(rows), media_type="application/json", headers=headers)


@router.get("/api/v1/audits/{dag_id}/runs", dependencies=read_dag)
def audit_runs(dag_id: str, limit: Limit = DEFAULT_RUNS) -> dict:
    """``GET /api/v1/audits/{audit}/runs``: per run, newest first, new, open and resolved counts."""
    if not 0 <= limit <= st.MAX_LIMIT:
        raise HTTPException(400, f"limit must be between 0 and {st.MAX_LIMIT}, not {limit}")
    return {"runs": [st.run_line(r) for r in audit_state(dag_id).runs(limit)]}


@router.get("/api/v1/audits/{dag_id}/runs/{run_id}/changes", dependencies=read_dag)
def run_changes(dag_id: str, run_id: str, status: Status = "", limit: Limit = 50, offset: int = 0) -> dict:
    """What one run opened (``new``) and ``resolved``, a page at a time."""
    query = checked_query(status, "", "", "", limit, offset)
    summary, rows = audit_state(dag_id).changes(run_id)
    if summary is None:
        raise HTTPException(404, f"no findings recorded for run {run_id!r} of audit {dag_id!r}")
    total, found = st.index.page(rows, query)
    return {"run": st.run_line(summary), "total": total, "findings": [st.with_link(r) for r in found]}


# -- pages (the iframes of the Airflow UI's tabs) ----------------------------------------------
@router.get("/", response_class=HTMLResponse)
def overview_page(user: GetUserDep) -> str:
    """The Cloudmarker navigation page."""
    return pages.overview([a.overview() for a in visible_audits(user)])


@router.get("/audit", response_class=HTMLResponse, dependencies=read_dag)
def audit_page(
    dag_id: str,
    severity: Annotated[list[str] | None, Query()] = None,  # the form's checkboxes: severity=high&severity=low
    status: str = "",
    q: str = "",
    sort: str = "",
    offset: int = 0,
) -> str:
    """The Findings tab of a DAG (``?dag_id=``): counts, chart, the filterable table."""
    state = st.AuditState.read(findings.state_base_url(), dag_id)
    try:
        query = st.build_query(status, ",".join(severity or []), q, sort, 50, offset)
    except st.BadQuery as error:
        return pages.message(dag_id, str(error))
    if not state.summary:
        return pages.message(dag_id, state.damaged or "No findings yet: this DAG is not an audit, or it has not run.")
    total, rows = state.page(query)
    return pages.audit(state.overview(), [st.with_link(r) for r in rows], total, query, state.runs(DEFAULT_RUNS))


@router.get("/run", response_class=HTMLResponse, dependencies=read_dag)
def run_page(dag_id: str, run_id: str = "", offset: int = 0) -> str:
    """The Changes tab of a DAG run (``?dag_id=&run_id=``)."""
    state = st.AuditState.read(findings.state_base_url(), dag_id)
    summary, rows = state.changes(run_id)
    if summary is None:
        return pages.message(dag_id, "No findings were recorded for this run (it has not reached its findings task).")
    total, found = st.index.page(rows, st.build_query(limit=pages.CHANGES_PAGE, offset=max(offset, 0)))
    return pages.changes(dag_id, st.run_line(summary), [st.with_link(r) for r in found], total, max(offset, 0))


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The pages' stylesheet and script, shipped in the package (behind the same login)."""
    if name not in STATIC:
        raise HTTPException(404, "not found")
    data = resources.files("airflow_cloudmarker.ui").joinpath("static", name).read_bytes()
    return Response(data, media_type=STATIC[name], headers={"Cache-Control": "private, max-age=300"})


def create_app() -> FastAPI:
    """The app the plugin mounts at ``/cloudmarker`` (built in the API server only).

    ``get_user`` guards the app and each route: a route without Airflow's dependency would be
    served to anyone (Airflow does not authenticate a plugin's app).
    """
    app = FastAPI(
        title="Cloudmarker findings",
        version="1",
        dependencies=[Depends(get_user)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    return app


def _json_array(rows):
    """A JSON array written one finding at a time, so an export of any size streams."""
    yield b"["
    for number, line in enumerate(rows):
        yield (b"," if number else b"") + rec.dumps(st.with_link(line))
    yield b"]"
