"""FirewallRuleEvent on normalized firewall_rule records, without Airflow."""

from __future__ import annotations

import pytest

from airflow_cloudmarker import util
from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent


def rule(**com_overrides):
    """A firewall_rule record open to the Internet on port 22 unless overridden."""
    com = {
        "cloud_type": "azure",
        "record_type": "firewall_rule",
        "reference": "/subscriptions/s1/rg/nsg1/securityRules/allow-ssh",
        "enabled": True,
        "direction": "in",
        "access": "allow",
        "protocol": "tcp",
        "source_addresses": ["0.0.0.0/0"],
        "destination_ports": ["22"],
    }
    com.update(com_overrides)
    return {
        "raw": {"name": "allow-ssh"},
        "ext": {"cloud_type": "azure", "record_type": "firewall_rule", "x": 1},
        "com": com,
    }


def events(record, **params):
    return list(FirewallRuleEvent(**params).eval(record))


def test_exposed_ssh_gives_one_event_with_copied_fields():
    (event,) = events(rule())
    com = event["com"]
    assert com["record_type"] == "firewall_rule_event"
    assert com["cloud_type"] == "azure"
    assert com["reference"] == "/subscriptions/s1/rg/nsg1/securityRules/allow-ssh"
    assert com["exposed_ports"] == [22]
    assert com["severity"] == "high"
    assert com["finding_key"] == "22"
    assert "Azure" in com["description"] and "22" in com["description"]
    assert com["recommendation"]
    assert event["ext"] == {"cloud_type": "azure", "record_type": "firewall_rule_event", "x": 1}


def test_ranges_and_all_ports_give_sorted_watched_ports():
    (event,) = events(rule(destination_ports=["3000-3400", "22", "5432"]))
    assert event["com"]["exposed_ports"] == [22, 3306, 3389, 5432]
    assert event["com"]["finding_key"] == "22,3306,3389,5432"
    (event,) = events(rule(destination_ports=["0-65535"], protocol="all"))
    assert event["com"]["exposed_ports"] == [22, 1433, 1521, 3306, 3389, 5432]


def test_gcp_description_is_friendly():
    (event,) = events(rule(cloud_type="gcp"))
    assert "Google Cloud Platform" in event["com"]["description"]
    assert event["com"]["cloud_type"] == "gcp"


@pytest.mark.parametrize(
    "overrides",
    [
        {"enabled": False},
        {"direction": "out"},
        {"access": "deny"},
        {"protocol": "udp"},
        {"source_addresses": ["10.0.0.0/8"]},
        {"destination_ports": ["80", "443"]},
        {"destination_ports": []},
    ],
)
def test_rules_that_do_not_expose_give_no_event(overrides):
    assert events(rule(**overrides)) == []


def test_custom_ports_and_severity():
    assert events(rule(), ports=[3389]) == []
    (event,) = events(rule(destination_ports=["8080"]), ports=[8080], severity="critical")
    assert event["com"]["exposed_ports"] == [8080]
    assert event["com"]["severity"] == "critical"


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"raw": {}, "ext": {}},
        {"com": None},
        {"com": {"record_type": "compute"}},
        {"com": {"record_type": "firewall_rule"}},
        rule(destination_ports="22"),
        rule(destination_ports=["ssh"]),
        rule(source_addresses=None),
        rule(protocol=None),
    ],
)
def test_other_and_malformed_records_are_ignored(record):
    assert events(record) == []


def test_missing_ext_is_fine():
    record = rule()
    del record["ext"]
    (event,) = events(record)
    assert event["ext"] == {"record_type": "firewall_rule_event"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ports": "22"}, "ports"),
        ({"ports": [22, "x"]}, "ports"),
        ({"ports": [70000]}, "ports"),
        ({"severity": "urgent"}, "severity"),
    ],
)
def test_bad_params_name_the_param(params, message):
    with pytest.raises(ValueError, match=message):
        FirewallRuleEvent(**params)


# Port entries come from cloud data: a bad one is skipped with a warning, never hiding the others.

BAD_ENTRIES = ["80-abc", "81-80", "70000", "65535-65536", "-1", -1, "1-2-3", "2_2", "", None, True, 22.0]


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("bad", BAD_ENTRIES)
def test_expand_port_ranges_skips_an_invalid_entry_with_one_warning(bad, caplog):
    caplog.set_level("WARNING", logger="airflow_cloudmarker.util")
    assert util.expand_port_ranges(["22", bad, "1000-1001"]) == {22, 1000, 1001}
    (message,) = warnings_of(caplog)
    assert repr(bad) in message


def test_expand_port_ranges_reads_numbers_ranges_and_wildcards(caplog):
    assert util.expand_port_ranges(["22", 80, " 1000-1002 ", "10 - 11", "65535", "0"]) == {
        0,
        10,
        11,
        22,
        80,
        1000,
        1001,
        1002,
        65535,
    }
    assert util.expand_port_ranges(["*"]) == util.expand_port_ranges(["Any"]) == set(range(65536))
    assert util.expand_port_ranges([]) == set()
    assert warnings_of(caplog) == []


def test_expand_port_ranges_warning_names_entry_reason_and_source(caplog):
    caplog.set_level("WARNING", logger="airflow_cloudmarker.util")
    assert util.expand_port_ranges(["81-80", "70000"], source="firewall rule r1") == set()
    assert warnings_of(caplog) == [
        "skipping port entry '81-80' of firewall rule r1: reversed range (low is above high)",
        "skipping port entry '70000' of firewall rule r1: port outside 0-65535",
    ]


@pytest.mark.parametrize("bad", ["80-abc", "81-80", "70000", "-1"])
def test_one_malformed_port_entry_does_not_hide_an_exposed_port(bad, caplog):
    caplog.set_level("WARNING", logger="airflow_cloudmarker.util")
    (event,) = events(rule(destination_ports=["22", bad]))
    assert event["com"]["exposed_ports"] == [22]
    (message,) = warnings_of(caplog)
    assert repr(bad) in message and "/securityRules/allow-ssh" in message


def test_every_valid_exposed_port_of_a_rule_with_bad_entries_is_reported():
    ports = ["3389", "x", "3000-3400", "5432-5400", "1433", "99999"]
    (event,) = events(rule(destination_ports=ports))
    assert event["com"]["exposed_ports"] == [1433, 3306, 3389]


@pytest.mark.parametrize(
    ("ports", "params", "check_ids"),
    [
        (["22"], {}, ["firewall_ssh_open_to_internet"]),
        (["3389"], {}, ["firewall_rdp_open_to_internet"]),
        (["3306"], {}, ["firewall_database_open_to_internet"]),
        (["8080"], {"ports": [8080]}, ["firewall_port_open_to_internet"]),
        (
            ["*"],
            {},
            ["firewall_rdp_open_to_internet", "firewall_ssh_open_to_internet", "firewall_database_open_to_internet"],
        ),
        (["22", "8080"], {"ports": [22, 8080]}, ["firewall_ssh_open_to_internet", "firewall_port_open_to_internet"]),
    ],
)
def test_each_event_names_the_checks_its_exposed_ports_fail(ports, params, check_ids):
    (event,) = events(rule(destination_ports=ports), **params)
    com = event["com"]
    assert com["check_ids"] == check_ids
    check = next(c for c in FirewallRuleEvent.CHECK if c.check_id == check_ids[0])
    assert (com["check_id"], com["title"], com["severity"]) == (check.check_id, check.title, check.severity)


def test_texts_come_from_the_check_and_read_as_before():
    (event,) = events(rule(destination_ports=["22", "3389"]))
    reference = "/subscriptions/s1/rg/nsg1/securityRules/allow-ssh"
    assert event["com"]["description"] == (
        f"Azure firewall rule {reference} exposes sensitive ports 22, 3389 to the entire Internet."
    )
    assert event["com"]["recommendation"] == (
        "Check whether ports 22, 3389 must be reachable from the Internet. If not, restrict the source addresses "
        f"of Azure firewall rule {reference} to trusted networks, or remove the rule."
    )
    (single,) = events(rule())
    assert "sensitive port 22 to" in single["com"]["description"]


def test_port_spans_keep_ranges_whole_and_skip_bad_entries(caplog):
    """What FirewallRuleEvent checks watched ports against: ``*`` stays one span, never 65,536 ports."""
    from airflow_cloudmarker.util import port_spans

    assert port_spans(["22", "80-abc", "*", 443, "81-80"], source="rule r") == [(22, 22), (0, 65535), (443, 443)]
    assert sum("skipping port entry" in r.getMessage() for r in caplog.records) == 2
