"""The ``cloudmarker`` command refuses a bad config: one line naming the file and key, exit 2, no traceback.

The config logic itself is tested without a process in tests/unit/test_config.py.
"""

from __future__ import annotations

import textwrap

from support.cli import run_cli, run_cli_as_user, user_config

from airflow_cloudmarker import config as config_mod


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_cli_prints_base_config():
    result = run_cli("--print-base-config")
    assert result.returncode == 0
    assert result.stdout == config_mod.base_config_text()
    assert run_cli("-p").stdout == result.stdout


def test_cli_version_and_help():
    assert run_cli("--version").stdout.startswith("cloudmarker ")
    help_text = run_cli("--help").stdout
    for option in ("--config", "--now", "--print-base-config", "--version"):
        assert option in help_text


def test_cli_config_error_is_one_line_without_traceback(tmp_path):
    path = write(tmp_path / "c.yaml", "audits:\n  mockaudit:\n    clouds: [nocloud]\n")
    result = run_cli("-n", "-c", path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("cloudmarker: error:")]
    assert len(lines) == 1
    assert f"{path}: audits.mockaudit.clouds: plugin key 'nocloud' is not defined" in lines[0]


def test_cli_yaml_error_exits_nonzero(tmp_path):
    path = write(tmp_path / "c.yaml", "run: [a\n")
    result = run_cli("-n", "-c", path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"cloudmarker: error: {path}:" in result.stderr


def test_cli_refuses_a_duplicate_plugin_key(tmp_path):
    path = write(tmp_path / "c.yaml", "audits:\n  mockaudit:\n    clouds: [mockcloud, mockcloud]\n")
    result = run_cli("-n", "-c", path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        f"cloudmarker: error: {path}: audits.mockaudit.clouds: plugin key 'mockcloud' is listed 2 times"
        in result.stderr
    )


def test_cli_reports_a_param_type_error_as_a_new_user_sees_it(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    user_config(home, tmp_path, "plugins:\n  mockcloud:\n    params:\n      record_count: '5'\n")
    result = run_cli_as_user("-n", home=home, timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("cloudmarker: error:")]
    assert lines == [
        f"cloudmarker: error: {home}/cloudmarker.yaml: plugins.mockcloud.params.record_count: MockCloud param "
        f"record_count must be int, not '5' (a string); write it without quotes: record_count: 5"
    ]
    assert not (tmp_path / "out").exists()  # nothing ran
