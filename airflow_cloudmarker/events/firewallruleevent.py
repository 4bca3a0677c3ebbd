"""FirewallRuleEvent: flag firewall rules that open sensitive ports to the whole Internet.

Cloud plugins (AzCloud, GCPCloud, AwsCloud) normalize their firewall rules into ``firewall_rule`` records
with one common shape in ``com``; this event reads only that shape, so it works for every cloud.

Which CIS control a rule fails depends on the ports it exposes (RDP and SSH have controls of their
own, database ports none), so the plugin declares one check per group of ports (``CHECK``). An
event names in ``com.check_id`` the check of the first group its exposed ports fall in (RDP, SSH,
databases, then any other watched port) and in ``com.check_ids`` every group they fall in: one rule
open to every port fails both the RDP and the SSH control.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from airflow_cloudmarker import util
from airflow_cloudmarker.contract import CIS_AWS, CIS_AZURE, CIS_GCP, CheckMetadata

DEFAULT_PORTS = (22, 3389, 1433, 1521, 3306, 5432)
#: Source ranges that mean the whole Internet: IPv4 and IPv6 (AWS security groups and GCP firewalls carry both).
INTERNET = frozenset({"0.0.0.0/0", "::/0"})

_DESCRIPTION = "{cloud} firewall rule {reference} exposes sensitive {ports} to the entire Internet."
_REMEDIATION = (
    "Check whether {ports} must be reachable from the Internet. If not, restrict the source addresses of "
    "{cloud} firewall rule {reference} to trusted networks, or remove the rule."
)
_LINKS = (
    "https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview",
    "https://cloud.google.com/firewall/docs/firewalls",
    "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html",
)


def _firewall_check(check_id: str, title: str, risk: str, controls: dict[str, list[str]]) -> CheckMetadata:
    return CheckMetadata(
        check_id=check_id,
        title=title,
        severity="high",
        resource_type="firewall_rule",
        risk=risk,
        description=_DESCRIPTION,
        remediation=_REMEDIATION,
        links=_LINKS,
        controls=controls,
    )


RDP_CHECK = _firewall_check(
    "firewall_rdp_open_to_internet",
    "Firewall rule allows RDP (port 3389) from the Internet",
    "Anyone on the Internet can reach the Remote Desktop service: password guessing and RDP exploits "
    "are among the most common ways into a network.",
    {CIS_AZURE: ["7.1"], CIS_GCP: ["3.7"], CIS_AWS: ["6.3", "6.4"]},
)
SSH_CHECK = _firewall_check(
    "firewall_ssh_open_to_internet",
    "Firewall rule allows SSH (port 22) from the Internet",
    "Anyone on the Internet can reach the SSH service: password guessing, stolen keys and SSH server "
    "exploits give a shell on the machine.",
    {CIS_AZURE: ["7.2"], CIS_GCP: ["3.6"], CIS_AWS: ["6.3", "6.4"]},
)
DATABASE_CHECK = _firewall_check(
    "firewall_database_open_to_internet",
    "Firewall rule allows database ports (1433, 1521, 3306, 5432) from the Internet",
    "Anyone on the Internet can reach the database server (SQL Server, Oracle, MySQL, PostgreSQL): "
    "weak or leaked credentials and server exploits expose the data. No CIS network control covers "
    "database ports; the CIS database controls check the database's own firewall.",
    {},
)
PORT_CHECK = _firewall_check(
    "firewall_port_open_to_internet",
    "Firewall rule allows a watched port from the Internet",
    "Anyone on the Internet can reach a service that the config's ports param says must not be public.",
    {},
)
#: Which check each built-in port belongs to; any other watched port is PORT_CHECK's.
_CHECK_OF_PORT = {3389: RDP_CHECK, 22: SSH_CHECK, 1433: DATABASE_CHECK, 1521: DATABASE_CHECK}
_CHECK_OF_PORT.update({3306: DATABASE_CHECK, 5432: DATABASE_CHECK})


def _check_ports(ports: Any) -> tuple[int, ...]:
    if isinstance(ports, (str, bytes)) or not isinstance(ports, Iterable):
        raise ValueError(f"FirewallRuleEvent param ports must be a list of port numbers, not {ports!r}")
    checked = []
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"FirewallRuleEvent param ports: {port!r} is not a port number (0-65535)")
        checked.append(port)
    return tuple(sorted(set(checked)))


def _checks_of_ports(ports: Iterable[int]) -> list[CheckMetadata]:
    """The checks the exposed ports fail, in the order of ``FirewallRuleEvent.CHECK``."""
    failed = {_CHECK_OF_PORT.get(port, PORT_CHECK).check_id for port in ports}
    return [check for check in FirewallRuleEvent.CHECK if check.check_id in failed]


class FirewallRuleEvent:
    """Emit a ``firewall_rule_event`` for an inbound allow rule exposing watched ports to the Internet.

    Params:
        ports: TCP ports to watch (default 22, 3389, 1433, 1521, 3306, 5432).
        severity: severity of the finding (default: the check's, ``high``).

    Example config::

        plugins:
          firewallruleevent:
            params:
              ports: [22, 3389]
    """

    CHECK = (RDP_CHECK, SSH_CHECK, DATABASE_CHECK, PORT_CHECK)

    def __init__(self, ports: Sequence[int] | None = DEFAULT_PORTS, severity: str | None = None):
        self._ports = frozenset(_check_ports(DEFAULT_PORTS if ports is None else ports))
        self._severity = None if severity is None else util.check_severity("FirewallRuleEvent", severity)

    def eval(self, record: dict) -> Iterator[dict]:
        """Yield one event for a ``firewall_rule`` record that exposes watched ports; ignore anything else."""
        com = record.get("com") if isinstance(record, dict) else None
        if not isinstance(com, dict) or com.get("record_type") != "firewall_rule":
            return
        exposed = self._exposed_ports(com)
        if not exposed:
            return
        checks = _checks_of_ports(exposed)
        cloud_type = str(com.get("cloud_type", ""))
        reference = str(com.get("reference", ""))
        port_text = ", ".join(str(p) for p in exposed)
        values = {
            "cloud": util.friendly_string(cloud_type),
            "reference": reference,
            "ports": f"port{'s' if len(exposed) > 1 else ''} {port_text}",
        }
        ext = record.get("ext") if isinstance(record.get("ext"), dict) else {}
        yield {
            "ext": util.merge_dicts(ext, {"record_type": "firewall_rule_event"}),
            "com": {
                "cloud_type": cloud_type,
                "record_type": "firewall_rule_event",
                "reference": reference,
                "exposed_ports": exposed,
                "finding_key": ",".join(str(p) for p in exposed),
                **checks[0].event_com(values, self._severity),
                "check_ids": [c.check_id for c in checks],
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
        if INTERNET.isdisjoint(str(s) for s in sources):
            return []
        rule = f"firewall rule {com.get('reference')}"
        spans = util.port_spans(ports, source=rule)
        return sorted(p for p in self._ports if any(low <= p <= high for low, high in spans))

    def done(self) -> None:
        """Nothing to clean up."""
