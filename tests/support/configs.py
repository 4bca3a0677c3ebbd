"""Hostile YAML the config tests feed the loader, in-process and through the ``cloudmarker`` command."""

from __future__ import annotations


def list_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": each anchor is a list of ten aliases of the one before (10**levels values)."""
    lines = ["x-laughs:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    lines += ["plugins:", "  mockcloud:", "    params:", f"      record_types: *l{levels}"]
    return "\n".join(lines) + "\n"


def mapping_bomb(levels: int = 9) -> str:
    """The same with mappings, which merging the cascade would walk (it ran out of memory before)."""
    lines = ["x-laughs:", "  m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}"]
    lines += [f"  m{i}: &m{i} {{{', '.join(f'k{j}: *m{i - 1}' for j in range(10))}}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"
