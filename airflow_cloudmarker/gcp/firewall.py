"""GCP firewall -> ``firewall_rule`` records in the shape FirewallRuleEvent reads for every cloud.

A GCP firewall holds a list of ``allowed`` or ``denied`` entries (protocol + ports) that share one
direction, source ranges and priority; Azure's rules carry one protocol each. Splitting each
entry into its own record gives both clouds the same ``com`` shape, so one event plugin serves both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ALL_PORTS = "0-65535"
DIRECTIONS = {"INGRESS": "in", "EGRESS": "out"}
#: IPProtocol may be a name or an IANA number; the common numbers get their names.
PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "51": "ah", "132": "sctp"}


def normalize_protocol(value: Any) -> str:
    """``TCP``/``6`` -> ``tcp``; a missing protocol means all protocols."""
    text = str(value if value is not None else "all").strip().lower()
    return PROTOCOL_NUMBERS.get(text, text) or "all"


def normalize_ports(ports: Any) -> list[str]:
    """The entry's ports as strings (``"22"``, ``"8000-8080"``); no ports means every port."""
    if not ports:
        return [ALL_PORTS]
    return [str(port).strip() for port in ports]


def firewall_rules(firewall: dict, ext: dict) -> Iterator[dict]:
    """Yield one ``firewall_rule`` record per entry of the firewall's ``allowed`` and ``denied`` lists.

    ``raw`` is the whole firewall as the API returned it (the rule's context: name, priority,
    target tags); ``ext`` is ``ext`` with ``record_type`` ``firewall_rule``.
    """
    direction = DIRECTIONS.get(str(firewall.get("direction", "INGRESS")).upper(), "in")
    common = {
        "cloud_type": "gcp",
        "record_type": "firewall_rule",
        "reference": firewall.get("selfLink"),
        "enabled": not firewall.get("disabled", False),
        "direction": direction,
        "source_addresses": list(firewall.get("sourceRanges") or []),
        "destination_addresses": list(firewall.get("destinationRanges") or []),
        "priority": firewall.get("priority"),
    }
    rule_ext = {**ext, "record_type": "firewall_rule"}
    for key, access in (("allowed", "allow"), ("denied", "deny")):
        for entry in firewall.get(key) or []:
            yield {
                "raw": firewall,
                "ext": dict(rule_ext),
                "com": {
                    **common,
                    "access": access,
                    "protocol": normalize_protocol(entry.get("IPProtocol")),
                    "destination_ports": normalize_ports(entry.get("ports")),
                },
            }
