"""A new user's first ``cloudmarker -n`` with every documented kind of secret in the config.

Run as a user runs it: a ``cloudmarker`` subprocess, a fresh HOME, no ``AIRFLOW_*`` variable, and
nothing of Airflow imported beforehand. A top-level ``email:`` with a password once made Airflow
settle on ``~/airflow`` (the secret was registered with Airflow's log masker while the config was
validated, before the embedded environment was set): every such first run died with "the dag is
not serialized". A user plugin module importing a provider hook at its top did the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import smtp as smtp_server
from servers.azure import FakeAzure
from servers.gcp import GCPServer, tutorial_world
from servers.slack import TOKEN, SlackServer
from support.cli import run_cli_as_user, user_config, user_env

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

CONFIG = """\
email:
  from_addr: Cloudmarker <cloudmarker@example.com>
  to_addrs: [secops@example.com]
  host: 127.0.0.1
  port: {smtp_port}
  ssl_mode: disable
  username: {smtp_user}
  password: {smtp_password}

plugins:
  hookedcloud:
    plugin: cm_hooked_plugins.HookedCloud
  emailalert:
    plugin: cloudmarker.alerts.emailalert.EmailAlert
    params:
      from_addr: Cloudmarker <cloudmarker@example.com>
      to_addrs: [oncall@example.com]
      host: 127.0.0.1
      port: {smtp_port}
      ssl_mode: disable
      username: {smtp_user}
      password: {smtp_password}
  slackalert:
    plugin: cloudmarker.alerts.slackalert.SlackAlert
    params:
      bot_user_token: {slack_token}
      to: [user1@example.com]
      base_url: {slack_url}
  myazcloud:
    plugin: cloudmarker.clouds.azcloud.AzCloud
    params:
      tenant: {az_tenant}
      client: {az_client}
      secret: {az_secret}
      authority_host: {az_url}
      resource_manager_url: {az_url}
      retry_backoff: 0
  mygcpcloud:
    plugin: cloudmarker.clouds.gcpcloud.GCPCloud
    params:
      key_file_path: {gcp_key}
      api_endpoints: {gcp_endpoints}
  mongodbstore:
    params:
      username: cmuser
      password: mongo-Pa55word
  esstore:
    params:
      username: elastic
      password: es-Pa55word

audits:
  mockaudit:
    clouds: [mockcloud, hookedcloud]
    alerts: [filestore, emailalert, slackalert]
  myazaudit:
    clouds: [myazcloud]
    stores: [filestore]
    events: [firewallruleevent]
    alerts: [filestore]
  mygcpaudit:
    clouds: [mygcpcloud]
    stores: [filestore]
    events: [firewallruleevent]
    alerts: [filestore]
  storesaudit:   # not in `run`: validated, never run (no server here)
    clouds: [mockcloud]
    stores: [mongodbstore, esstore]

run: [mockaudit, myazaudit, mygcpaudit]
"""


def files_containing(root: Path, secrets: list[str]) -> list[str]:
    """Files under ``root`` (the config files that hold the secrets excepted) containing any of ``secrets``."""
    hits = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name in ("cloudmarker.yaml", ".cloudmarker.yaml"):
                continue
            data = (Path(folder) / name).read_bytes()
            hits += [f"{folder}/{name}: {s[:6]}..." for s in secrets if s.encode() in data]
    return hits


def test_first_run_with_every_kind_of_secret(user_home, tmp_path):
    smtp, controller = smtp_server.start("disable", True, None)
    gcp_key_path = tmp_path / "keys" / "keyfile.json"
    gcp_key_path.parent.mkdir()
    with (
        SlackServer({"user1@example.com": "U001"}) as slack,
        FakeAzure(tmp_path / "ca", subscriptions=1, vms=1, page_size=2) as az,
        GCPServer(tutorial_world()) as gcp,
    ):
        gcp_key = gcp.make_key(gcp_key_path)
        out = user_config(
            user_home,
            tmp_path,
            CONFIG.format(
                smtp_port=smtp.port,
                smtp_user=smtp_server.USERNAME,
                smtp_password=smtp_server.PASSWORD,
                slack_token=TOKEN,
                slack_url=slack.base_url,
                az_tenant=az.tenant,
                az_client=az.client,
                az_secret=az.secret,
                az_url=az.url,
                gcp_key=gcp_key_path,
                gcp_endpoints=json.dumps(gcp.endpoints),
            ),
        )
        try:
            result = run_cli_as_user(
                "-n", home=user_home, env={"REQUESTS_CA_BUNDLE": az.ca_file, "NO_PROXY": "127.0.0.1,localhost"}
            )
        finally:
            controller.stop()
        slack_messages = list(slack.state.messages)

    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-4000:]
    assert "not serialized" not in console
    assert not (user_home / "airflow").exists(), "Airflow used ~/airflow instead of the embedded home"
    assert (user_home / ".cloudmarker" / "airflow" / "airflow.db").is_file()

    # The user plugin importing a provider hook ran; every audit delivered.
    hooked = json.loads((out / "mockaudit_hookedcloud.json").read_text())
    assert [r["raw"]["hook"] for r in hooked] == ["SmtpHook", "SmtpHook"]
    assert json.loads((out / "myazaudit_myazcloud.json").read_text())
    assert json.loads((out / "mygcpaudit_mygcpcloud.json").read_text())
    # Begin and end of all audits, of each of the three audits, and EmailAlert's one message; all logged in.
    recipients = sorted(tuple(m.rcpt_tos) for m in smtp.messages)
    assert recipients == [("oncall@example.com",)] + [("secops@example.com",)] * 8
    assert smtp.logins and all(login.endswith(":ok") for login in smtp.logins)
    assert {m["channel"] for m in slack_messages} == {"DU001"}  # the DM channel conversations.open gave

    secrets = [smtp_server.PASSWORD, TOKEN, az.secret, gcp_key["private_key_id"], "mongo-Pa55word", "es-Pa55word"]
    leaked = [s[:6] for s in secrets if s in console]
    assert not leaked, f"secrets on the console: {leaked}"
    assert not files_containing(user_home, secrets)
    assert not files_containing(out, secrets)
    assert not [s[:6] for s in secrets if s in (tmp_path / "cloudmarker.log").read_text()]


def test_a_program_that_imported_airflow_first_gets_a_clear_error(user_home):
    """``runner.run_now`` from a program that imported Airflow under other settings: one clear error, no stray DB."""
    script = (
        "import airflow.configuration\n"
        "from airflow_cloudmarker import config, runner\n"
        "runner.run_now(config.load_config([]), [])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=user_env(user_home), capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "AirflowImportedTooEarly: Airflow was imported before cloudmarker set its environment" in result.stderr
    assert "call airflow_cloudmarker.environment.apply() before anything imports Airflow" in result.stderr
