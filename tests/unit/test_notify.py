"""The ``email:`` config of begin/end-of-audit emails is checked like the rest of the config, without a run.

The emails themselves, through ``runner.run_now`` and a real SMTP server, are in tests/integration/test_notify.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker import config as config_mod


def test_email_config_is_checked_like_the_rest_of_the_config(home):
    work = home.parent / "work"
    (work / "cloudmarker.yaml").write_text(
        "email:\n  from_addr: cm@example.com\n  to_addrs: [ops@example.com]\n  host: smtp.example.com\n"
        "  ssl_mode: tls\n  smtp_port: 25\n"
    )
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    (problem,) = info.value.problems
    assert problem.startswith(f"{work / 'cloudmarker.yaml'}: email: ")
    assert "smtp_port" in problem and "accepted params: from_addr" in problem
    (work / "cloudmarker.yaml").write_text("email:\n  from_addr: cm@example.com\n  to_addrs: [ops@example.com]\n")
    with pytest.raises(config_mod.ConfigError, match="email: email host is not set; set host"):
        config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)


def test_tutorial_emailalert_key_warns_and_points_to_email(home):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        "emailalert:\n  from_addr: Cloudmarker <cloudmarker@example.com>\n  to_addrs:\n    - user1@example.com\n"
        "  subject: Cloudmarker Alert\n  host: smtp.example.com\n"
    )
    config = config_mod.load_config(config_mod.DEFAULT_CONFIG_PATHS)
    assert config.email is None
    assert any("'emailalert' key is ignored" in w and "'email'" in w for w in config.warnings)
