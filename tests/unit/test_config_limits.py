"""Hostile and huge configs: not UTF-8, YAML alias bombs, deep or recursive values, a 5 MB config.

Each is refused (or loaded) quickly, with one line naming the file, and a big config is parsed once
per process; tests/integration/test_config_limits.py shows the same lines through the ``cloudmarker`` command.
"""

from __future__ import annotations

import textwrap
import time

import pytest
import yaml
from support.configs import list_bomb, mapping_bomb

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import environment
from airflow_cloudmarker.config import ConfigError, load_config


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_utf8_with_a_byte_order_mark_and_accents_loads(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeff# Réglages\nplugins:\n  mockcloud:\n    params:\n      record_types: [café]\n".encode())
    assert load_config([str(path)]).plugins["mockcloud"].params["record_types"] == ["café"]


@pytest.mark.parametrize("bomb", [list_bomb, mapping_bomb])
def test_alias_bomb_is_refused_quickly(tmp_path, bomb):
    path = write(tmp_path / "bomb.yaml", bomb())
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert time.perf_counter() - started < 0.5
    assert str(info.value) == (
        f"{path}: YAML refused: its aliases expand to more than 1,000,000 values (an alias bomb?); "
        f"write the values out or use fewer nested aliases"
    )


def test_a_few_anchors_aliases_and_merge_keys_keep_working(tmp_path):
    path = write(
        tmp_path / "anchors.yaml",
        """
        x-defaults: &types [apple, ball, cat]
        x-params: &params {record_count: 3, record_types: *types}
        plugins:
          cloud_a:
            plugin: cloudmarker.clouds.mockcloud.MockCloud
            params: *params
          cloud_b:
            plugin: cloudmarker.clouds.mockcloud.MockCloud
            params:
              <<: *params
              record_count: 7
        audits:
          a:
            clouds: [cloud_a, cloud_b]
            stores: &out [filestore]
            alerts: *out
        """,
    )
    config = load_config([path])
    assert config.plugins["cloud_a"].params == {"record_count": 3, "record_types": ["apple", "ball", "cat"]}
    assert config.plugins["cloud_b"].params == {"record_count": 7, "record_types": ["apple", "ball", "cat"]}
    assert config.audits["a"].alerts == ("filestore",)
    assert config.audit_errors == {}


def test_a_hundred_thousand_aliased_values_load(tmp_path):
    # 10**5 values written out (about 230,000 with both uses of each anchor): under the budget, accepted.
    path = write(tmp_path / "big-aliases.yaml", list_bomb(levels=4))
    assert len(load_config([path]).plugins["mockcloud"].params["record_types"]) == 10


def test_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path / "loop.yaml", "plugins:\n  mockcloud:\n    params: &p\n      record_types: [*p]\n")
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value).startswith(f"{path}:")
    assert "an alias refers to an anchor that contains it (a recursive value); remove the alias" in str(info.value)


@pytest.mark.parametrize("depth", [150, 5000])
def test_deep_nesting_is_refused_in_one_line(tmp_path, depth):
    path = write(
        tmp_path / "deep.yaml",
        "plugins:\n  mockcloud:\n    params:\n      record_types: " + "[" * depth + "]" * depth + "\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value).startswith(f"{path}:")
    assert "\n" not in str(info.value)


def test_non_printable_character_is_one_line(tmp_path):
    path = tmp_path / "ctrl.yaml"
    path.write_bytes(b"run: [mock\x07audit]\n")
    with pytest.raises(ConfigError) as info:
        load_config([str(path)])
    assert str(info.value).startswith(f"{path}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("loader", [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)])
def test_node_budget_with_pure_python_and_libyaml_parsers(loader):
    """The check runs on composed nodes, so it holds whichever parser PyYAML uses."""
    with pytest.raises(yaml.MarkedYAMLError, match="alias bomb"):
        config_mod.check_node_graph(yaml.compose(mapping_bomb(), Loader=loader))
    config_mod.check_node_graph(yaml.compose("a: &x [1, 2]\nb: *x\nc: {<<: {d: *x}}\n", Loader=loader))


def test_same_contents_are_parsed_once_per_process(tmp_path):
    path = write(tmp_path / "c.yaml", "schedule: '01:30'\n")
    first = load_config([path])
    assert load_config([path]) is first  # the DAG file imported again: no second parse or validation
    write(tmp_path / "c.yaml", "schedule: '02:30'\n")
    changed = load_config([path])
    assert changed is not first and changed.schedule == (2, 30)


def forget_parsing_context_after_the_test(monkeypatch) -> None:
    """Airflow's parsing context manager leaves its variables set when they were unset before: a later
    test's DAG file would then build only that DAG. Recorded as unset here, monkeypatch unsets them again."""
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID, _AIRFLOW_PARSING_CONTEXT_TASK_ID

    for name in (_AIRFLOW_PARSING_CONTEXT_DAG_ID, _AIRFLOW_PARSING_CONTEXT_TASK_ID):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_dag_file_builds_only_the_dag_airflow_parses_it_for(tmp_path, monkeypatch):
    """A task's process parses the DAG file for one dag_id (Airflow's parsing context): build that DAG only."""
    from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

    from airflow_cloudmarker import dagfile

    forget_parsing_context_after_the_test(monkeypatch)
    audits = "".join(f"  audit{i}:\n    clouds: [mockcloud]\n    stores: [filestore]\n" for i in range(5))
    path = write(tmp_path / "c.yaml", f"audits:\n{audits}")
    monkeypatch.setenv(config_mod.CONFIG_ENV_VAR, path)
    dag_file = str(tmp_path / "cloudmarker_dags.py")
    assert sorted(dagfile.load_dags(dag_file)) == ["audit0", "audit1", "audit2", "audit3", "audit4", "mockaudit"]
    with _airflow_parsing_context_manager(dag_id="audit3", task_id="fetch_mockcloud"):
        dags = dagfile.load_dags(dag_file)
    assert list(dags) == ["audit3"] and dags["audit3"].fileloc == dag_file
    with _airflow_parsing_context_manager(dag_id="not_an_audit_here", task_id="t"):
        assert dagfile.load_dags(dag_file) == {}
    # cloudmarker -n's dag.test() imports the file with no parsing context: only the audits it runs.
    forget_parsing_context_after_the_test(monkeypatch)
    monkeypatch.setenv(environment.AUDITS_ENV_VAR, "audit1,audit4,gone")
    assert sorted(dagfile.load_dags(dag_file)) == ["audit1", "audit4"]


def test_a_5_mb_config_stays_far_under_the_dag_file_import_timeout(tmp_path, monkeypatch):
    """Airflow gives a DAG file import 30 s (dagbag_import_timeout); a task's import of a 5 MB config took 22 s."""
    import importlib.util

    from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager
    from support.cli import REPO_ROOT

    from airflow_cloudmarker import dagfile

    spec = importlib.util.spec_from_file_location("bench_config", REPO_ROOT / "bench" / "bench_config.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "big.yaml"
    assert bench.generate(path, 5.0, 2000) > 4_500_000
    monkeypatch.setenv(config_mod.CONFIG_ENV_VAR, str(path))
    forget_parsing_context_after_the_test(monkeypatch)
    with _airflow_parsing_context_manager(dag_id="audit1000", task_id="fetch_cloud1000"):
        started = time.perf_counter()
        assert list(dagfile.load_dags(str(tmp_path / "dags.py"))) == ["audit1000"]
        first = time.perf_counter() - started
        started = time.perf_counter()
        dagfile.load_dags(str(tmp_path / "dags.py"))
        again = time.perf_counter() - started
    assert first < 12, f"first import of the DAG file took {first:.1f} s"
    assert again < 1, f"a second import in the same process took {again:.1f} s (the config was parsed again)"
