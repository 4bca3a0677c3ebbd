"""AzKVSecretNoExpiryEvent: flag enabled Key Vault secrets that never expire.

A secret without an expiration date (a password, a connection string, an API key) stays valid
until someone remembers to change it. Reads the ``key_vault_secret`` records of AzKV
(``ext.enabled``, ``ext.expiry_set``); a disabled secret is not reported.
"""

from __future__ import annotations

from airflow_cloudmarker.events._azkv import NoExpiryEvent, expiry_check

CHECK = expiry_check("secret", ["8.3.3", "8.3.4"])


class AzKVSecretNoExpiryEvent(NoExpiryEvent):
    """Emit a ``key_vault_secret_no_expiry_event`` for an enabled ``key_vault_secret`` without expiry."""

    CHECK = CHECK
    EVENT_TYPE = "key_vault_secret_no_expiry_event"
    EXT_TYPE = "key_vault_secret"
