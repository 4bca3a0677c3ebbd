"""GCPCloud without Google: a missing key file and bad params are one clear error each.

GCPCloud against the local Google APIs (tests/servers/gcp.py) is in tests/integration/test_gcp_cloud.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.clouds.gcpcloud import GCPCloud
from airflow_cloudmarker.gcp.credentials import GCPCredentialsError


def test_missing_key_file_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cloud = GCPCloud(key_file_path="keyfile.json", zone=None)  # the tutorial's params; no file or network yet
    with pytest.raises(GCPCredentialsError, match=r"key_file_path: the service-account key file keyfile\.json"):
        cloud.shards()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"zone": ""}, "zone must be a non-empty string or null"),
        ({"threads": 0}, "threads must be a positive integer"),
        ({"_max_projects": "all"}, "_max_projects must be a positive integer"),
        ({"api_endpoints": {"storage": "http://x/"}}, "api_endpoints must map service names"),
    ],
)
def test_bad_params(params, message):
    with pytest.raises(ValueError, match=message):
        GCPCloud(**params)
