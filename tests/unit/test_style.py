"""The code stays ruff clean (lint and format), as the README's style rules say."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from support.cli import REPO_ROOT, console_script


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff(command):
    ruff = shutil.which(console_script("ruff"))
    assert ruff, "ruff is in the test extra: pip install -e '.[test]'"
    result = subprocess.run([ruff, *command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
