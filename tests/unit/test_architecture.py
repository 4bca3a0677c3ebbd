"""The package's shape: imports run one way, only public Airflow APIs, every ``[cloudmarker]`` option declared.

The import graph is read from the source with ``ast`` (no import runs), counting every import: at
module level, inside functions, and under ``if TYPE_CHECKING:``. A module may import modules of its
own layer (without a cycle) and of the layers below it, never above. The table is the architecture
of the README's "Layout"; a new module goes into it, a new dependency may only point down.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from support.cli import REPO_ROOT

PACKAGE = "airflow_cloudmarker"
PACKAGE_DIR = REPO_ROOT / PACKAGE

#: Top to bottom. An entry names a module or subpackage directly under the package ("" is the package itself).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry points", ("cli", "dags", "ui")),
    ("runs", ("runner", "service", "dagfile", "retention")),
    ("process", ("environment", "metadb", "local_runs", "inprocess_api")),
    ("notifications", ("notify",)),
    ("DAG building", ("factory",)),
    ("task bodies", ("tasks",)),
    ("data flow", ("batches", "findings", "results")),
    ("findings index", ("findings_index",)),
    ("plugins", ("clouds", "events", "stores", "alerts")),
    ("plugin helpers", ("hooks", "azure", "gcp", "aws")),
    ("framework", ("records", "plugins", "config", "contract")),
    ("helpers", ("util", "workers", "smtp", "")),
)
#: Plugin packages, and the orchestration modules they must never import (the framework's public
#: modules for plugins are records, plugins, config, util, smtp and the plugin helpers).
PLUGIN_PACKAGES = ("clouds", "events", "stores", "alerts", "hooks", "azure", "gcp", "aws")
ORCHESTRATION = (
    "factory",
    "tasks",
    "batches",
    "runner",
    "notify",
    "service",
    "cli",
    "findings",
    "results",
    "dagfile",
    "retention",
    "environment",
    "metadb",
    "local_runs",
    "inprocess_api",
    "findings_index",
    "ui",
)


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.AST, module: str, is_package: bool, known: Iterable[str]) -> list[tuple[str, int]]:
    """(package module, line) for each module of ours that ``node`` (an import statement) imports."""
    known = set(known)
    if isinstance(node, ast.Import):
        return [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    if base.split(".")[0] != PACKAGE:
        return []
    found = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        found.append((submodule if submodule in known else base, node.lineno))
    return found


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, dict[str, int]]:
    """Module -> {imported module of the package: first line}, from every import statement of the file."""
    files = module_files(package_dir)
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: dict[str, int] = {}
        for node in ast.walk(tree):
            for target, line in _imported(node, module, path.name == "__init__.py", files):
                if target != module and target in files:
                    edges.setdefault(target, line)
        graph[module] = edges
    return graph


def short(module: str) -> str:
    return module.removeprefix(PACKAGE).removeprefix(".") or PACKAGE


def top_name(module: str) -> str:
    """``clouds`` for ``airflow_cloudmarker.clouds.azcloud``; ``""`` for the package itself."""
    return short(module).split(".")[0] if module != PACKAGE else ""


def layer_of(module: str) -> int | None:
    name = top_name(module)
    for index, (_, members) in enumerate(LAYERS):
        if name in members:
            return index
    return None


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(graph: dict[str, dict[str, int]]) -> str:
    """The graph, one line per layer: ``runs: runner -> config, factory; service -> ...``."""
    lines = []
    for number, (name, _) in enumerate(LAYERS):
        members = [m for m in sorted(graph) if layer_of(m) == number]
        parts = [f"{short(m)} -> {', '.join(short(t) for t in sorted(graph[m])) or '-'}" for m in members]
        lines.append(f"{number} {name}: {'; '.join(parts)}")
    unplaced = [short(m) for m in sorted(graph) if layer_of(m) is None]
    if unplaced:
        lines.append(f"not in the layer table: {', '.join(unplaced)}")
    return "\n".join(lines)


def violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """Imports against the layer order, from a plugin into orchestration, or into another package's private module."""
    problems = []
    for module in sorted(graph):
        layer = layer_of(module)
        if layer is None:
            problems.append(f"{short(module)} is in no layer: add it to LAYERS in tests/test_architecture.py")
            continue
        for target, line in sorted(graph[module].items()):
            where = f"{short(module)}:{line} imports {short(target)}"
            target_layer = layer_of(target)
            if target_layer is not None and target_layer < layer:
                problems.append(f"{where}, a layer above it ({LAYERS[target_layer][0]} over {LAYERS[layer][0]})")
            if top_name(module) in PLUGIN_PACKAGES and top_name(target) in ORCHESTRATION:
                problems.append(f"{where}: a plugin must not import the framework's orchestration")
            private = [part for part in short(target).split(".") if part.startswith("_")]
            if private and target.rpartition(".")[0] != module.rpartition(".")[0]:
                problems.append(f"{where}: private module {short(target)} is for its own package only")
    return problems


def test_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    listed = " | ".join(" <-> ".join(map(short, component)) for component in found)
    assert not found, f"import cycles: {listed}\n\nThe import graph, one line per layer:\n{describe(graph)}"


def test_imports_follow_the_layers():
    graph = import_graph()
    problems = violations(graph)
    assert not problems, "\n".join(problems) + "\n\nThe import graph, one line per layer:\n" + describe(graph)


def test_the_checks_catch_what_they_must(tmp_path):
    """The checker itself: a cycle through a function-level import, an upward import, a plugin importing
    orchestration and a private module of another package are all reported."""
    package = tmp_path / PACKAGE
    for name, text in {
        "__init__.py": "",
        "util.py": "def helper():\n    from airflow_cloudmarker import config\n",
        "config.py": "from airflow_cloudmarker.util import helper\n",
        "tasks.py": "",
        "clouds/__init__.py": "",
        "clouds/_shared.py": "",
        "events/__init__.py": "",
        "events/myevent.py": "from airflow_cloudmarker import tasks\nfrom ..clouds import _shared\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = import_graph(package)
    assert cycles(graph) == [[f"{PACKAGE}.config", f"{PACKAGE}.util"]]
    problems = "\n".join(violations(graph))
    assert "util:2 imports config, a layer above it" in problems
    assert "events.myevent:1 imports tasks: a plugin must not import" in problems
    assert "events.myevent:2 imports clouds._shared: private module" in problems
    assert "0 entry points: " in describe(graph) and "events.myevent -> clouds._shared, tasks" in describe(graph)


def test_nothing_imports_the_ui_plugin():
    """``ui`` is an entry point Airflow loads (``airflow.plugins``); no module of ours may depend on it."""
    graph = import_graph()
    users = sorted(
        short(m) for m, edges in graph.items() if top_name(m) != "ui" and any(top_name(t) == "ui" for t in edges)
    )
    assert users == []


def test_environment_imports_no_airflow():
    """``environment`` runs before Airflow may be imported (Airflow fixes its settings at first import)."""
    script = (
        "import sys, airflow_cloudmarker.environment\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- public APIs of Airflow and its providers only -------------------------------------------------
def _airflow_names(tree: ast.AST) -> set[str]:
    """Names a module binds to Airflow or provider modules and objects (``from airflow.x import y``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow" and not node.level:
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] == "airflow")
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_airflow_uses(source: str, filename: str) -> list[str]:
    """Private Airflow/provider names a module uses: imported, read off an Airflow name, or inherited.

    Inherited: ``super()._x`` anywhere, and ``self._x`` in a class derived from an Airflow class
    when the class itself never assigns ``self._x`` (then it is the base's).
    """
    tree = ast.parse(source, filename=filename)
    airflow = _airflow_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow":
            parts = (node.module or "").split(".") + [alias.name for alias in node.names]
            found += [f"{filename}:{node.lineno}: imports {p}" for p in parts if _private(p)]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "airflow" and any(_private(p) for p in alias.name.split(".")):
                    found.append(f"{filename}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in airflow:
                found.append(f"{filename}:{node.lineno}: uses {base.id}.{node.attr}")
            elif isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
                found.append(f"{filename}:{node.lineno}: uses super().{node.attr}")
        elif isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id in airflow for b in node.bases):
            found += _inherited_privates(node, filename)
    return found


def _inherited_privates(cls: ast.ClassDef, filename: str) -> list[str]:
    own = {
        target.attr
        for node in ast.walk(cls)
        for target in (node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)])
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    own |= {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return [
        f"{filename}:{node.lineno}: uses self.{node.attr} of an Airflow base class of {cls.name}"
        for node in ast.walk(cls)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and _private(node.attr)
        and node.attr not in own
    ]


def test_only_public_airflow_and_provider_names():
    """A provider release may rename anything private (SmtpHook's client builder did): none is used."""
    found = []
    for module, path in module_files().items():
        found += private_airflow_uses(path.read_text(encoding="utf-8"), short(module))
    assert not found, "\n".join(found)


def test_the_private_name_check_catches_what_it_must():
    source = """
from airflow.utils import db
from airflow.utils.db import _get_script_object
from airflow.providers.smtp.hooks.smtp import SmtpHook

def revision():
    return db._get_current_revision()

class Hooked(SmtpHook):
    def __init__(self):
        super().__init__()
        self._mine = 1

    def _build_client(self):
        client = super()._build_client()
        return self._smtp_client or self._mine or client
"""
    found = "\n".join(private_airflow_uses(source, "m"))
    for expected in (
        "m:3: imports _get_script_object",
        "m:7: uses db._get_current_revision",
        "m:15: uses super()._build_client",
        "m:16: uses self._smtp_client of an Airflow base class of Hooked",
    ):
        assert expected in found, found
    assert "_mine" not in found


# -- every [cloudmarker] option is declared in the provider info ------------------------------------
#: How the package reads an option: Airflow's conf, factory's integer helper, or its environment variable.
OPTION_READS = (
    re.compile(r'conf\.get\w*\(\s*"cloudmarker",\s*"(\w+)"'),
    re.compile(r'_setting\(\s*"(\w+)"'),
    re.compile(r"AIRFLOW__CLOUDMARKER__([A-Z0-9_]+)"),
)
LITERAL_FALLBACK = re.compile(r'conf\.get\w*\(\s*"cloudmarker",\s*"(\w+)",\s*fallback=("[^"]*"|\d+)\)')
#: A conf read whose option is not a literal escapes OPTION_READS; only factory's helper does that.
INDIRECT_READ = re.compile(r'conf\.get\w*\(\s*"cloudmarker",\s*(?!")(\w+)')


def options_read() -> set[str]:
    found: set[str] = set()
    for path in module_files().values():
        text = path.read_text(encoding="utf-8")
        for pattern in OPTION_READS:
            found |= {name.lower() for name in pattern.findall(text)}
    return found


def declared_options() -> dict[str, dict]:
    from airflow_cloudmarker import get_provider_info

    return get_provider_info()["config"]["cloudmarker"]["options"]


def test_every_option_read_is_declared_and_every_declared_one_read():
    indirect = {
        (short(m), name) for m, p in module_files().items() for name in INDIRECT_READ.findall(p.read_text("utf-8"))
    }
    assert indirect == {("factory", "name")}, "a [cloudmarker] option read this test cannot see: " + repr(indirect)
    assert set(declared_options()) == options_read()


def test_declared_defaults_are_the_code_fallbacks():
    from airflow_cloudmarker import batches, factory

    declared = {name: option["default"] for name, option in declared_options().items()}
    assert declared["task_retries"] == str(factory.DEFAULT_RETRIES)
    assert declared["retry_delay_seconds"] == str(factory.DEFAULT_RETRY_DELAY_SECONDS)
    assert declared["batch_size"] == str(batches.DEFAULT_BATCH_RECORDS)
    assert declared["batch_bytes"] == str(batches.DEFAULT_BATCH_BYTES)
    literal = {}
    for path in module_files().values():
        for name, value in LITERAL_FALLBACK.findall(path.read_text("utf-8")):
            literal[name] = str(ast.literal_eval(value))
    assert literal and all(declared[name] == value for name, value in literal.items()), literal
    for option in declared_options().values():
        assert option["description"] and option["type"] in ("string", "integer") and option["example"] is not None


def test_airflow_config_list_shows_the_options_with_their_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "CLOUDMARKER"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow), "config", "list", "--section", "cloudmarker", "--show-values", "--include-descriptions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "batch_size = 50000" in result.stdout and "task_retries = 2" in result.stdout, result.stdout
    assert "Records per XCom batch at most" in result.stdout
    for name in declared_options():
        assert f"{name} = " in result.stdout, name
