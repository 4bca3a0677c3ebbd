"""The start-up check that the metadata DB is at Airflow's head: remembered, and never trusted blindly."""

from __future__ import annotations

import json

from airflow_cloudmarker import metadb


def _set_revision(revision: str) -> None:
    from airflow import settings
    from sqlalchemy import text

    with settings.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_the_head_is_remembered_and_a_db_at_another_revision_is_not_at_head(airflow_db):
    marker = airflow_db / metadb.HEAD_MARKER_NAME
    marker.unlink(missing_ok=True)
    assert metadb.at_head()  # Airflow's full check, remembered
    remembered = json.loads(marker.read_text())
    head = remembered["revision"]
    assert remembered["airflow"] and remembered["db"].startswith("sqlite:")
    assert metadb.at_head()  # from the marker

    marker.write_text(json.dumps({**remembered, "airflow": "0.0.1"}))  # another Airflow wrote it: full check
    assert metadb.at_head()
    assert json.loads(marker.read_text()) == remembered

    try:
        _set_revision("0123456789ab")  # a DB migrated (or restored) to another revision since
        assert not metadb.at_head()
        assert json.loads(marker.read_text())["revision"] == head  # nothing remembered for it
    finally:
        _set_revision(head)
    assert metadb.at_head()
