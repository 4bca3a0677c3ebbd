"""Run the ``cloudmarker`` command as the tests do: the installed console script in a subprocess.

``run_cli`` keeps the session's environment (tests/conftest.py: the session's Airflow home and DB);
``run_cli_as_user`` runs it as a new user does, with a fresh HOME and no ``AIRFLOW_*`` variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS_DIR.parent


def console_script(name: str) -> str:
    """The installed console script of this interpreter's environment (even when it is not activated)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run the installed ``cloudmarker`` console script; return the CompletedProcess."""
    return subprocess.run(
        [console_script("cloudmarker"), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_env(home: Path, extra: dict | None = None) -> dict[str, str]:
    """The environment of a new user's shell: HOME is ``home``, and no ``AIRFLOW_*`` or ``CLOUDMARKER_*``
    setting that this test session made (or that the machine has) leaks in.

    Tests that reproduce a first run use this instead of ``os.environ``: the session's own embedded
    environment once hid a crash every new user with a mail password hit.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "CLOUDMARKER_"))}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run_cli_as_user(*args: str, home: Path, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run ``cloudmarker`` as a new user does: a subprocess with ``user_env(home)``, nothing imported first."""
    return subprocess.run(
        [console_script("cloudmarker"), *args],
        cwd=cwd or home,
        env=user_env(home, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_config(home: Path, tmp_path: Path, text: str = "") -> Path:
    """Write ``~/.cloudmarker.yaml``: FileStore output and the log file inside the test's directory, then ``text``.

    Returns the FileStore output directory.
    """
    out = tmp_path / "out"
    (home / ".cloudmarker.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {out}\n"
        f"logger:\n  handlers:\n    file:\n      filename: {tmp_path}/cloudmarker.log\n"
    )
    if text:
        (home / "cloudmarker.yaml").write_text(text)  # ~/cloudmarker.yaml cascades over ~/.cloudmarker.yaml
    return out
