"""Plain record values from the attributes of current azure-mgmt-* models.

The TypeSpec-generated models (azure-mgmt-compute 39, -storage 25, -web 11, -sql 4) give snake_case,
flattened attributes (``account.network_rule_set.bypass``) while their ``as_dict()`` is the ARM wire
shape (camelCase under ``properties``), so ``ext`` fields are read from attributes. Enum fields come
back as str-enums; a record holds plain JSON values, so every value read goes through :func:`text`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


def text(value: Any) -> Any:
    """``value`` with an enum replaced by its wire value (``SupportedTlsVersions.ONE2`` -> ``"1.2"``)."""
    return value.value if isinstance(value, Enum) else value


def attr(obj: Any, *names: str) -> Any:
    """The attribute path ``names`` of a model (``attr(disk, "encryption", "type")``), None where absent."""
    for name in names:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return text(obj)


def items_of(value: Any) -> set[str]:
    """The lower-case members of a comma-separated ARM flags value (``"AzureServices, Logging"``)."""
    if value is None:
        return set()
    return {part.strip().lower() for part in str(text(value)).split(",") if part.strip()}
