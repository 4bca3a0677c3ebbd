"""SplunkHecHook: POST events to a Splunk HTTP Event Collector (no official Airflow provider exists).

Connection type ``splunk_hec``: host, port (8088), schema (``https``), password = the HEC token;
extras ``path`` (default ``/services/collector``), ``index`` and ``ca_cert`` (a CA bundle path,
or ``false`` to skip certificate verification). Example::

    AIRFLOW_CONN_SPLUNK_HEC_DEFAULT='{"conn_type": "splunk_hec", "host": "splunk.example.com", "port": 8088,
        "schema": "https", "password": "<token>", "extra": {"index": "main", "ca_cert": "/etc/ssl/splunk-ca.pem"}}'

The hook retries 429/5xx answers and dropped connections with backoff (urllib3's ``Retry``),
then checks both the HTTP status and the HEC JSON ``code`` (0 = success).
"""

from __future__ import annotations

import warnings
from typing import Any

import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.retry import Retry

from airflow_cloudmarker import util

#: HEC answers worth another try: busy (503, code 9), throttled (429), internal errors.
RETRY_STATUSES = (429, 500, 502, 503, 504)
DEFAULT_PATH = "/services/collector"


class SplunkHecError(Exception):
    """HEC refused a batch (after retries); ``auth`` is true when the token was refused."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None, auth: bool = False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.auth = auth


class SplunkHecHook(BaseHook):
    """Send batches of HEC event objects; construct with a connection id, or with ``uri`` and ``token``."""

    conn_name_attr = "splunk_conn_id"
    default_conn_name = "splunk_hec_default"
    conn_type = "splunk_hec"
    hook_name = "Splunk HTTP Event Collector"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How Airflow's connection form names the fields: the password is the HEC token, login is unused."""
        return {
            "hidden_fields": ["login"],
            "relabeling": {"password": "HEC token", "schema": "Scheme (https or http)"},
            "placeholders": {"port": "8088", "extra": '{"index": "main", "ca_cert": "/path/to/ca.pem"}'},
        }

    def __init__(
        self,
        splunk_conn_id: str | None = None,
        *,
        uri: str | None = None,
        token: str | None = None,
        ca_cert: bool | str = True,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        super().__init__()
        self.splunk_conn_id = splunk_conn_id
        self.uri = uri
        self.token = token
        self.ca_cert = ca_cert
        self.index: str | None = None
        self.retries = retries
        self.backoff = backoff
        self._session: requests.Session | None = None
        util.mask_secret(token)

    def _load_connection(self) -> None:
        conn = self.get_connection(self.splunk_conn_id)
        extra = conn.extra_dejson
        scheme = conn.schema or "https"
        path = extra.get("path") or DEFAULT_PATH
        self.uri = f"{scheme}://{conn.host}:{conn.port or 8088}/{path.lstrip('/')}"
        self.token = conn.password
        util.mask_secret(self.token)
        self.index = extra.get("index")
        if "ca_cert" in extra:
            self.ca_cert = extra["ca_cert"]

    def get_conn(self) -> requests.Session:
        """A session with the token header and retries (the connection is read on first use)."""
        if self._session is not None:
            return self._session
        if self.splunk_conn_id and not self.uri:
            self._load_connection()
        if not self.uri or not self.token:
            raise SplunkHecError("Splunk HEC needs a uri and a token (or a splunk_hec connection holding them)")
        retry = Retry(
            total=self.retries,
            backoff_factor=self.backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POST too: HEC delivery is at-least-once anyway
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        session = requests.Session()
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        session.headers["Authorization"] = f"Splunk {self.token}"
        session.verify = self.ca_cert
        self._session = session
        return session

    def send(self, body: bytes) -> dict:
        """POST one batch of event objects; return HEC's JSON answer or raise ``SplunkHecError``."""
        session = self.get_conn()
        try:
            with warnings.catch_warnings():
                if self.ca_cert is False:  # the user chose it (ca_cert: false); one warning per request is noise
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                response = session.post(self.uri, data=body, timeout=60, verify=self.ca_cert)
        except requests.RequestException as exc:
            reason = str(getattr(exc, "args", [exc])[0]) if exc.args else type(exc).__name__
            # Not chained: a requests error carries the request, whose Authorization header holds the token.
            raise SplunkHecError(f"request failed after {self.retries} retries: {reason}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"text": response.text[:200]}
        code = answer.get("code") if isinstance(answer, dict) else None
        if response.status_code == 200 and code == 0:
            return answer
        text = answer.get("text") if isinstance(answer, dict) else answer
        auth = response.status_code in (401, 403) or code in (2, 3, 4, 1)
        raise SplunkHecError(f"HTTP {response.status_code}, HEC code {code}: {text}", response.status_code, code, auth)

    def close(self) -> None:
        """Close the HTTP session's pooled connections; a later send opens a new session."""
        if self._session is not None:
            self._session.close()
            self._session = None
