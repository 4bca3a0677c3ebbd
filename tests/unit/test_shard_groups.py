"""Shards packed into a bounded number of fetch tasks: the grouping, its limits and its config."""

from __future__ import annotations

import pytest

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import contract, factory


@pytest.mark.parametrize(
    ("count", "groups", "sizes"),
    [
        (0, 32, []),
        (1, 32, [1]),
        (3, 32, [1, 1, 1]),
        (32, 32, [1] * 32),
        (33, 32, [2] + [1] * 31),
        (2000, 32, [63] * 16 + [62] * 16),
        (10, 3, [4, 3, 3]),
        (5, 1, [5]),
    ],
)
def test_groups_are_balanced_and_bounded(count, groups, sizes):
    shards = [f"sub-{i}" for i in range(count)]
    packed = contract.shard_groups(shards, groups)
    assert [len(g) for g in packed] == sizes
    assert [s for g in packed for s in g] == shards  # every shard exactly once, in order


def test_a_non_positive_limit_still_gives_one_group():
    assert contract.shard_groups(["a", "b"], 0) == [["a", "b"]]


class Grouped:
    """A sharded cloud declaring its own group limit."""

    max_shard_groups = 5

    def shards(self):
        return []

    def read(self, shard=None):
        return []

    def done(self):
        pass


class Ungrouped(Grouped):
    max_shard_groups = None


def _plugin(tmp_path, body: str):
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return config_mod.load_config([str(path)])


def test_config_key_then_class_attribute_then_setting_then_default(tmp_path, monkeypatch):
    config = _plugin(
        tmp_path,
        "plugins:\n  a:\n    plugin: unit.test_shard_groups.Grouped\n    max_shard_groups: 7\n"
        "  b:\n    plugin: unit.test_shard_groups.Grouped\n"
        "  c:\n    plugin: unit.test_shard_groups.Ungrouped\n"
        "audits:\n  x:\n    clouds: [a, b, c]\n",
    )
    assert config.audit_errors == {} and config.plugins["a"].max_shard_groups == 7
    assert "max_shard_groups" not in config.plugins["a"].params
    limit = {key: factory.shard_group_limit(config.plugins[key], type(None)) for key in "abc"}
    assert factory.shard_group_limit(config.plugins["a"], Grouped) == 7
    assert factory.shard_group_limit(config.plugins["b"], Grouped) == 5
    assert factory.shard_group_limit(config.plugins["c"], Ungrouped) == contract.DEFAULT_MAX_SHARD_GROUPS
    assert limit["c"] == contract.DEFAULT_MAX_SHARD_GROUPS
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__MAX_SHARD_GROUPS", "12")
    assert factory.shard_group_limit(config.plugins["c"], Ungrouped) == 12


def test_never_more_groups_than_airflow_can_map(tmp_path, monkeypatch):
    config = _plugin(
        tmp_path,
        "plugins:\n  a:\n    plugin: unit.test_shard_groups.Grouped\n    max_shard_groups: 5000\n"
        "audits:\n  x:\n    clouds: [a]\n",
    )
    assert factory.shard_group_limit(config.plugins["a"], Grouped) == 1024
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "100")
    assert factory.shard_group_limit(config.plugins["a"], Grouped) == 100


@pytest.mark.parametrize("value", [0, -1, "8", True, 2.5])
def test_a_bad_max_shard_groups_names_the_plugin_and_the_fix(tmp_path, value):
    with pytest.raises(config_mod.ConfigError) as error:
        _plugin(
            tmp_path,
            f"plugins:\n  a:\n    plugin: unit.test_shard_groups.Grouped\n    max_shard_groups: {value!r}\n"
            "audits:\n  x:\n    clouds: [a]\n",
        )
    assert "plugins.a.max_shard_groups: must be a positive integer such as 32" in str(error.value)


def test_a_bad_class_attribute_is_a_problem_of_the_plugin():
    class Bad(Grouped):
        max_shard_groups = "32"

    problems = contract.ability_problems(Bad, "clouds")
    assert len(problems) == 1 and "max_shard_groups must be a positive integer, not '32'" in problems[0]


def test_the_mapped_fetch_task_expands_over_groups(tmp_path):
    config = _plugin(
        tmp_path,
        "plugins:\n  a:\n    plugin: unit.test_shard_groups.Grouped\naudits:\n  x:\n    clouds: [a]\n",
    )
    dag = factory.build_dag(config, config.audits["x"])
    fetch = dag.get_task("fetch_a")
    assert list(fetch.op_kwargs_expand_input.value) == ["group"]
    assert fetch.max_active_tis_per_dagrun == contract.DEFAULT_MAX_PARALLEL_SHARDS
