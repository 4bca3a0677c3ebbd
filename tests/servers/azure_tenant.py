"""A whole tenant for FakeAzure: every resource family's estate at once (for end-to-end runs and benchmarks).

Each family module serves its own resources (healthy and unhealthy ones, so every check has
something to find); this fills one server with all of them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from servers import (
    azure_disks,
    azure_keyvault,
    azure_monitor,
    azure_rdbms,
    azure_sql,
    azure_storage,
    azure_web,
)
from servers.azure import ARM_TYPES, FakeAzure, security_rule

#: Inbound rules from the Internet that the built-in NSG lacks: RDP, a database port, another port
EXPOSED = {"allow-rdp": "3389", "allow-sql": "1433", "allow-http-alt": "8080"}
#: Extensions added to each subscription's first VM: one to blacklist, one nobody approved
EXTRA_EXTENSIONS = ("CustomScriptExtension", "OmsAgentForLinux")


def populate(az: FakeAzure) -> None:
    """Every family's estate in every subscription of ``az`` (web apps from ``azure_web``, with their configs),
    plus what the family estates leave out so that every check of docs/azure.md's audit has a finding:
    an NSG exposing RDP, a database port and another port, extensions on a VM, and (in the fourth
    subscription) a log profile keeping activity logs for 30 days only."""
    azure_disks.populate(az)
    azure_keyvault.populate(az)
    azure_monitor.populate(az)
    azure_rdbms.populate(az, web_apps=False)
    azure_sql.populate(az)
    azure_storage.populate(az)
    azure_web.populate(az)
    for index, sid in enumerate(az.subscription_ids()):
        _add_exposed_nsg(az, sid, index)
        views = az.subs[sid]["views"]
        first = next(iter(views.values()), None)
        if first is not None:
            first["extensions"] = [*first["extensions"], *({"name": name} for name in EXTRA_EXTENSIONS)]
        if index == 3:
            profile = azure_monitor.log_profile(
                sid, ["global", *azure_monitor.REGIONS], ["Write", "Delete", "Action"], {"enabled": True, "days": 30}
            )
            az.add_list(f"/subscriptions/{sid}/{azure_monitor.LOG_PROFILES}", [profile])


def _add_exposed_nsg(az: FakeAzure, sid: str, index: int) -> None:
    nsg_type = ARM_TYPES["nsg"]
    nsg_id = f"/subscriptions/{sid}/resourceGroups/rg-{index}/providers/{nsg_type}/nsg-exposed-{index}"
    rules = [
        security_rule(
            nsg_id, name, sourceAddressPrefix="*", destinationPortRange=port, protocol="Tcp", priority=200 + n
        )
        for n, (name, port) in enumerate(EXPOSED.items())
    ]
    nsg = {
        "id": nsg_id,
        "name": f"nsg-exposed-{index}",
        "type": nsg_type,
        "location": "eastus",
        "properties": {"securityRules": rules, "defaultSecurityRules": [], "provisioningState": "Succeeded"},
    }
    az.add_list(f"/subscriptions/{sid}/providers/{nsg_type}", [nsg])


def serve_in_process(directory: str, info: Any, latency: float = 0.0, **kwargs: Any) -> None:
    """Run a FakeAzure holding the whole tenant until killed (for a benchmark: its CPU apart from the client's).

    Sends (url, ca_file, tenant, client, secret, subscription ids) to ``info``; ``/_test/all-calls``
    returns every call so far but the logins (and with POST clears them).
    """
    with FakeAzure(Path(directory), **kwargs) as az:
        populate(az)

        def all_calls(method: str, path: str, query: Any, headers: Any, body: str) -> tuple[int, dict, list]:
            with az._lock:
                calls = [list(c) for c in az.calls if c[1].startswith(("/subscriptions", "/vaults"))]
                if method == "POST":
                    az.calls.clear()
            return 200, {}, calls

        az.add_route("/_test/all-calls", all_calls)
        az.latency = latency
        info.put((az.url, az.ca_file, az.tenant, az.client, az.secret, list(az.subs)))
        threading.Event().wait()
