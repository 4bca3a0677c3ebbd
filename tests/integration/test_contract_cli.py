"""The plugin contract through the ``cloudmarker`` command: a bad plugin in one line, ``--list-plugins``."""

from __future__ import annotations

import json
import re

from support.cli import run_cli_as_user
from unit.test_contract import CIS_AWS, CIS_AZURE, CIS_GCP, builtin_paths

from airflow_cloudmarker import plugins


def test_bad_plugin_is_reported_by_the_cloudmarker_command_without_a_traceback(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "myplugins.py").write_text("class HalfCloud:\n    def read(self):\n        return []\n")
    (home / "cloudmarker.yaml").write_text(
        "plugins:\n  half:\n    plugin: myplugins.HalfCloud\n    params:\n      region: eu\n"
        "audits:\n  a:\n    clouds: [half]\nrun: [a]\n"
    )
    result = run_cli_as_user("-n", home=home, env={"PYTHONPATH": str(tmp_path)}, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert any(line.endswith("has no done() method; list it under the right key") for line in lines), lines
    assert any("HalfCloud does not accept these params" in line for line in lines), lines


def test_list_plugins_prints_every_plugin_with_params_and_checks(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli_as_user("--list-plugins", home=home, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for info in plugins.builtin_plugins():
        block = text.split(info.path, 1)[1].split("\n\n", 1)[0]
        for param in info.params:
            default = "(required)" if param.required else plugins._shown(param.default)
            assert re.search(
                rf"^ +{re.escape(param.name)} +{re.escape(param.type)} +{re.escape(default)}$", block, re.M
            )
        for check in info.checks:
            assert f"check {check.check_id} ({check.severity}): {check.title}" in block
            # the listing wraps long lines: compare the words
            assert f"controls: {plugins.controls_text(check)}" in " ".join(block.split())
    assert "record_count  int          10" in text
    assert "CIS Microsoft Azure Foundations 6.0.0: 7.2; CIS Google Cloud Platform Foundation 5.0.0: 3.6" in text
    assert sorted(p.name for p in home.iterdir()) == []  # no Airflow home, no DB: nothing written
    assert result.stderr == ""


def test_list_plugins_json(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli_as_user("--list-plugins", "--json", home=home, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = {p["path"]: p for p in json.loads(result.stdout)}
    assert set(listed) == builtin_paths()
    mock = listed["cloudmarker.clouds.mockcloud.MockCloud"]
    assert mock["params"] == [
        {"name": "record_count", "type": "int", "required": False, "default": 10},
        {"name": "record_types", "type": "list of str", "required": False, "default": ["foo", "bar"]},
    ]
    assert listed["cloudmarker.stores.filestore.FileStore"]["kinds"] == ["stores", "alerts"]
    assert "abort" in listed["cloudmarker.stores.filestore.FileStore"]["abilities"]
    (check,) = listed["cloudmarker.events.mockevent.MockEvent"]["checks"]
    assert check["check_id"] == "mock_multiple_of_n" and check["severity"] == "low"
    alone = run_cli_as_user("--json", home=home, timeout=120)
    assert alone.returncode == 2 and "--json goes with --list-plugins" in alone.stderr
    fw = listed["cloudmarker.events.firewallruleevent.FirewallRuleEvent"]["checks"]
    assert [c["controls"] for c in fw][:2] == [
        {CIS_AZURE: ["7.1"], CIS_GCP: ["3.7"], CIS_AWS: ["6.3", "6.4"]},
        {CIS_AZURE: ["7.2"], CIS_GCP: ["3.6"], CIS_AWS: ["6.3", "6.4"]},
    ]
