"""GCP firewall normalization: each allowed/denied entry becomes one firewall_rule record that
FirewallRuleEvent (the real plugin) judges exactly as it judges Azure's rules."""

from __future__ import annotations

from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent
from airflow_cloudmarker.gcp.firewall import firewall_rules, normalize_protocol

LINK = "https://www.googleapis.com/compute/v1/projects/p1/global/firewalls/"
EXT = {"cloud_type": "gcp", "project_id": "p1", "project_name": "P one", "zone": None, "client_email": "a@b"}


def firewall(name: str, **fields) -> dict:
    return {"name": name, "selfLink": LINK + name, "direction": "INGRESS", "priority": 1000, **fields}


def coms(fw: dict) -> list[dict]:
    return [r["com"] for r in firewall_rules(fw, EXT)]


def test_each_allowed_and_denied_entry_becomes_one_rule():
    fw = firewall(
        "mixed",
        sourceRanges=["0.0.0.0/0", "10.0.0.0/8"],
        allowed=[{"IPProtocol": "tcp", "ports": ["22", "8000-8080"]}, {"IPProtocol": "UDP", "ports": [53]}],
        denied=[{"IPProtocol": "icmp"}],
    )
    records = list(firewall_rules(fw, EXT))
    assert [(r["com"]["access"], r["com"]["protocol"], r["com"]["destination_ports"]) for r in records] == [
        ("allow", "tcp", ["22", "8000-8080"]),
        ("allow", "udp", ["53"]),
        ("deny", "icmp", ["0-65535"]),
    ]
    for record in records:
        assert record["raw"] is fw
        assert record["ext"] == {**EXT, "record_type": "firewall_rule"}
        com = record["com"]
        assert com["cloud_type"] == "gcp" and com["record_type"] == "firewall_rule"
        assert com["reference"] == LINK + "mixed"
        assert com["enabled"] is True and com["direction"] == "in"
        assert com["source_addresses"] == ["0.0.0.0/0", "10.0.0.0/8"]
    assert EXT.get("record_type") is None  # the caller's ext is not modified


def test_direction_disabled_and_missing_fields():
    out = coms(firewall("egress", direction="EGRESS", disabled=True, destinationRanges=["1.2.3.4/32"], allowed=[{}]))
    assert out == [
        {
            "cloud_type": "gcp",
            "record_type": "firewall_rule",
            "reference": LINK + "egress",
            "enabled": False,
            "direction": "out",
            "source_addresses": [],
            "destination_addresses": ["1.2.3.4/32"],
            "priority": 1000,
            "access": "allow",
            "protocol": "all",
            "destination_ports": ["0-65535"],
        }
    ]
    assert coms(firewall("none")) == []  # no allowed/denied entries: no rules


def test_protocol_numbers_and_case():
    assert [normalize_protocol(p) for p in ("TCP", "6", "17", "all", None, "esp", "99")] == [
        "tcp",
        "tcp",
        "udp",
        "all",
        "all",
        "esp",
        "99",
    ]


def test_firewall_rule_event_flags_only_open_inbound_allow_rules():
    event = FirewallRuleEvent()
    world = ["0.0.0.0/0"]
    tcp22 = [{"IPProtocol": "tcp", "ports": ["22"]}]
    cases = {
        "ssh-world": (dict(sourceRanges=world, allowed=tcp22), [22]),
        "all-world": (dict(sourceRanges=world, allowed=[{"IPProtocol": "all"}]), [22, 1433, 1521, 3306, 3389, 5432]),
        "range": (dict(sourceRanges=world, allowed=[{"IPProtocol": "6", "ports": ["3000-3400"]}]), [3306, 3389]),
        "internal": (dict(sourceRanges=["10.0.0.0/8"], allowed=tcp22), []),
        "deny": (dict(sourceRanges=world, denied=tcp22), []),
        "disabled": (dict(disabled=True, sourceRanges=world, allowed=[{"IPProtocol": "tcp"}]), []),
        "egress": (dict(direction="EGRESS", destinationRanges=world, allowed=[{"IPProtocol": "tcp"}]), []),
        "udp": (dict(sourceRanges=world, allowed=[{"IPProtocol": "udp", "ports": ["22"]}]), []),
    }
    for name, (fields, expected_ports) in cases.items():
        fw = firewall(name, **fields)
        events = [e for record in firewall_rules(fw, EXT) for e in event.eval(record)]
        assert [e["com"]["exposed_ports"] for e in events] == ([expected_ports] if expected_ports else []), name
        for e in events:
            assert e["com"]["cloud_type"] == "gcp" and e["com"]["reference"] == LINK + name
            assert "Google Cloud Platform" in e["com"]["description"]
            assert e["ext"]["project_id"] == "p1" and e["ext"]["record_type"] == "firewall_rule_event"
