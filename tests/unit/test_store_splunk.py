"""SplunkHECStore without a server: bad params are one clear error at construction.

SplunkHECStore against the local HEC endpoint (tests/servers/splunk.py) is in tests/integration/test_store_splunk.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.stores.splunkhecstore import SplunkHECStore


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"uri": "https://x/services/collector"}, "needs the uri and token params"),
        ({"uri": "https://x", "token": "t", "ca_cert": "/nonexistent/ca.pem"}, "param ca_cert: no CA bundle file"),
        ({"uri": "https://x", "token": "t", "buffer_size": 0}, "param buffer_size must be a positive integer"),
    ],
)
def test_bad_params_are_one_clear_error(params, message):
    with pytest.raises(ValueError, match=message):
        SplunkHECStore(**params)
