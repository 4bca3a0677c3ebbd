"""Hostile configs through the ``cloudmarker`` command: one line naming the file, exit 2, quickly.

The limits themselves (alias budget, nesting, encodings, a 5 MB config) are tested without a
process in tests/unit/test_config_limits.py.
"""

from __future__ import annotations

import textwrap
import time

from support.cli import run_cli_as_user
from support.configs import list_bomb


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("cloudmarker: error:")]


def test_config_not_utf8_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# Réglages de l'équipe\nrun: [mockaudit]\n".encode("latin-1"))
    result = run_cli_as_user("-n", "-c", str(path), home=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"cloudmarker: error: {path}:1: not UTF-8 text (byte 0xe9 at offset 3 cannot be decoded); "
        f"save the file as UTF-8"
    ]


def test_cli_refuses_an_alias_bomb_in_one_line(tmp_path):
    path = write(tmp_path / "bomb.yaml", list_bomb())
    started = time.monotonic()
    result = run_cli_as_user("-n", "-c", path, home=tmp_path, timeout=60)
    assert time.monotonic() - started < 30  # the command's own start-up; the check itself takes milliseconds
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"cloudmarker: error: {path}: YAML refused: its aliases expand to more than 1,000,000 values "
        f"(an alias bomb?); write the values out or use fewer nested aliases"
    ]
