"""GCP credentials for GCPCloud: a key file, an Airflow connection, or Application Default Credentials.

Kept apart from the plugin so that every way a key can be wrong ends in one clear error that
names the path or the connection, and so that key material is handled in exactly one place: it is
registered with Airflow's log masker here and never leaves this module except inside the
``google.auth`` credentials object. Only the service account's email travels on (records, logs).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from airflow_cloudmarker.util import mask_secret

#: Read-only access is all an audit needs (projects.list/get and Compute list calls).
SCOPES = ("https://www.googleapis.com/auth/cloud-platform.read-only",)

#: Extras of a Google Cloud connection, as the google provider stores them (plain and legacy prefixed names).
KEYFILE_DICT_EXTRAS = ("keyfile_dict", "extra__google_cloud_platform__keyfile_dict")
KEY_PATH_EXTRAS = ("key_path", "extra__google_cloud_platform__key_path")

#: Fields a service-account key must have for the JWT-bearer token flow.
REQUIRED_KEY_FIELDS = ("client_email", "private_key", "token_uri")


#: Parsed credentials by SHA-256 of the key, so that the mapped fetch tasks sharing one process
#: (``cloudmarker -n`` runs them all in one) parse the RSA key (~0.1-0.2 s of CPU) and fetch a
#: token once, not once per project. Only a digest is used as the key; the key itself stays inside
#: the credentials object, as it would in any one task.
_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


class GCPCredentialsError(ValueError):
    """The credentials cannot be loaded; the message names the path or connection and the fix."""


@dataclass(frozen=True)
class GCPCredentials:
    """Credentials plus what may be shown: the account's email and where the key came from."""

    credentials: Any
    client_email: str | None
    source: str


def load_credentials(key_file_path: str | None = None, conn_id: str | None = None) -> GCPCredentials:
    """Load credentials from ``key_file_path``, else the Airflow connection ``conn_id``, else ADC.

    A relative ``key_file_path`` is resolved against the current directory (the tutorial's
    ``key_file_path: keyfile.json`` next to ``cloudmarker.yaml``).
    """
    if key_file_path:
        return _from_key_file(key_file_path, "GCPCloud param key_file_path")
    if conn_id:
        return _from_connection(conn_id)
    return _from_adc()


def read_key_file(key_file_path: str, what: str) -> dict:
    """Read and parse a service-account key file; one clear error naming the path on any failure."""
    path = os.path.abspath(os.path.expanduser(str(key_file_path)))
    shown = key_file_path if key_file_path == path else f"{key_file_path} (resolved to {path})"
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise GCPCredentialsError(
            f"{what}: the service-account key file {shown} does not exist; download a key for the service "
            "account (IAM > Service accounts > Keys) and point key_file_path at it"
        ) from exc
    except IsADirectoryError as exc:
        raise GCPCredentialsError(f"{what}: {shown} is a directory, not a service-account key file") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GCPCredentialsError(f"{what}: cannot read the service-account key file {shown}: {reason}") from exc
    except UnicodeDecodeError:
        # Not chained: the error holds the file's bytes (a key) in its ``object``.
        raise GCPCredentialsError(
            f"{what}: cannot read the service-account key file {shown}: UnicodeDecodeError"
        ) from None
    try:
        info = json.loads(text)
    except ValueError:
        # Not chained: a JSONDecodeError holds the whole document (a key) in its ``doc``.
        raise GCPCredentialsError(
            f"{what}: the key file {shown} is not JSON; use the JSON key downloaded from the GCP console"
        ) from None
    return _check_key(info, f"{what}: the key file {shown}")


def _check_key(info: Any, where: str) -> dict:
    if not isinstance(info, dict):
        raise GCPCredentialsError(f"{where} does not hold a JSON object (a service-account key)")
    for secret_field in ("private_key", "private_key_id"):
        mask_secret(info.get(secret_field))
    if info.get("type") != "service_account":
        raise GCPCredentialsError(
            f"{where} is not a service-account key (its type is {info.get('type')!r}, expected 'service_account')"
        )
    missing = [name for name in REQUIRED_KEY_FIELDS if not info.get(name)]
    if missing:
        raise GCPCredentialsError(f"{where} lacks {', '.join(missing)}; download a new JSON key")
    return info


def _service_account(info: dict, where: str) -> GCPCredentials:
    from google.oauth2 import service_account

    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    with _CACHE_LOCK:
        credentials = _CACHE.get(digest)
    if credentials is None:
        try:
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except (ValueError, TypeError):
            # Not chained: the library's message may quote the key; ours never does.
            raise GCPCredentialsError(
                f"{where} holds a private key that cannot be loaded; download a new key"
            ) from None
        with _CACHE_LOCK:
            credentials = _CACHE.setdefault(digest, credentials)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return GCPCredentials(credentials, info["client_email"], where)


def _from_key_file(key_file_path: str, what: str) -> GCPCredentials:
    info = read_key_file(key_file_path, what)
    return _service_account(info, f"{what}: the key file {key_file_path}")


def _from_connection(conn_id: str) -> GCPCredentials:
    """A Google Cloud connection: key JSON in extras ``keyfile_dict`` or a path in ``key_path``; else ADC."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    what = f"GCPCloud param conn_id: Airflow connection {conn_id!r}"
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        raise GCPCredentialsError(
            f"{what} does not exist; create it (Google Cloud type, key JSON in the 'keyfile_dict' extra) "
            "or set AIRFLOW_CONN_" + conn_id.upper() + " in the environment"
        ) from exc
    extras = conn.extra_dejson or {}
    keyfile = next((extras[k] for k in KEYFILE_DICT_EXTRAS if extras.get(k)), None)
    key_path = next((extras[k] for k in KEY_PATH_EXTRAS if extras.get(k)), None)
    if keyfile is not None:
        if isinstance(keyfile, str):
            mask_secret(keyfile)
            try:
                keyfile = json.loads(keyfile)
            except ValueError:
                # Not chained: a JSONDecodeError holds the whole document (the key) in its ``doc``.
                raise GCPCredentialsError(f"{what}: extra 'keyfile_dict' is not JSON") from None
        info = _check_key(keyfile, f"{what}: extra 'keyfile_dict'")
        return _service_account(info, f"{what} (keyfile_dict)")
    if key_path:
        return _from_key_file(key_path, f"{what}: extra 'key_path'")
    found = _from_adc()
    return GCPCredentials(found.credentials, found.client_email, f"{what} (no key: {found.source})")


def _from_adc() -> GCPCredentials:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GCPCredentialsError(
            "GCPCloud: neither key_file_path nor conn_id is set, and Application Default Credentials are "
            f"not available ({first_line}); set key_file_path, conn_id, or GOOGLE_APPLICATION_CREDENTIALS"
        ) from exc
    email = getattr(credentials, "service_account_email", None)
    return GCPCredentials(credentials, email if isinstance(email, str) and "@" in email else None, "ADC")
