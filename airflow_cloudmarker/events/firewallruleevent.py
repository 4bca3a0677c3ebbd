"""FirewallRuleEvent: flag firewall rules that open sensitive ports to the whole Internet.

Cloud plugins (AzCloud, GCPCloud) normalize their firewall rules into ``firewall_rule`` records
with one common shape in ``com``; this event reads only that shape, so it works for every cloud.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from airflow_cloudmarker import util

DEFAULT_PORTS = (22, 3389, 1433, 1521, 3306, 5432)
INTERNET = "0.0.0.0/0"


def _check_ports(ports: Any) -> tuple[int, ...]:
    if isinstance(ports, (str, bytes)) or not isinstance(ports, Iterable):
        raise ValueError(f"FirewallRuleEvent param ports must be a list of port numbers, not {ports!r}")
    checked = []
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"FirewallRuleEvent param ports: {port!r} is not a port number (0-65535)")
        checked.append(port)
    return tuple(sorted(set(checked)))


class FirewallRuleEvent:
    """Emit a ``firewall_rule_event`` for an inbound allow rule exposing watched ports to the Internet.

    Params:
        ports: TCP ports to watch (default 22, 3389, 1433, 1521, 3306, 5432).
        severity: severity of the finding (default ``high``).

    Example config::

        plugins:
          firewallruleevent:
            params:
              ports: [22, 3389]
    """

    def __init__(self, ports: list[int] | None = None, severity: str = "high"):
        self._ports = frozenset(_check_ports(DEFAULT_PORTS if ports is None else ports))
        self._severity = util.check_severity("FirewallRuleEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event for a ``firewall_rule`` record that exposes watched ports; ignore anything else."""
        com = record.get("com") if isinstance(record, dict) else None
        if not isinstance(com, dict) or com.get("record_type") != "firewall_rule":
            return
        exposed = self._exposed_ports(com)
        if not exposed:
            return
        cloud_type = str(com.get("cloud_type", ""))
        reference = str(com.get("reference", ""))
        friendly_cloud = util.friendly_string(cloud_type)
        port_text = ", ".join(str(p) for p in exposed)
        plural = "s" if len(exposed) > 1 else ""
        ext = record.get("ext") if isinstance(record.get("ext"), dict) else {}
        yield {
            "ext": util.merge_dicts(ext, {"record_type": "firewall_rule_event"}),
            "com": {
                "cloud_type": cloud_type,
                "record_type": "firewall_rule_event",
                "reference": reference,
                "exposed_ports": exposed,
                "severity": self._severity,
                "finding_key": ",".join(str(p) for p in exposed),
                "description": (
                    f"{friendly_cloud} firewall rule {reference} exposes sensitive port{plural} {port_text} "
                    "to the entire Internet."
                ),
                "recommendation": (
                    f"Check whether port{plural} {port_text} must be reachable from the Internet. If not, restrict "
                    f"the source addresses of {friendly_cloud} firewall rule {reference} to trusted networks, "
                    "or remove the rule."
                ),
            },
        }

    def _exposed_ports(self, com: dict) -> list[int]:
        """Return the sorted watched ports the rule exposes to the Internet; [] for non-matching rules.

        A malformed port entry is skipped (with a warning naming the entry and the rule) and the
        rule's other entries still count: one bad entry must not hide an exposed port.
        """
        if com.get("enabled") is not True:
            return []
        if com.get("direction") != "in" or com.get("access") != "allow":
            return []
        if str(com.get("protocol", "")).lower() not in ("tcp", "all"):
            return []
        sources = com.get("source_addresses")
        ports = com.get("destination_ports")
        if not isinstance(sources, list) or not isinstance(ports, list):
            return []
        if INTERNET not in sources:
            return []
        rule = f"firewall rule {com.get('reference')}"
        return sorted(self._ports & util.expand_port_ranges(ports, source=rule))

    def done(self) -> None:
        """Nothing to clean up."""
