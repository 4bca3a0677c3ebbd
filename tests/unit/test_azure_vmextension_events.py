"""AzVMExtensionEvent on AzVM's vm_instance_view records: blacklisted, unapproved and missing required extensions."""

from __future__ import annotations

import re

import pytest
from support.azure_events import assert_event_shape, assert_ignores_malformed, events, only_event, record

from airflow_cloudmarker import findings
from airflow_cloudmarker.events.azvmextensionevent import (
    BLACKLISTED_CHECK,
    REQUIRED_CHECK,
    UNAPPROVED_CHECK,
    AzVMExtensionEvent,
)

VM = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def vm(extensions=("ext01", "ext02")):
    return record("vm_instance_view", "compute", reference=VM, extensions=list(extensions))


def found(plugin, rec):
    """(event record type, finding key) of each event."""
    return [(e["com"]["record_type"], e["com"]["finding_key"]) for e in events(plugin, rec)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, []),  # no list configured: no check runs
        ({"blacklisted": ["ext01"]}, [("vm_blacklisted_extension_event", "ext01")]),
        ({"blacklisted": ["ext03"]}, []),
        ({"whitelisted": ["w_ext01"]}, [("vm_unapproved_extension_event", "ext01,ext02")]),
        ({"whitelisted": ["ext01", "ext02"]}, []),
        ({"required": ["r_ext01"]}, [("vm_required_extension_event", "r_ext01")]),
        ({"required": ["ext01", "ext02"]}, []),
        # a name both approved and blacklisted is blacklisted and unapproved
        (
            {"whitelisted": ["ext01", "ext02"], "blacklisted": ["ext01"]},
            [("vm_blacklisted_extension_event", "ext01"), ("vm_unapproved_extension_event", "ext01")],
        ),
        ({"required": ["ext03"], "blacklisted": ["ext03"]}, []),  # a blacklisted name is never required
        (
            {"whitelisted": ["ext01"], "blacklisted": ["ext02"], "required": ["ext09", "ext00"]},
            [
                ("vm_blacklisted_extension_event", "ext02"),
                ("vm_unapproved_extension_event", "ext02"),
                ("vm_required_extension_event", "ext00,ext09"),
            ],
        ),
        ({"whitelisted": None, "blacklisted": None, "required": None}, []),
        ({"whitelisted": [], "blacklisted": [], "required": []}, []),
    ],
)
def test_the_three_checks(params, expected):
    assert found(AzVMExtensionEvent(**params), vm()) == expected


def test_a_vm_without_extensions():
    plugin = AzVMExtensionEvent(whitelisted=["a"], blacklisted=["b"], required=["c"])
    assert found(plugin, vm(extensions=())) == [("vm_required_extension_event", "c")]


def test_each_event_names_its_check_and_extensions():
    source = vm(extensions=("ext01", "ext02", "ext03"))
    plugin = AzVMExtensionEvent(blacklisted=["ext01", "ext02", "ext03"], whitelisted=["x"], required=["r1", "r2"])
    blacklisted, unapproved, required = events(plugin, source)
    assert_event_shape(blacklisted, source, "vm_blacklisted_extension_event", BLACKLISTED_CHECK)
    assert_event_shape(unapproved, source, "vm_unapproved_extension_event", UNAPPROVED_CHECK)
    assert_event_shape(required, source, "vm_required_extension_event", REQUIRED_CHECK)
    assert blacklisted["com"]["description"] == (
        f"Azure virtual machine {VM} has the blacklisted extensions ext01, ext02, and ext03."
    )
    assert required["com"]["description"] == f"Azure virtual machine {VM} is missing the required extensions r1 and r2."
    assert required["com"]["recommendation"] == f"Add the extensions r1 and r2 to virtual machine {VM}."
    assert blacklisted["ext"]["extensions"] == ["ext01", "ext02", "ext03"]  # no extra ext key
    assert [e["com"]["severity"] for e in (blacklisted, unapproved, required)] == ["high", "medium", "medium"]
    overridden = AzVMExtensionEvent(blacklisted=["ext01"], severity="low")
    assert only_event(overridden, source)["com"]["severity"] == "low"


def test_findings_stay_the_same_across_runs_and_differ_per_check():
    plugin = AzVMExtensionEvent(blacklisted=["ext01", "ext02"], whitelisted=["ext09"])
    first = [findings.finding_id(e) for e in events(plugin, vm(extensions=("ext02", "ext01")))]
    again = [findings.finding_id(e) for e in events(plugin, vm(extensions=("ext01", "ext02")))]
    assert first == again and len(set(first)) == 2
    fewer = [findings.finding_id(e) for e in events(plugin, vm(extensions=("ext01",)))]
    assert not set(fewer) & set(first)  # other extensions found: other findings


@pytest.mark.parametrize("extensions", [None, "ext01", {"ext01": 1}, 3])
def test_extensions_that_are_not_a_list_give_no_event(extensions):
    rec = vm()
    rec["ext"]["extensions"] = extensions
    assert events(AzVMExtensionEvent(blacklisted=["ext01"], required=["x"]), rec) == []  # the original raised


def test_odd_extension_names_are_skipped():
    rec = vm()
    rec["ext"]["extensions"] = ["ext01", None, 7]
    assert found(AzVMExtensionEvent(whitelisted=["ext01"]), rec) == []
    del rec["ext"]["extensions"]
    assert events(AzVMExtensionEvent(required=["x"]), rec) == []


def test_other_and_malformed_records_give_no_event():
    plugin = AzVMExtensionEvent(blacklisted=["ext01"])
    assert events(plugin, record("virtual_machine", "compute", extensions=["ext01"])) == []
    assert_ignores_malformed(plugin, vm())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"whitelisted": "ext01"}, "param whitelisted must be a list of names"),
        ({"blacklisted": [1]}, "param blacklisted: [1] are not names"),
        ({"required": [""]}, "param required: [''] are not names"),
        ({"severity": "urgent"}, "param severity must be one of"),
    ],
)
def test_bad_params_fail_at_construction(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AzVMExtensionEvent(**params)
