"""Pure Azure record shaping: NSG security rules to common firewall rules, VM disk encryption status.

No SDK imports here: event plugins and unit tests use these functions on plain dicts. Current
azure-mgmt-* models' ``as_dict()`` gives the ARM wire shape (camelCase, resource fields under
``properties``); older msrest-based SDKs gave flattened snake_case. :func:`field` reads both, so
records stored by either keep working. FirewallRuleEvent relies on the exact shape produced here.
"""

from __future__ import annotations

from typing import Any

#: Source address prefixes that mean "any address", i.e. the whole Internet.
INTERNET_PREFIXES = {"*", "internet", "any", "0.0.0.0/0", "0.0.0.0"}
ALL_PORTS = "0-65535"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field(obj: Any, snake: str) -> Any:
    """Read ``snake`` (e.g. ``source_address_prefix``) from a model dict in wire or flattened shape."""
    if not isinstance(obj, dict):
        return None
    camel = _camel(snake)
    props = obj.get("properties")
    for source in (props if isinstance(props, dict) else {}, obj):
        for key in (camel, snake):
            if key in source:
                return source[key]
    return None


def _plural(rule: dict, single: str, plural: str) -> list[str]:
    """Read a field that Azure offers both as ``x_prefix`` (one value) and ``x_prefixes`` (a list)."""
    values: list[str] = []
    one = field(rule, single)
    if one not in (None, ""):
        values.append(str(one))
    many = field(rule, plural) or []
    if isinstance(many, (list, tuple)):
        values.extend(str(v) for v in many if v not in (None, ""))
    return values


def _address(prefix: str) -> str:
    return "0.0.0.0/0" if prefix.strip().lower() in INTERNET_PREFIXES else prefix.strip()


def _port(port_range: str) -> str:
    text = port_range.strip()
    return ALL_PORTS if text in ("*", "Any", "any") else text


def _protocol(protocol: Any) -> str:
    text = str(protocol or "").strip().lower()
    return "all" if text in ("*", "any", "") else text


def firewall_rule_com(rule: dict) -> dict:
    """Normalize one NSG security rule (``SecurityRule.as_dict()``) into the common firewall_rule shape.

    Azure NSG rules have no enabled flag: a rule that exists is in force, so ``enabled`` is True.
    """
    sources = _plural(rule, "source_address_prefix", "source_address_prefixes")
    ports = _plural(rule, "destination_port_range", "destination_port_ranges")
    return {
        "cloud_type": "azure",
        "record_type": "firewall_rule",
        "reference": rule.get("id"),
        "enabled": True,
        "direction": "in" if str(field(rule, "direction") or "").lower() == "inbound" else "out",
        "access": "allow" if str(field(rule, "access") or "").lower() == "allow" else "deny",
        "protocol": _protocol(field(rule, "protocol")),
        "source_addresses": sorted({_address(s) for s in sources}),
        "destination_ports": [_port(p) for p in ports],
    }


def nsg_rules(nsg: dict) -> list[dict]:
    """All security rules of an NSG dict, custom ones first, then the default rules."""
    rules = list(field(nsg, "security_rules") or []) + list(field(nsg, "default_security_rules") or [])
    return [r for r in rules if isinstance(r, dict)]


def _disk_encrypted(disk: dict) -> bool:
    settings = field(disk, "encryption_settings") or []
    return any(isinstance(s, dict) and s.get("enabled") is True for s in settings)


def disk_encryption(vm: dict) -> tuple[str | None, bool | None, list[tuple[str, bool | None]]]:
    """Return (OS disk name, OS disk encrypted, [(data disk name, encrypted), ...]) for a VM dict.

    ``vm`` is ``VirtualMachine.as_dict()`` with the instance view under ``instance_view`` (AzVM puts it
    there); a disk is encrypted when its instance view reports an enabled Azure Disk Encryption setting.
    A disk the instance view does not list is unknown (``None``), not unencrypted: a deallocated VM
    reports no disk statuses, and calling its disks unencrypted would be a false alarm.
    """
    storage = field(vm, "storage_profile") or {}
    view = field(vm, "instance_view") or {}
    view_disks = {d.get("name"): d for d in field(view, "disks") or [] if isinstance(d, dict)}

    def encrypted(name: str | None) -> bool | None:
        return _disk_encrypted(view_disks[name]) if name in view_disks else None

    os_name = (field(storage, "os_disk") or {}).get("name")
    data = [
        (disk["name"], encrypted(disk["name"]))
        for disk in field(storage, "data_disks") or []
        if isinstance(disk, dict) and disk.get("name")
    ]
    return os_name, encrypted(os_name) if os_name else None, data


def all_encrypted(disks: list[tuple[str, bool | None]]) -> bool | None:
    """False when a disk is known unencrypted, None when one is unknown, else True (no disks: True)."""
    states = {state for _, state in disks}
    if False in states:
        return False
    return None if None in states else True


def power_state(instance_view: dict) -> str | None:
    """``running``, ``deallocated``... from the ``PowerState/...`` status of a VM instance view."""
    for status in field(instance_view, "statuses") or []:
        code = str((status or {}).get("code", ""))
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return None
