"""AzVMExtensionEvent: flag VM extensions that are forbidden or unapproved, and required ones that are missing.

VM extensions run as root or SYSTEM inside the machine: an unexpected extension (a remote command
runner, a third-party agent) is a way in, and a missing one (an antimalware or monitoring agent) a
blind spot. Reads ``ext.extensions`` (the installed extension names) of the ``vm_instance_view``
records of AzVM and, as the original did, runs each check whose list is configured:

1. ``blacklisted``: the installed extensions it names;
2. ``whitelisted``: the installed extensions it does not name, or that ``blacklisted`` names too;
3. ``required``: the extensions it names that are not installed (a blacklisted one is never required).

Each check gives at most one event per VM, naming every extension it found; ``com.finding_key``
is those names, so the same extensions are the same finding from run to run. A record whose
``extensions`` is not a list gives no event (the original crashed on it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_cloudmarker.azure.events import AzureEvent, Problem, check_names, friendly_list, string_list
from airflow_cloudmarker.contract import CIS_AZURE_3, CheckMetadata

if TYPE_CHECKING:
    from collections.abc import Iterable

_LINKS = (
    "https://learn.microsoft.com/azure/virtual-machines/extensions/overview",
    "https://learn.microsoft.com/azure/virtual-machines/extensions/features-windows",
    "https://learn.microsoft.com/azure/virtual-machines/extensions/features-linux",
)
_RESOURCE = "virtual_machine"
#: CIS Azure 3.0 8.7, "Only approved extensions are installed" (Manual, L1); not in 6.0, whose
#: compute section has no VM controls left. A missing required extension is not what it asks.
_APPROVED = {CIS_AZURE_3: ["8.7"]}

BLACKLISTED_CHECK = CheckMetadata(
    check_id="azure_vm_blacklisted_extension",
    title="Azure VM has a blacklisted (forbidden) extension installed",
    severity="high",
    resource_type=_RESOURCE,
    risk="A forbidden extension runs with full rights inside the machine: it can run commands, read data "
    "or open a way in.",
    description="{cloud} virtual machine {reference} has the blacklisted extensions {names}.",
    remediation="Remove the extensions {names} from virtual machine {reference}.",
    links=_LINKS,
    controls=_APPROVED,
)
UNAPPROVED_CHECK = CheckMetadata(
    check_id="azure_vm_unapproved_extension",
    title="Azure VM has an extension installed that is not approved",
    severity="medium",
    resource_type=_RESOURCE,
    risk="An extension nobody approved runs with full rights inside the machine, outside the team's control.",
    description="{cloud} virtual machine {reference} has the unapproved extensions {names}.",
    remediation="Remove the extensions {names} from virtual machine {reference}, or add them to the approved "
    "list (whitelisted) once reviewed.",
    links=_LINKS,
    controls=_APPROVED,
)
REQUIRED_CHECK = CheckMetadata(
    check_id="azure_vm_required_extension_missing",
    title="Azure VM is missing a required extension",
    severity="medium",
    resource_type=_RESOURCE,
    risk="A required agent (antimalware, monitoring, backup) is absent: the machine is unprotected or unseen.",
    description="{cloud} virtual machine {reference} is missing the required extensions {names}.",
    remediation="Add the extensions {names} to virtual machine {reference}.",
    links=_LINKS,
)


class AzVMExtensionEvent(AzureEvent):
    """Emit events for blacklisted, unapproved and missing required extensions of a ``vm_instance_view``.

    Event types: ``vm_blacklisted_extension_event``, ``vm_unapproved_extension_event``,
    ``vm_required_extension_event``; each check runs only when its list is given.

    Params:
        whitelisted: the approved extension names (default: none, no approval check).
        blacklisted: the forbidden extension names (default: none).
        required: the extension names every VM must have (default: none).
        severity: severity of every finding (default: each check's: high, medium, medium).
    """

    CHECK = (BLACKLISTED_CHECK, UNAPPROVED_CHECK, REQUIRED_CHECK)
    EXT_TYPE = "vm_instance_view"

    def __init__(
        self,
        whitelisted: list[str] | None = None,
        blacklisted: list[str] | None = None,
        required: list[str] | None = None,
        severity: str | None = None,
    ):
        super().__init__(severity)
        self._whitelisted = check_names("AzVMExtensionEvent", "whitelisted", whitelisted)
        self._blacklisted = check_names("AzVMExtensionEvent", "blacklisted", blacklisted)
        self._required = check_names("AzVMExtensionEvent", "required", required)

    def problems(self, ext: dict, com: dict, record: dict) -> list[Problem]:
        """Up to three problems: blacklisted extensions present, unapproved ones, required ones missing."""
        installed = string_list(ext.get("extensions"))
        if installed is None:
            return self.ignored(com, "ext.extensions is not a list")
        found = set(installed)
        problems = []
        if self._blacklisted:
            problems += _found(found & self._blacklisted, BLACKLISTED_CHECK, "vm_blacklisted_extension_event")
        if self._whitelisted:
            unapproved = found - (self._whitelisted - self._blacklisted)
            problems += _found(unapproved, UNAPPROVED_CHECK, "vm_unapproved_extension_event")
        if self._required:
            missing = (self._required - self._blacklisted) - found
            problems += _found(missing, REQUIRED_CHECK, "vm_required_extension_event")
        return problems


def _found(names: Iterable[str], check: CheckMetadata, event_type: str) -> list[Problem]:
    """One problem naming ``names`` (sorted), or none when there are none."""
    names = sorted(names)
    if not names:
        return []
    return [Problem({"names": friendly_list(names)}, key=",".join(names), check=check, event_type=event_type)]
