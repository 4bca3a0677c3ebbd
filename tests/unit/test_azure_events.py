"""Pure tests: NSG rule normalization feeding FirewallRuleEvent, and the AzVM disk-encryption events."""

from __future__ import annotations

import pytest

from airflow_cloudmarker.azure.normalize import (
    all_encrypted,
    disk_encryption,
    firewall_rule_com,
    nsg_rules,
    power_state,
)
from airflow_cloudmarker.clouds.azvm import AzVM
from airflow_cloudmarker.events.azvmdatadiskencryptionevent import AzVMDataDiskEncryptionEvent
from airflow_cloudmarker.events.azvmosdiskencryptionevent import AzVMOSDiskEncryptionEvent
from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent


def wire_rule(**props):
    """A security rule in the ARM wire shape that current SDK models' as_dict() returns."""
    base = {"protocol": "Tcp", "access": "Allow", "direction": "Inbound", "sourcePortRange": "*", "priority": 100}
    return {"id": "/subscriptions/s/nsg/securityRules/r", "name": "r", "properties": {**base, **props}}


@pytest.mark.parametrize("source", ["*", "Internet", "Any", "0.0.0.0/0", "internet"])
def test_internet_sources_normalize_to_0_0_0_0(source):
    com = firewall_rule_com(wire_rule(sourceAddressPrefix=source, destinationPortRange="22"))
    assert com["source_addresses"] == ["0.0.0.0/0"]
    assert com == {
        "cloud_type": "azure",
        "record_type": "firewall_rule",
        "reference": "/subscriptions/s/nsg/securityRules/r",
        "enabled": True,
        "direction": "in",
        "access": "allow",
        "protocol": "tcp",
        "source_addresses": ["0.0.0.0/0"],
        "destination_ports": ["22"],
    }


def test_star_protocol_and_ports_and_plural_fields():
    com = firewall_rule_com(
        wire_rule(
            protocol="*",
            sourceAddressPrefix="10.0.0.0/8",
            sourceAddressPrefixes=["Internet", "192.168.0.0/16"],
            destinationPortRange="*",
            destinationPortRanges=["1000-2000"],
            access="Deny",
            direction="Outbound",
        )
    )
    assert com["protocol"] == "all"
    assert com["source_addresses"] == ["0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/16"]
    assert com["destination_ports"] == ["0-65535", "1000-2000"]
    assert (com["access"], com["direction"]) == ("deny", "out")


def test_flattened_snake_case_rules_read_too():
    rule = {
        "id": "r1",
        "protocol": "Udp",
        "access": "Allow",
        "direction": "Inbound",
        "source_address_prefixes": ["Any"],
        "destination_port_ranges": ["53"],
    }
    com = firewall_rule_com(rule)
    assert (com["protocol"], com["source_addresses"], com["destination_ports"]) == ("udp", ["0.0.0.0/0"], ["53"])


def test_nsg_rules_include_default_rules():
    nsg = {"properties": {"securityRules": [wire_rule()], "defaultSecurityRules": [wire_rule(), wire_rule()]}}
    assert len(nsg_rules(nsg)) == 3
    assert nsg_rules({}) == []


@pytest.mark.parametrize(
    ("props", "exposed"),
    [
        ({"sourceAddressPrefix": "Internet", "destinationPortRange": "22"}, [22]),
        (
            {"sourceAddressPrefix": "*", "destinationPortRanges": ["3000-3400", "1433"], "protocol": "*"},
            [1433, 3306, 3389],
        ),
        ({"sourceAddressPrefix": "*", "destinationPortRange": "*"}, [22, 1433, 1521, 3306, 3389, 5432]),
        ({"sourceAddressPrefix": "VirtualNetwork", "destinationPortRange": "22"}, None),
        ({"sourceAddressPrefix": "*", "destinationPortRange": "22", "protocol": "Udp"}, None),
        ({"sourceAddressPrefix": "*", "destinationPortRange": "22", "access": "Deny"}, None),
        ({"sourceAddressPrefix": "*", "destinationPortRange": "443"}, None),
    ],
)
def test_normalized_azure_rules_through_firewallruleevent(props, exposed):
    record = {"raw": {}, "ext": {"record_type": "firewall_rule"}, "com": firewall_rule_com(wire_rule(**props))}
    events = list(FirewallRuleEvent().eval(record))
    assert [e["com"]["exposed_ports"] for e in events] == ([exposed] if exposed else [])
    for event in events:
        assert "Azure" in event["com"]["description"]
        assert event["com"]["cloud_type"] == "azure"


def vm_record(os_encrypted: bool, data: dict[str, bool], record_type: str = "vm_instance_view") -> dict:
    """An AzVM record (wire-shaped raw with the instance view) for the given disk states."""
    disks = [{"name": "vm1-os", "encryptionSettings": [{"enabled": os_encrypted}]}]
    disks += [{"name": name, "encryptionSettings": [{"enabled": enc}]} for name, enc in data.items()]
    raw = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        "name": "vm1",
        "properties": {
            "storageProfile": {
                "osDisk": {"name": "vm1-os"},
                "dataDisks": [{"name": n, "lun": i} for i, n in enumerate(data)],
            }
        },
        "instance_view": {"disks": disks, "statuses": [{"code": "PowerState/running"}]},
    }
    os_name, os_enc, data_status = disk_encryption(raw)
    return {
        "raw": raw,
        "ext": {
            "cloud_type": "azure",
            "record_type": record_type,
            "subscription_id": "s",
            "os_disk_encrypted": os_enc,
            "all_data_disks_encrypted": all(e for _, e in data_status),
        },
        "com": {"cloud_type": "azure", "record_type": "compute", "reference": raw["id"]},
    }


def test_disk_encryption_reads_the_instance_view():
    record = vm_record(False, {"d0": True, "d1": False})
    assert disk_encryption(record["raw"]) == ("vm1-os", False, [("d0", True), ("d1", False)])
    assert power_state(record["raw"]["instance_view"]) == "running"
    assert power_state({}) is None


def test_os_disk_event():
    (event,) = AzVMOSDiskEncryptionEvent().eval(vm_record(False, {"d0": True}))
    com = event["com"]
    assert com["record_type"] == "vm_os_disk_encryption_event"
    assert com["reference"].endswith("/virtualMachines/vm1")
    assert (com["severity"], com["finding_key"]) == ("medium", "vm1-os")
    assert (com["check_id"], com["title"]) == ("azure_vm_os_disk_unencrypted", AzVMOSDiskEncryptionEvent.CHECK.title)
    assert com["description"] == "Azure virtual machine vm1 has unencrypted OS disk vm1-os."
    assert "vm1" in com["description"] and "vm1-os" in com["description"] and com["recommendation"]
    assert event["ext"]["record_type"] == "vm_os_disk_encryption_event" and event["ext"]["subscription_id"] == "s"
    assert list(AzVMOSDiskEncryptionEvent().eval(vm_record(True, {"d0": False}))) == []


def test_os_disk_event_without_disk_name_uses_os_disk_key():
    record = vm_record(False, {})
    record["raw"]["properties"]["storageProfile"] = {}
    (event,) = AzVMOSDiskEncryptionEvent(severity="high").eval(record)
    assert (event["com"]["finding_key"], event["com"]["severity"]) == ("os_disk", "high")


def test_data_disk_events_one_per_unencrypted_disk():
    events = list(AzVMDataDiskEncryptionEvent().eval(vm_record(True, {"d0": False, "d1": True, "d2": False})))
    assert [e["com"]["finding_key"] for e in events] == ["d0", "d2"]
    assert {e["com"]["record_type"] for e in events} == {"vm_data_disk_encryption_event"}
    assert all(e["com"]["severity"] == "medium" and "d" in e["com"]["description"] for e in events)
    assert events[0]["ext"]["disk_name"] == "d0"
    assert {e["com"]["check_id"] for e in events} == {"azure_vm_data_disk_unencrypted"}
    assert events[0]["com"]["recommendation"] == (
        "Encrypt data disk d0 of Azure virtual machine vm1 with Azure Disk Encryption (or encryption at host), "
        "so its data cannot be read from a copy of the disk."
    )
    assert list(AzVMDataDiskEncryptionEvent().eval(vm_record(False, {"d0": True}))) == []


def vm_with(profile_data_disks: list[str], view_disks: list[dict] | None) -> dict:
    """An AzVM record whose storage profile and instance view are given separately (``None``: no view disks)."""
    record = vm_record(True, {})
    record["raw"]["properties"]["storageProfile"]["dataDisks"] = [
        {"name": n, "lun": i} for i, n in enumerate(profile_data_disks)
    ]
    view = record["raw"]["instance_view"]
    if view_disks is None:
        del view["disks"]
    else:
        view["disks"] = [view["disks"][0], *view_disks]  # the OS disk (encrypted) first, as Azure reports it
    return record


def data_disk_findings(record: dict) -> list[str]:
    return [e["com"]["finding_key"] for e in AzVMDataDiskEncryptionEvent().eval(record)]


def test_data_disks_are_those_the_instance_view_reports():
    # The storage profile omits d1 (the original judged instance_view.disks): d1 is still judged.
    record = vm_with(["d0"], [{"name": "d0", "encryptionSettings": [{"enabled": False}]}, {"name": "d1"}])
    assert data_disk_findings(record) == ["d0", "d1"]


def test_data_disk_missing_from_the_instance_view_is_unknown_not_unencrypted():
    # A deallocated VM reports no disk statuses: its data disks are unknown, so no false alarm.
    record = vm_with(["d0", "d1"], None)
    record["raw"]["instance_view"]["statuses"] = [{"code": "PowerState/deallocated"}]
    assert data_disk_findings(record) == []
    assert data_disk_findings(vm_with(["d0", "d1"], [{"name": "d1", "encryptionSettings": None}])) == ["d1"]


@pytest.mark.parametrize(
    ("disk", "unencrypted"),
    [
        ({"name": "d0"}, True),
        ({"name": "d0", "encryptionSettings": None}, True),
        ({"name": "d0", "encryptionSettings": []}, True),
        ({"name": "d0", "encryptionSettings": [{"enabled": False}, {}]}, True),
        ({"name": "d0", "encryptionSettings": {"enabled": True}}, True),  # not a list: no setting is enabled
        ({"name": "d0", "encryptionSettings": [{"enabled": False}, {"enabled": True}]}, False),
        ({"name": "d0", "encryption_settings": [{"enabled": True}]}, False),  # flattened (older SDK) shape
        ({"name": "d0", "encryption_settings": [{"enabled": False}]}, True),
    ],
)
def test_data_disk_encryption_settings(disk, unencrypted):
    assert data_disk_findings(vm_with(["d0"], [disk])) == (["d0"] if unencrypted else [])


def test_os_disk_is_never_a_data_disk_and_duplicates_count_once():
    record = vm_with([], [{"name": "VM1-OS"}, {"name": "d0"}, {"name": "d0"}, {"name": ""}, "junk", {"lun": 3}])
    assert data_disk_findings(record) == ["d0"]
    no_os_name = vm_with(["d0"], [{"name": "d0"}])
    no_os_name["raw"]["properties"]["storageProfile"]["osDisk"] = {}
    assert data_disk_findings(no_os_name) == []  # which view disk is the OS disk is unknown


@pytest.mark.parametrize("plugin", [AzVMOSDiskEncryptionEvent, AzVMDataDiskEncryptionEvent])
@pytest.mark.parametrize(
    "record",
    [
        {},
        {"raw": None, "ext": None, "com": None},
        {"ext": {"record_type": "vm_instance_view", "os_disk_encrypted": False}},
        {"ext": {"record_type": "vm_instance_view"}, "raw": {"properties": "junk", "instance_view": 7}},
        vm_record(False, {"d0": False}, record_type="virtual_machine"),
    ],
)
def test_disk_events_ignore_other_and_malformed_records(plugin, record):
    assert list(plugin().eval(record)) == []


@pytest.mark.parametrize("plugin", [AzVMOSDiskEncryptionEvent, AzVMDataDiskEncryptionEvent])
def test_disk_events_bad_severity_names_the_param(plugin):
    with pytest.raises(ValueError, match="severity"):
        plugin(severity="huge")


def deallocated_vm() -> dict:
    """A deallocated VM as AzVM reads it: the storage profile names its disks, the instance view lists none."""
    return {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm2",
        "name": "vm2",
        "properties": {"storageProfile": {"osDisk": {"name": "vm2-os"}, "dataDisks": [{"name": "d0", "lun": 0}]}},
        "instance_view": {"statuses": [{"code": "PowerState/deallocated"}]},
    }


def test_disks_the_instance_view_does_not_list_are_unknown_not_unencrypted():
    raw = deallocated_vm()
    assert disk_encryption(raw) == ("vm2-os", None, [("d0", None)])
    record = AzVM._record(raw, raw["instance_view"], {"subscription_id": "s", "display_name": "sub"})
    assert record["ext"]["os_disk_encrypted"] is None and record["ext"]["all_data_disks_encrypted"] is None
    # No false alarm from either disk event on a deallocated VM.
    assert list(AzVMOSDiskEncryptionEvent().eval(record)) == []
    assert list(AzVMDataDiskEncryptionEvent().eval(record)) == []


def test_all_encrypted_is_false_for_a_known_unencrypted_disk_and_unknown_otherwise():
    assert all_encrypted([]) is True
    assert all_encrypted([("a", True), ("b", None)]) is None
    assert all_encrypted([("a", None), ("b", False)]) is False
    assert all_encrypted([("a", True)]) is True
