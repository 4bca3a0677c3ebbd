"""SplunkHECStore: send records to a Splunk HTTP Event Collector in batched POSTs.

Each record becomes ``{"index": ..., "sourcetype": "json", "event": record}``; ``buffer_size``
of them go back to back in one POST (what HEC documents for batches). Splunk's searches such as
``index=main com.record_type=mock_event | table com.description`` then find the records' fields.

Delivery is at least once: HEC has no document id to overwrite, so when a task fails half-way
and is retried (or the run is rerun), the batches that had already arrived are indexed again.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow_cloudmarker import util
from airflow_cloudmarker.stores import _documents as docs

log = logging.getLogger(__name__)


class SplunkHECStore:
    """Send records (or events, as an alert plugin) to Splunk through HEC.

    Params:
        uri: the collector endpoint, e.g. ``https://localhost:8088/services/collector``.
        token: the HEC token (masked in logs).
        index: the Splunk index (``null``: the token's default index).
        ca_cert: a CA bundle path to verify the server with, ``true`` (system CAs, the default)
            or ``false`` (no verification, as in the tutorial's local Docker example).
        buffer_size: records per POST (default 1000).
        conn_id: a ``splunk_hec`` Airflow connection holding uri parts, token, index and ca_cert,
            instead of ``uri``/``token``.
    """

    #: As an alert under ``alert_on: changes`` it still gets every event: it is the record (contract.ABILITIES).
    keeps_every_event = True

    def __init__(
        self,
        uri: str | None = None,
        token: str | None = None,
        index: str | None = None,
        ca_cert: bool | str = True,
        buffer_size: int = 1000,
        conn_id: str | None = None,
    ):
        util.mask_secret(token)
        if not conn_id and not (uri and token):
            raise ValueError(
                "SplunkHECStore needs the uri and token params (or conn_id naming a splunk_hec connection); "
                "fix the params"
            )
        if isinstance(ca_cert, str) and not os.path.isfile(os.path.expanduser(ca_cert)):
            raise ValueError(
                f"SplunkHECStore param ca_cert: no CA bundle file at {ca_cert!r}; fix the path or use false"
            )
        if not isinstance(ca_cert, (bool, str)):
            raise ValueError(f"SplunkHECStore param ca_cert must be a file path, true or false, not {ca_cert!r}")
        self._buffer_size = docs.positive_int("SplunkHECStore", "buffer_size", buffer_size)
        self._uri = uri
        self._token = token
        self._index = index
        self._ca_cert = os.path.expanduser(ca_cert) if isinstance(ca_cert, str) else ca_cert
        self._conn_id = conn_id
        self._hook: Any = None
        self._server = f"Splunk HEC {uri}" if uri else f"Splunk HEC connection {conn_id!r}"
        self._buffer: list[bytes] = []
        self._received = 0
        self._written = 0
        self.requests = 0

    def _connect(self) -> Any:
        """The hook (imported here: importing this module must not import Airflow, see DESIGN)."""
        if self._hook is None:
            from airflow_cloudmarker.hooks.splunk import SplunkHecHook

            if self._uri:
                hook = SplunkHecHook(uri=self._uri, token=self._token, ca_cert=self._ca_cert)
            else:
                hook = SplunkHecHook(self._conn_id)
                hook.get_conn()
                self._server = f"Splunk HEC {hook.uri} (connection {self._conn_id!r})"
                if self._index is None:
                    self._index = hook.index
            self._hook = hook
        return self._hook

    def write(self, record: dict) -> None:
        """Buffer one HEC event object; POST the batch when ``buffer_size`` records are waiting."""
        if self._hook is None:
            self._connect()
        event = {"index": self._index, "sourcetype": "json", "event": record}
        if self._index is None:
            del event["index"]
        self._buffer.append(docs.encode(event))
        self._received += 1
        if len(self._buffer) >= self._buffer_size:
            self._flush()

    def done(self) -> None:
        """POST what is left and close the session."""
        self._flush()
        if self._hook is not None:
            self._hook.close()
        log.info("SplunkHECStore: %d records sent to %s in %d requests", self._written, self._server, self.requests)

    def _flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        from airflow_cloudmarker.hooks.splunk import SplunkHecError

        hook = self._connect()
        self.requests += 1
        try:
            hook.send(b"\n".join(batch))
        except SplunkHecError as exc:
            if exc.auth:
                raise docs.StoreAuthError(
                    "SplunkHECStore",
                    self._server,
                    f"HEC refused the token ({exc}); fix the token param or the connection's password",
                    len(batch),
                    self._received,
                ) from None  # not chained: a refused token's answer may echo it
            raise docs.StoreError("SplunkHECStore", self._server, str(exc), len(batch), self._received) from exc
        self._written += len(batch)
