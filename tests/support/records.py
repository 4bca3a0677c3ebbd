"""Look inside deep records without recursion: how deep a value is, and the JSON text a depth cap left."""

from __future__ import annotations

import json


def depth(value) -> int:
    """Levels of dicts and lists in ``value`` (iteratively: the input may be deeper than recursion allows)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def unwrap_text(value):
    """Follow a deep list down to the JSON text the repair left at the cap, and decode it."""
    levels = 0
    while isinstance(value, list):
        value, levels = value[0], levels + 1
    return levels, json.loads(value)
