"""FileStore as a new user meets it: one ``cloudmarker -n`` run where an alert gets no events and a store fails.

The plugin-level failures (encoder, EFBIG, SIGKILL) are tested without Airflow in tests/unit/test_filestore.py.
"""

from __future__ import annotations

import os

from support.cli import run_cli_as_user, user_config


def temp_files(path) -> list[str]:
    return sorted(name for name in os.listdir(path) if name.endswith(".tmp"))


CONFIG = """\
plugins:
  freshstore:
    plugin: cloudmarker.stores.filestore.FileStore
    params:
      path: {fresh}
audits:
  mockaudit:
    clouds: [mockcloud]
    stores: [filestore]
    events: []  # the base config's mockaudit has mockevent: none here, so the alert gets nothing
    alerts: [freshstore]
run: [mockaudit]
"""


def test_user_run_alert_without_events_has_its_directory_and_failed_store_leaves_no_temp_file(user_home, tmp_path):
    fresh = tmp_path / "fresh" / "output"
    out = user_config(user_home, tmp_path, CONFIG.format(fresh=fresh))
    (out / "mockaudit_mockcloud.json").mkdir(parents=True)  # the store's done() cannot rename onto it
    result = run_cli_as_user("-n", home=user_home)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "plugin filestore" in output and "IsADirectoryError" in output, output[-3000:]
    assert temp_files(out) == [], output[-3000:]  # the 10 records written before done() failed are gone
    assert fresh.is_dir() and os.listdir(fresh) == [], output[-3000:]  # no events to write, but the place exists
