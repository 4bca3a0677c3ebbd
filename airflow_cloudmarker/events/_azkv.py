"""What the two Key Vault expiry events share: their condition and the shape of their check.

Keys and secrets are listed by AzKV with their attributes only (never their values):
``ext.enabled`` and ``ext.expiry_set`` (``attributes.expires`` is set).
"""

from __future__ import annotations

from airflow_cloudmarker.azure.events import AzureEvent, Problem
from airflow_cloudmarker.contract import CIS_AZURE, CheckMetadata


def expiry_check(item: str, controls: list[str]) -> CheckMetadata:
    """The check that an enabled Key Vault ``item`` (``key`` or ``secret``) has an expiration date."""
    return CheckMetadata(
        check_id=f"azure_keyvault_{item}_no_expiry",
        title=f"Azure Key Vault {item} has no expiration date",
        severity="medium",
        resource_type=f"key_vault_{item}",
        risk=f"A {item} that never expires stays usable forever: a leaked or forgotten {item} keeps working, "
        "and nothing forces its rotation.",
        description=f"{{cloud}} Key Vault {item} {{reference}} is enabled and has no expiration date.",
        remediation=f"Check whether {item} {{reference}} is still needed; if it is, set an expiration date on "
        "it (and rotate it before then), otherwise disable or delete it.",
        links=(
            f"https://learn.microsoft.com/azure/key-vault/{item}s/about-{item}s",
            "https://learn.microsoft.com/azure/key-vault/general/best-practices",
        ),
        # The first control is for vaults using Azure RBAC, the second for vaults using access
        # policies; the record does not say which model the vault uses, and the check is the same.
        controls={CIS_AZURE: controls},
    )


class NoExpiryEvent(AzureEvent):
    """An event on an enabled key or secret without an expiration date."""

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """One problem when the item is enabled (truthy) and its ``expiry_set`` is exactly False.

        A disabled item cannot be used, so it is not reported.
        """
        return [Problem()] if ext.get("enabled") and ext.get("expiry_set") is False else []
