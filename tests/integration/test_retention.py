"""Retention: old runs' record batches (XCom rows and object-store files) are deleted on request."""

from __future__ import annotations

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import retention, runner


def test_purge_deletes_old_runs_xcoms_and_files_only(airflow_db, home, tmp_path):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {tmp_path}\n"
    )
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    xcom_dir = airflow_db / "xcom" / "mockaudit"
    before = set(xcom_dir.glob("*"))
    (result,) = runner.run_now(config, config_mod.DEFAULT_CONFIG_PATHS, keep_xcoms=True)
    assert result.state == "success"
    (run_dir,) = set(xcom_dir.glob("*")) - before
    assert len(list(run_dir.glob("*/*"))) >= 5  # batches and manifests of fetch, check, findings, store, alert

    files = set(run_dir.glob("*/*"))
    kept = retention.purge_xcoms(older_than_days=1)  # every run of this session is minutes old
    assert kept.xcoms == 0
    assert set(run_dir.glob("*/*")) == files

    purged = retention.purge_xcoms(older_than_days=0)
    assert purged.xcoms >= 5 and purged.failed == 0
    assert list(run_dir.glob("*/*")) == []

    from airflow import settings
    from airflow.models.xcom import XComModel

    with settings.Session() as session:
        assert session.query(XComModel).filter_by(dag_id="mockaudit").count() == 0
