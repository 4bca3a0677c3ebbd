"""MongoDBStore without a server: bad params are one clear error at construction.

MongoDBStore against nx-27017 and the wire proxy (tests/servers/mongo.py) is in tests/integration/test_store_mongo.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.stores.mongodbstore import MongoDBStore


def test_bad_buffer_size_is_one_clear_error():
    with pytest.raises(ValueError, match="MongoDBStore param buffer_size must be a positive integer"):
        MongoDBStore(buffer_size=0)
