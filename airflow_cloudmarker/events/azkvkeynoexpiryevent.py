"""AzKVKeyNoExpiryEvent: flag enabled Key Vault keys that never expire.

A key without an expiration date stays usable forever: a key that leaked or should have been
rotated keeps decrypting and signing. Reads the ``key_vault_key`` records of AzKV
(``ext.enabled``, ``ext.expiry_set``); a disabled key is not reported.
"""

from __future__ import annotations

from airflow_cloudmarker.events._azkv import NoExpiryEvent, expiry_check

CHECK = expiry_check("key", ["8.3.1", "8.3.2"])


class AzKVKeyNoExpiryEvent(NoExpiryEvent):
    """Emit a ``key_vault_key_no_expiry_event`` for an enabled ``key_vault_key`` whose ``expiry_set`` is False."""

    CHECK = CHECK
    EVENT_TYPE = "key_vault_key_no_expiry_event"
    EXT_TYPE = "key_vault_key"
