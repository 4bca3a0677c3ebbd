"""docs/aws.md's organization audit, verbatim, as a new user runs it: ``cloudmarker -n`` in a subprocess, fresh HOME.

The config is cut out of docs/aws.md (the block after "An audit of every account"), so the docs
cannot drift from what works. The connection ``aws_audit`` comes from ``AIRFLOW_CONN_AWS_AUDIT``,
pointing every service (STS included) at moto on loopback; HTTP(S)_PROXY is a closed loopback
port, so nothing can leave the machine.
"""

from __future__ import annotations

import collections
import json
import os
import re

import pytest
from servers.aws import SECRET, MotoServer
from support.aws_estate import build
from support.cli import REPO_ROOT, run_cli_as_user, user_config

DOC = REPO_ROOT / "docs" / "aws.md"


def documented_audit() -> str:
    text = DOC.read_text().split("### An audit of every account of an organization", 1)[1]
    return text.split("```yaml\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def moto():
    with MotoServer() as server:
        saved = {k: os.environ.pop(k) for k in [n for n in os.environ if n.startswith("AWS_")]}
        os.environ.update({"AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost"})
        try:
            yield server, build(server, many=3, reservations=1)
        finally:
            os.environ.update(saved)


def test_the_documented_organization_audit_runs_with_cloudmarker_n(moto, tmp_path):
    server, estate = moto
    home = tmp_path / "home"
    home.mkdir()
    out = user_config(home, tmp_path, documented_audit())
    env = {
        "AIRFLOW_CONN_AWS_AUDIT": server.connection_json(),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    result = run_cli_as_user("-n", home=home, env=env, timeout=600)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-4000:]

    records = json.loads((out / "myawsaudit_myawscloud.json").read_text())
    kinds = collections.Counter(r["ext"]["record_type"] for r in records)
    assert kinds["s3_bucket"] == 5 and kinds["s3_account_public_access_block"] == 3
    assert kinds["ebs_encryption_by_default"] == 9  # 3 accounts x 3 regions
    event_keys = ("firewallruleevent", "awsebsvolumeencryptionevent", "awss3bucketpublicevent")
    event_keys += ("awsebsencryptionbydefaultevent",)
    events = [e for key in event_keys for e in json.loads((out / f"myawsaudit_{key}.json").read_text())]
    checks = collections.Counter(e["com"]["check_id"] for e in events)
    assert checks["aws_s3_bucket_public"] == 2
    assert checks["firewall_ssh_open_to_internet"] == 1 and checks["firewall_rdp_open_to_internet"] == 1
    assert checks["aws_ebs_encryption_by_default_disabled"] == 8
    assert checks["aws_ebs_volume_unencrypted"] >= 2
    log = (tmp_path / "cloudmarker.log").read_text()
    assert SECRET not in console and SECRET not in log
    assert not [p.name for p in out.iterdir() if SECRET in p.read_text()]  # nor in any record or event
    # each fetch task's summary line counts its AWS requests and the throttled ones
    assert re.search(r"read \d+ records in \d+ batches in [\d.]+ s; \d+ api calls; 0 throttled calls", console + log)
    assert server.calls[("sts", "AssumeRole")] >= 2  # the member accounts were read through the role
