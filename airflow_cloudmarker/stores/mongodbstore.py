"""MongoDBStore: upsert records into a MongoDB collection with unordered bulk writes, idempotently.

Each buffered record becomes ``ReplaceOne({"_id": id}, {"_id": id, ...record}, upsert=True)``
with the deterministic id of ``_documents``: a retried task or a cleared run replaces the
documents it already wrote instead of inserting copies. The ``_id`` sits inside the replacement
document too (MongoDB and wire-compatible servers such as nx-27017 then agree). The document is
a fresh copy of the record, so pymongo never adds ``_id`` to the caller's dicts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from airflow_cloudmarker import util
from airflow_cloudmarker.stores import _documents as docs

log = logging.getLogger(__name__)

#: How long to look for a reachable server before failing (pymongo's default is 30 s).
SERVER_SELECTION_TIMEOUT_MS = 5000
#: A dropped connection is retried this many times (upserts by _id make a resend harmless).
RECONNECT_RETRIES = 2
#: MongoDB error codes for refused credentials / missing rights.
AUTH_CODES = {18, 13}


class MongoDBStore:
    """Send records (or events, as an alert plugin) to a MongoDB collection.

    Params:
        host, port: the MongoDB server (``host`` may also be a ``mongodb://`` URI).
        db, collection: where the documents go (default ``cloudmarker`` / ``cloudmarker``).
        username, password: credentials when the server requires them (password masked in logs).
        buffer_size: records per bulk write (default 1000).
        conn_id: an Airflow ``mongo`` connection id instead of host/port/username/password
            (through the mongo provider's MongoHook; its ``schema`` is the default db).
    """

    #: As an alert under ``alert_on: changes`` it still gets every event: it is the record (contract.ABILITIES).
    keeps_every_event = True

    def __init__(
        self,
        host: str = "localhost",
        port: int = 27017,
        db: str | None = None,
        collection: str = "cloudmarker",
        username: str | None = None,
        password: str | None = None,
        buffer_size: int = 1000,
        conn_id: str | None = None,
    ):
        util.mask_secret(password)
        self._buffer_size = docs.positive_int("MongoDBStore", "buffer_size", buffer_size)
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"MongoDBStore param collection must be a non-empty string, not {collection!r}")
        self._host = str(host)
        self._port = port
        self._db = db
        self._collection_name = collection
        self._username = username
        self._password = password
        self._conn_id = conn_id
        self._client: Any = None
        self._collection: Any = None
        where = f"MongoDB connection {conn_id!r}" if conn_id else f"MongoDB {self._host}:{port}"
        self._server = f"{where} {db or 'cloudmarker'}.{collection}"
        self._buffer: list[Any] = []
        self._received = 0
        self._written = 0
        self.requests = 0

    def _connect(self) -> Any:
        """Build the client on first flush (never in the constructor: MongoHook connects in __init__)."""
        if self._collection is not None:
            return self._collection
        if self._conn_id:
            from airflow.providers.mongo.hooks.mongo import MongoHook

            hook = MongoHook(mongo_conn_id=self._conn_id)
            util.mask_secret(hook.connection.password)
            client = hook.get_conn()
            db_name = self._db or hook.connection.schema or "cloudmarker"
            self._server = (
                f"MongoDB {hook.connection.host} (connection {self._conn_id!r}) {db_name}.{self._collection_name}"
            )
        else:
            import pymongo

            client = pymongo.MongoClient(
                self._host,
                self._port,
                username=self._username or None,
                password=self._password or None,
                serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
                appname="cloudmarker",
            )
            db_name = self._db or "cloudmarker"
        self._client = client
        self._collection = client[db_name][self._collection_name]
        return self._collection

    def write(self, record: dict) -> None:
        """Buffer an upsert of a copy of ``record`` under its deterministic ``_id``; write when full."""
        from pymongo import ReplaceOne

        doc_id, encoded = docs.encode_with_id(record)
        document = orjson.loads(encoded)  # a deep, BSON-safe copy: the caller's dict is never touched
        document["_id"] = doc_id
        self._buffer.append(ReplaceOne({"_id": doc_id}, document, upsert=True))
        self._received += 1
        if len(self._buffer) >= self._buffer_size:
            self._flush()

    def done(self) -> None:
        """Write what is left and close the client."""
        self._flush()
        if self._client is not None:
            self._client.close()
            self._client = self._collection = None
        log.info(
            "MongoDBStore: %d records upserted into %s in %d bulk writes", self._written, self._server, self.requests
        )

    def _flush(self) -> None:
        if not self._buffer:
            return
        from pymongo.errors import (
            AutoReconnect,
            BulkWriteError,
            OperationFailure,
            PyMongoError,
            ServerSelectionTimeoutError,
        )

        batch, self._buffer = self._buffer, []
        self.requests += 1
        for attempt in range(RECONNECT_RETRIES + 1):
            try:
                self._connect().bulk_write(batch, ordered=False)
                break
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                first = errors[0].get("errmsg") if errors else exc.details.get("writeConcernErrors")
                self._written += len(batch) - len(errors)
                raise docs.StoreError(
                    "MongoDBStore",
                    self._server,
                    f"{len(errors)} documents were rejected; first: {first}",
                    len(errors),
                    self._received,
                ) from None  # not chained: pymongo repeats every rejected document (cloud data, secrets too)
            except OperationFailure as exc:
                if exc.code in AUTH_CODES:
                    raise docs.StoreAuthError(
                        "MongoDBStore",
                        self._server,
                        f"the server refused the credentials ({exc.details.get('errmsg') if exc.details else exc}); "
                        "fix the username/password params or the connection's login/password",
                        len(batch),
                        self._received,
                    ) from None  # not chained: a refused login's answer may echo what the client sent
                raise docs.StoreError(
                    "MongoDBStore", self._server, f"bulk write failed: {exc}", len(batch), self._received
                ) from exc
            except ServerSelectionTimeoutError as exc:
                reason = str(exc).split(", Timeout:")[0]
                raise docs.StoreError(
                    "MongoDBStore", self._server, f"cannot reach the server: {reason}", len(batch), self._received
                ) from exc
            except AutoReconnect as exc:
                if attempt == RECONNECT_RETRIES:
                    raise docs.StoreError(
                        "MongoDBStore",
                        self._server,
                        f"connection lost {RECONNECT_RETRIES + 1} times: {exc}",
                        len(batch),
                        self._received,
                    ) from exc
                log.warning("MongoDBStore: connection to %s lost (%s); retrying the bulk write", self._server, exc)
                time.sleep(0.5 * 2**attempt)
            except PyMongoError as exc:
                raise docs.StoreError(
                    "MongoDBStore", self._server, f"bulk write failed: {exc}", len(batch), self._received
                ) from exc
        self._written += len(batch)
