"""EsStore without a server: bad params are one clear error at construction.

EsStore against the local _bulk server (tests/servers/elasticsearch.py) is in tests/integration/test_store_es.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.stores.esstore import EsStore


@pytest.mark.parametrize("bad", [0, -5, "big", True])
def test_bad_buffer_size_is_one_clear_error(bad):
    with pytest.raises(ValueError, match="EsStore param buffer_size must be a positive integer.*fix the buffer_size"):
        EsStore(buffer_size=bad)
