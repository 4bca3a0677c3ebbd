"""AzCloud and AzVM without Azure: bad or missing credentials and params fail at construction, naming them.

The plugins against the local Azure server (tests/servers/azure.py) are in tests/integration/test_azure_plugins.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.azure.arm import AzureAuthError, AzureConfigError
from airflow_cloudmarker.clouds.azcloud import AzCloud
from airflow_cloudmarker.clouds.azvm import AzVM


def test_null_credentials_without_fallback_name_the_params(monkeypatch):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    # Only the environment credential in the default chain: no managed-identity probe leaves this machine.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    with pytest.raises(AzureAuthError, match="tenant, client and secret are null"):
        AzCloud(tenant=None, client=None, secret=None).shards()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tenant": "t", "client": "c", "secret": None}, "param secret is null"),
        ({"tenant": None, "client": "c", "secret": "s"}, "param tenant is null"),
        ({"threads": 0}, "threads"),
        ({"_max_subs": -1}, "_max_subs"),
        ({"processes": "many"}, "processes"),
        ({"resource_manager_url": "http://insecure"}, "resource_manager_url"),
    ],
)
def test_bad_params_fail_at_construction_naming_the_param(kwargs, message):
    for cls in (AzCloud, AzVM):
        with pytest.raises(AzureConfigError, match=message):
            cls(**kwargs)
