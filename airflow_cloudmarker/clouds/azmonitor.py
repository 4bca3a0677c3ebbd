"""AzMonitor: each subscription's activity log export, as log profiles (retired) and as diagnostic settings.

Log profiles were Azure Monitor's way to export the activity log; they retire on 30 September 2026,
replaced by the subscription's diagnostic settings. AzMonitor reads both, so the original's four
log-profile events keep working while they exist and AzActivityLogDiagnosticSettingEvent checks the
replacement (CIS Azure 6.0 6.1.1.1 and 6.1.1.2).

Per subscription, two items of ``ResourceCloud`` that fail alone:

- ``log_profiles.list()``, then, only when a profile exists, ``subscriptions.list_locations`` (the
  profile records carry the subscription's locations): ``log_profile`` records, or one
  ``log_profile_missing`` record;
- ``GET /subscriptions/{id}/providers/Microsoft.Insights/diagnosticSettings``: one
  ``activity_log_diagnostic_settings`` record. azure-mgmt-monitor 7 has no operation for it (its
  ``subscription_diagnostic_settings`` group came back only in 8.0 betas) and no ``send_request``, so
  the plugin sends the documented REST request with the SubscriptionClient's ``send_request``: an
  ARM pipeline like any other (same credential, scope, retries and transport).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.azure import activitylog, arm
from airflow_cloudmarker.azure.normalize import field

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

LOG_PROFILES, DIAGNOSTIC_SETTINGS = "log_profiles", "diagnostic_settings"
#: The API version of subscription diagnostic settings (the latest; 2017-05-01-preview also works)
DIAGNOSTIC_SETTINGS_API = "2021-05-01-preview"


@dataclass(frozen=True)
class _Clients:
    monitor: Any
    subscriptions: Any


class AzMonitor(arm.ResourceCloud):
    """Read every subscription's log profiles and activity-log diagnostic settings.

    Params: the same as AzVM (tenant, client, secret or conn_id; processes, threads, _max_subs,
    _max_recs (log profiles per subscription); authority_host, resource_manager_url, retry_backoff).
    The principal needs Reader on the subscriptions.

    Example config::

        plugins:
          myazmonitor:
            plugin: cloudmarker.clouds.azmonitor.AzMonitor
            params:
              conn_id: azure_audit
    """

    #: _max_recs counts log profiles (as in the original), not this plugin's two items per subscription
    max_recs_caps_items = False

    def clients(self, cred: Any, subscription_id: str, kwargs: dict[str, Any]) -> _Clients:
        """A MonitorManagementClient and a SubscriptionClient for the subscription."""
        from azure.mgmt.monitor import MonitorManagementClient
        from azure.mgmt.resource.subscriptions import SubscriptionClient

        return _Clients(MonitorManagementClient(cred, subscription_id, **kwargs), SubscriptionClient(cred, **kwargs))

    def list_items(self, clients: _Clients, sub: dict) -> Iterator[tuple[str, dict]]:
        """The subscription's two items (no call here: each item makes its own)."""
        yield LOG_PROFILES, sub
        yield DIAGNOSTIC_SETTINGS, sub

    def item_name(self, item: Any) -> str:
        """``/subscriptions/<id> (log_profiles)``."""
        kind, sub = item
        return f"/subscriptions/{field(sub, 'subscription_id')} ({kind})"

    def item_records(self, clients: _Clients, item: tuple[str, dict], sub: dict) -> Iterable[dict]:
        """The log-profile records, or the diagnostic-settings record, of the subscription."""
        kind, _ = item
        if kind == LOG_PROFILES:
            return self._log_profile_records(clients, sub)
        return [diagnostic_settings_record(self._diagnostic_settings(clients, sub), sub)]

    def _log_profile_records(self, clients: _Clients, sub: dict) -> list[dict]:
        profiles = []
        for profile in clients.monitor.log_profiles.list():
            profiles.append(profile.as_dict())
            if self._max_recs and len(profiles) >= self._max_recs:
                break
        if not profiles:
            return [arm.record("log_profile_missing", "log_profile_missing", None, sub, None)]
        sub_id = field(sub, "subscription_id")
        locations = [loc.name for loc in clients.subscriptions.subscriptions.list_locations(sub_id)]
        return [log_profile_record(profile, locations, sub) for profile in profiles]

    @staticmethod
    def _diagnostic_settings(clients: _Clients, sub: dict) -> list[dict]:
        """The subscription's diagnostic settings in the REST shape (following ``nextLink`` if ever given)."""
        from azure.core.rest import HttpRequest

        url = f"/subscriptions/{field(sub, 'subscription_id')}/providers/Microsoft.Insights/diagnosticSettings"
        params: dict[str, str] | None = {"api-version": DIAGNOSTIC_SETTINGS_API}
        settings: list[dict] = []
        while url:
            response = clients.subscriptions.send_request(HttpRequest("GET", url, params=params))
            response.raise_for_status()
            body = response.json() or {}
            settings += [s for s in body.get("value") or [] if isinstance(s, dict)]
            url, params = body.get("nextLink"), None
        return settings


def log_profile_record(profile: dict, subscription_locations: list[str], sub: dict) -> dict:
    """A ``log_profile`` record; a profile without a retention policy keeps logs 0 days, retention off."""
    retention = profile.get("retention_policy") if isinstance(profile.get("retention_policy"), dict) else {}
    return arm.record(
        "log_profile",
        "log_profile",
        profile,
        sub,
        profile.get("id"),
        retention_enabled=retention.get("enabled") is True,
        retention_days=retention.get("days") or 0,
        subscription_locations=subscription_locations,
        locations=list(profile.get("locations") or []),
    )


def diagnostic_settings_record(settings: list[dict], sub: dict) -> dict:
    """The subscription's ``activity_log_diagnostic_settings`` record (``raw.value``: the settings as listed)."""
    return arm.record(
        "activity_log_diagnostic_settings",
        "activity_log_diagnostic_settings",
        {"value": settings},
        sub,
        None,  # the subscription's id: the check is about the subscription
        **activitylog.summary(settings),
    )
