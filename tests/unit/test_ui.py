"""The findings UI's pure logic: the index track() writes, filters, sorts, pages, summaries, CSV, links, pages."""

from __future__ import annotations

import csv
import io

import pytest

from airflow_cloudmarker import findings
from airflow_cloudmarker import findings_index as index
from airflow_cloudmarker.ui import pages, plugin
from airflow_cloudmarker.ui import state as st
from airflow_cloudmarker.ui.links import console_url

SEVERITY_CYCLE = ("high", "low", "critical", "medium")


def events(numbers, muted_ref=None):
    for i in numbers:
        yield {
            "ext": {},
            "com": {
                "cloud_type": "azure",
                "record_type": "fw" if i % 2 else "disk",
                "reference": f"/subscriptions/s/resourceGroups/rg/r{i:03d}",
                "description": f"problem {i}",
                "recommendation": "=HYPERLINK(fix)" if i == 0 else "fix it",
                "severity": SEVERITY_CYCLE[i % 4],
                "cloud_key": "c1",
                "origin_key": "e1",
            },
        }


def track(store, run_id, numbers, day, scope=None):
    out = []
    run_time = f"2026-01-0{day}T00:00:00+00:00"
    findings.track(store, run_id, run_time, events(numbers), scope or findings.Scope(), out.append)
    return out


@pytest.fixture
def audit(tmp_path):
    base = f"file://{tmp_path}"
    store = findings.StateStore(base, "aud")
    track(store, "run1", range(12), 1)
    track(store, "run2", range(4, 16), 2)  # 0-3 resolved, 12-15 new, 4-11 open
    return st.AuditState.read(base, "aud")


def test_the_summary_counts_the_latest_run(audit):
    line = audit.overview()
    assert line["open"] == 12 and line["new"] == 4 and line["resolved"] == 4
    assert line["by_severity"] == {"critical": 3, "high": 3, "medium": 3, "low": 3, "info": 0}
    assert line["latest_run"]["run_id"] == "run2" and audit.indexed


def test_runs_keep_history_newest_first(audit):
    runs = [st.run_line(r) for r in audit.runs(10)]
    assert [(r["run_id"], r["new"], r["open"], r["resolved"]) for r in runs] == [
        ("run2", 4, 12, 4),
        ("run1", 12, 12, 0),
    ]
    assert audit.runs(1)[0].run_id == "run2" and audit.runs(0) == []


def test_a_retried_run_replaces_its_history_line(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "aud")
    track(store, "run1", range(3), 1)
    track(store, "run1", range(3), 1)
    assert [r.run_id for r in index.read_runs(store._path)] == ["run1"]


def test_the_first_page_is_read_in_severity_order_without_filters(audit):
    total, rows = audit.page(st.build_query(limit=5))
    assert total == 12 and [r["severity"] for r in rows] == ["critical"] * 3 + ["high"] * 2
    total, rows = audit.page(st.build_query(limit=5, offset=5))
    assert [r["severity"] for r in rows] == ["high", "medium", "medium", "medium", "low"]
    total, rows = audit.page(st.build_query(severity="low,medium", limit=50, offset=4))
    assert total == 6 and [r["severity"] for r in rows] == ["low", "low"]


def test_status_text_and_sort(audit):
    total, rows = audit.page(st.build_query(status="new"))
    assert total == 4 and {r["reference"][-3:] for r in rows} == {"012", "013", "014", "015"}
    total, rows = audit.page(st.build_query(q="R007"))  # case-insensitive, over reference and description
    assert total == 1 and rows[0]["description"] == "problem 7"
    total, rows = audit.page(st.build_query(sort="-reference", limit=3, offset=1))
    assert total == 12 and [r["reference"][-3:] for r in rows] == ["014", "013", "012"]
    total, rows = audit.page(st.build_query(sort="reference", limit=2))
    assert [r["reference"][-3:] for r in rows] == ["004", "005"]
    total, rows = audit.page(st.build_query(sort="-severity", limit=3))
    assert [r["severity"] for r in rows] == ["low"] * 3


def test_the_heap_order_equals_a_full_sort():
    rows = [{"id": str(i), "reference": f"r{(i * 7) % 10}", "severity": "low", "status": "open"} for i in range(40)]
    for sort in ("reference", "-reference", "id", "-id"):
        name, descending = index.parse_sort(sort)
        # ties keep the index order in both directions
        expected = [r for key in sorted({r[name] for r in rows}, reverse=descending) for r in rows if r[name] == key]
        for offset in (0, 7, 35):
            total, found = index.page(iter(rows), index.Query(sort=sort, limit=5, offset=offset))
            assert total == 40 and found == expected[offset : offset + 5], (sort, offset)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "colour"}, "sort must be one of"),
        ({"severity": "urgent"}, "severity takes critical, high"),
        ({"status": "closed"}, "status takes new, open, resolved"),
        ({"limit": 5000}, "limit must be between 0 and 1000"),
        ({"offset": -1}, "offset must be 0 or more"),
    ],
)
def test_bad_parameters_are_refused_with_the_fix(params, message):
    with pytest.raises(st.BadQuery, match=message):
        st.build_query(**params)


def test_changes_of_a_run(audit):
    summary, rows = audit.changes("run2")
    rows = list(rows)
    assert summary.new == 4 and sorted(r["status"] for r in rows) == ["new"] * 4 + ["resolved"] * 4
    assert all(r["resolved_at"] == "2026-01-02T00:00:00+00:00" for r in rows if r["status"] == "resolved")
    assert audit.changes("never")[0] is None


def test_carried_findings_stay_open_in_the_index(tmp_path):
    base = f"file://{tmp_path}"
    store = findings.StateStore(base, "aud")
    track(store, "run1", range(4), 1)
    track(store, "run2", [], 2, findings.Scope(failed_clouds={"c1"}))
    state = st.AuditState.read(base, "aud")
    total, rows = state.page(st.build_query())
    assert total == 4 and all(r["carried"] and r["status"] == "open" for r in rows)
    assert state.overview()["resolved"] == 0


def test_old_snapshot_indexes_are_pruned(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "aud")
    for day in range(1, 5):
        track(store, f"run{day}", range(3), day)
    kept = {p.name for p in (tmp_path / "aud" / "index" / "snapshots").iterdir()}
    snapshots = {p.name.removesuffix(".jsonl") for p in (tmp_path / "aud").glob("*.jsonl")}
    assert kept == snapshots and len(kept) == 2


def test_a_state_without_index_is_read_from_its_snapshot(audit, tmp_path):
    for path in sorted((tmp_path / "aud" / "index").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    state = st.AuditState.read(f"file://{tmp_path}", "aud")
    assert not state.indexed and state.overview()["open"] == 12 and state.overview()["new"] == 4
    total, rows = state.page(st.build_query(severity="critical"))
    assert total == 3 and {r["status"] for r in rows} == {"open", "new"}


def test_audit_keys_lists_folders_with_a_head(audit, tmp_path):
    (tmp_path / "not-an-audit").mkdir()
    assert st.audit_keys(f"file://{tmp_path}") == ["aud"]
    assert st.audit_keys(f"file://{tmp_path}/missing") == []


def test_csv_export_has_every_column_and_defuses_formulas(audit):
    text = "".join(st.csv_lines(audit.export(st.build_query(severity="high"))))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and list(rows[0]) == list(st.CSV_COLUMNS)
    assert rows[0]["console_url"].startswith("https://portal.azure.com/#@/resource/subscriptions/s/")
    first = track(findings.StateStore(audit.store.base_url, "other"), "r", [0], 1)[0]["com"]
    other = st.AuditState.read(audit.store.base_url, "other")
    (row,) = csv.DictReader(io.StringIO("".join(st.csv_lines(other.export(st.build_query())))))
    assert first["recommendation"] == "=HYPERLINK(fix)" and row["recommendation"] == "'=HYPERLINK(fix)"


@pytest.mark.parametrize(
    ("reference", "url"),
    [
        (
            "/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "https://portal.azure.com/#@/resource/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        ),
        (
            "https://www.googleapis.com/compute/v1/projects/p1/global/firewalls/allow-ssh",
            "https://console.cloud.google.com/networking/firewalls/details/allow-ssh?project=p1",
        ),
        (
            "https://www.googleapis.com/compute/v1/projects/p1/zones/europe-west1-b/instances/vm-1",
            "https://console.cloud.google.com/compute/instancesDetail/zones/europe-west1-b/instances/vm-1?project=p1",
        ),
        ("//cloudresourcemanager.googleapis.com/p1", "https://console.cloud.google.com/home/dashboard?project=p1"),
        ("3", None),
        (None, None),
        ("javascript:alert(1)", None),
    ],
)
def test_console_links(reference, url):
    assert console_url(reference) == url


def test_pages_escape_state_values_and_draw_the_chart(audit):
    hostile = {"id": "x", "severity": "high", "status": "open", "reference": "<script>alert(1)</script>"}
    html = pages.audit(audit.overview(), [st.with_link(hostile)], 1, st.build_query(), audit.runs(30))
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert html.count('class="dot-open"') == 2 and 'role="img"' in html and "run2: 4 new, 4 resolved, 12 open" in html
    head = html.split("<main>")[0]
    assert "http" not in head and 'href="static/cloudmarker.css"' in head  # assets from the package, no CDN


def test_the_app_is_built_in_the_api_server_only():
    assert plugin.in_api_server(["/x/airflow/__main__.py", "api-server", "-p", "8080"])
    assert not plugin.in_api_server(["/x/airflow", "tasks", "run"]) and not plugin.in_api_server(["airflow"])
    routes = {v["destination"]: v["url_route"] for v in plugin.EXTERNAL_VIEWS}
    assert set(routes) == {"dag", "dag_run", "nav"}
    assert all(not v["href"].startswith("/") for v in plugin.EXTERNAL_VIEWS)
