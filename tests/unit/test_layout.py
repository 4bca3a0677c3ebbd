"""The test suite's own layout: one folder per layer, helpers in tests/support and tests/servers.

A test added at the top of tests/ would run in no layer; a unit test that starts Airflow or a
server would make ``pytest -m unit`` slow; a second ``free_port`` or a helper imported from
``conftest`` is how the flat folder drifted before. Each check names the file and the fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support.cli import REPO_ROOT, TESTS_DIR

LAYERS = ("unit", "integration", "deployment")
# What a unit test must not use: the session's metadata DB, dag.test() runs, the cloudmarker command, servers.
NOT_IN_UNIT = {
    "airflow_db",
    "user_db_template",
    "user_home",
    "run_now",
    "run_cli",
    "run_cli_as_user",
    "shared_local_service",
    "start_service",
    "FakeAzure",
    "GCPServer",
    "EsServer",
    "HecServer",
    "MongoProxy",
    "start_nx",
    "SlackServer",
    "SmtpServer",
}


def python_files() -> list[Path]:
    return sorted([*TESTS_DIR.rglob("*.py"), *(REPO_ROOT / "bench").glob("*.py")])


def names_used(tree: ast.AST) -> set[str]:
    """Every name, attribute, imported name and function parameter in a module."""
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add((node.asname or node.name).split(".")[-1])
        elif isinstance(node, ast.arg):
            used.add(node.arg)
    return used


def test_every_test_file_is_in_a_layer_folder():
    stray = [
        str(path.relative_to(TESTS_DIR))
        for path in TESTS_DIR.rglob("test_*.py")
        if path.relative_to(TESTS_DIR).parts[0] not in LAYERS
    ]
    assert stray == [], f"{stray}: move each into tests/unit, tests/integration or tests/deployment (git mv)"


def test_the_layer_marker_comes_from_the_folder(request):
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None


def test_no_module_imports_from_conftest():
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in python_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.ImportFrom) and node.module == "conftest")
        or (isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names))
    ]
    assert offenders == [], f"{offenders}: import helpers from support.cli (fixtures need no import)"


def test_one_free_port():
    defined = [
        str(path.relative_to(REPO_ROOT))
        for path in python_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "free_port"
    ]
    assert defined == ["tests/servers/net.py"], f"free_port defined in {defined}: use servers.net.free_port"


def test_unit_tests_start_no_airflow_run_and_no_server():
    offenders = {
        str(path.relative_to(TESTS_DIR)): sorted(names_used(ast.parse(path.read_text())) & NOT_IN_UNIT)
        for path in sorted((TESTS_DIR / "unit").glob("*.py"))
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}, f"{offenders}: move these tests to tests/integration (or tests/deployment)"
