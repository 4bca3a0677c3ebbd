"""Config cascade, merge rules and validation: pure logic, no Airflow."""

from __future__ import annotations

import re
import textwrap

import pytest

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker.config import ConfigError, load_config


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_base_config_defines_the_tutorial_keys():
    config = load_config([])
    assert config.run == ("mockaudit",)
    assert config.schedule == (0, 0)
    audit = config.audits["mockaudit"]
    assert (audit.clouds, audit.stores, audit.events, audit.alerts) == (
        ("mockcloud",),
        ("filestore",),
        ("mockevent",),
        ("filestore",),
    )
    for key in (
        "mockcloud", "mockevent", "filestore", "esstore", "mongodbstore", "firewallruleevent",
        "azvmosdiskencryptionevent", "azvmdatadiskencryptionevent", "azosdiskencryptionevent",
        "azdatadiskencryptionevent",
    ):  # fmt: skip
        assert key in config.plugins
    assert config.logger["handlers"]["file"]["filename"] == "/tmp/cloudmarker.log"
    assert config.audit_errors == {}


def test_cascade_replaces_lists_and_merges_mappings(tmp_path):
    # The tutorial's example: bar.yaml's run list replaces foo.yaml's.
    foo = write(
        tmp_path / "foo.yaml", "run:\n  - mockaudit\n  - fooaudit\naudits:\n  fooaudit:\n    clouds: [mockcloud]\n"
    )
    bar = write(tmp_path / "bar.yaml", "run:\n  - baraudit\naudits:\n  baraudit:\n    clouds: [mockcloud]\n")
    config = load_config([foo, bar])
    assert config.run == ("baraudit",)
    assert set(config.audits) == {"mockaudit", "fooaudit", "baraudit"}  # keys merged


def test_override_params_keeps_base_plugin_path(tmp_path):
    path = write(
        tmp_path / "c.yaml",
        """
        plugins:
          mockcloud:
            params:
              record_count: 20
              record_types: [foo, bar, baz]
          mockevent:
            params:
              n: 5
        """,
    )
    config = load_config([path])
    assert config.plugins["mockcloud"].class_path == "cloudmarker.clouds.mockcloud.MockCloud"
    assert config.plugins["mockcloud"].params == {"record_count": 20, "record_types": ["foo", "bar", "baz"]}
    assert config.plugins["mockevent"].params == {"n": 5}


def test_later_files_win_and_missing_files_are_skipped(tmp_path):
    first = write(tmp_path / "a.yaml", "schedule: '01:30'\n")
    second = write(tmp_path / "b.yaml", "schedule: '02:45'\n")
    config = load_config([first, str(tmp_path / "missing.yaml"), second])
    assert config.schedule == (2, 45)
    assert config.sources[-1].endswith("b.yaml")


def test_default_cascade_order(home):
    (home / ".cloudmarker.yaml").write_text("schedule: '01:00'\nrun: [mockaudit]\n")
    (home / "cloudmarker.yaml").write_text("schedule: '02:00'\n")
    write(home.parent / "work" / "cloudmarker.yaml", "schedule: '03:00'\n")
    config = load_config()
    assert config.schedule == (3, 0)
    assert [s.rsplit("/", 2)[-2:] for s in config.sources[1:]] == [
        ["home", ".cloudmarker.yaml"],
        ["home", "cloudmarker.yaml"],
        ["work", "cloudmarker.yaml"],
    ]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.yaml", "plugins:\n  x:\n    plugin: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert f"{path}:4" in str(info.value) or f"{path}:3" in str(info.value)
    assert "YAML syntax error" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("run: [nosuchaudit]\n", "run: audit 'nosuchaudit' is not defined under audits"),
        ("schedule: '25:00'\n", "schedule: '25:00' is not a time of day; use 24-hour \"HH:MM\""),
        ("plugins: [a, b]\n", "plugins: must be a mapping"),
        ("plugins:\n  mockcloud:\n    params: 5\n", "plugins.mockcloud.params: must be a mapping"),
        ("logger: nope\n", "logger: must be a mapping"),
        ("timezone: Mars/Olympus\n", "timezone: unknown time zone"),
    ],
)
def test_fatal_problems_name_the_key_and_the_fix(tmp_path, text, expected):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert f"{path}: {expected}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "audits:\n  a:\n    clouds: [nocloud]\n",
            "audits.a.clouds: plugin key 'nocloud' is not defined under plugins; define it there",
        ),
        (
            "plugins:\n  c:\n    plugin: cloudmarker.clouds.nosuch.Cloud\naudits:\n  a:\n    clouds: [c]\n",
            "cannot import module 'airflow_cloudmarker.clouds.nosuch'",
        ),
        (
            "plugins:\n  c:\n    plugin: cloudmarker.clouds.mockcloud.NoClass\naudits:\n  a:\n    clouds: [c]\n",
            "has no class 'NoClass'",
        ),
        (
            "plugins:\n  c:\n    plugin: cloudmarker.clouds.mockcloud.MockCloud\n    params:\n      record_cont: 5\n"
            "audits:\n  a:\n    clouds: [c]\n",
            "MockCloud does not accept these params (got an unexpected keyword argument 'record_cont'); "
            "accepted params: record_count, record_types; fix the params",
        ),
        (
            "audits:\n  a:\n    clouds: [mockevent]\n",
            "is used in clouds but has no read() method",
        ),
        (
            "audits:\n  a:\n    clouds: mockcloud\n    stores: {x: 1}\n",
            "audits.a.stores: must be a list of plugin keys",
        ),
        ("audits:\n  a:\n    stores: [filestore]\n", "audits.a.clouds: an audit needs at least one cloud plugin key"),
    ],
)
def test_audit_problems_skip_only_that_audit(tmp_path, text, expected):
    path = write(tmp_path / "c.yaml", text)
    config = load_config([path])
    problems = " | ".join(config.audit_errors["a"])
    assert expected in problems
    assert path in problems
    assert "mockaudit" in config.valid_audits()


def test_keys_beside_plugin_are_taken_as_params_with_a_warning(tmp_path):
    # The tutorial's "more elaborate" EsStore example puts host/port beside plugin.
    path = write(tmp_path / "c.yaml", "plugins:\n  filestore:\n    path: /x/y\n")
    config = load_config([path])
    assert config.plugins["filestore"].params == {"path": "/x/y"}
    assert any("taking them as params" in w and "plugins.filestore" in w for w in config.warnings)


def test_top_level_emailalert_key_warns_towards_email(tmp_path):
    path = write(tmp_path / "c.yaml", "emailalert:\n  host: smtp.example.com\n")
    config = load_config([path])
    assert any("'email'" in w and "emailalert" in w for w in config.warnings)


def test_unquoted_schedule_read_as_base_60_integer(tmp_path):
    path = write(tmp_path / "c.yaml", "schedule: 12:30\n")  # YAML 1.1 reads this as 750
    assert load_config([path]).schedule == (12, 30)


def test_env_var_names_config_files(monkeypatch, tmp_path):
    monkeypatch.setenv(config_mod.CONFIG_ENV_VAR, f"{tmp_path}/a.yaml:{tmp_path}/b.yaml")
    assert config_mod.config_paths_from_env() == [f"{tmp_path}/a.yaml", f"{tmp_path}/b.yaml"]
    monkeypatch.setenv(config_mod.CONFIG_ENV_VAR, "")
    assert config_mod.config_paths_from_env() == []


@pytest.mark.parametrize("kind", ["clouds", "stores", "events", "alerts"])
def test_same_plugin_twice_in_an_audit_list_is_an_error(tmp_path, kind):
    # Listed twice, a plugin would store every record twice and send each event four times.
    lists = {"clouds": "[mockcloud]", "stores": "[filestore]", "events": "[mockevent]", "alerts": "[filestore]"}
    lists[kind] = {
        "clouds": "[mockcloud, mockcloud]",
        "stores": "[filestore, filestore]",
        "events": "[mockevent, mockevent]",
        "alerts": "[filestore, filestore]",
    }[kind]
    body = "".join(f"    {k}: {v}\n" for k, v in lists.items())
    path = write(tmp_path / "c.yaml", f"audits:\n  twice:\n{body}")
    config = load_config([path])
    key = lists[kind][1:].split(",")[0]
    assert config.audit_errors["twice"] == [
        f"{path}: audits.twice.{kind}: plugin key {key!r} is listed 2 times; list each plugin key once "
        f"(every entry is a task of its own, so the records and events would be handled 2 times)"
    ]
    assert "mockaudit" in config.valid_audits()


def test_a_plugin_both_store_and_alert_of_an_audit_is_allowed(tmp_path):
    # Documented routing: FileStore keeps the records as a store and the events as an alert.
    path = write(
        tmp_path / "c.yaml",
        "audits:\n  a:\n    clouds: [mockcloud]\n    stores: [filestore]\n    alerts: [filestore]\n",
    )
    assert load_config([path]).audit_errors == {}


def test_methods_and_params_problems_of_one_plugin_are_both_reported(tmp_path):
    # MockEvent used as a cloud lacks read(), and 'bogus' is not one of its params: two fixes, two lines.
    path = write(
        tmp_path / "c.yaml",
        "plugins:\n  mockevent:\n    params:\n      bogus: 1\naudits:\n  a:\n    clouds: [mockevent]\n",
    )
    problems = load_config([path]).audit_errors["a"]
    assert any("is used in clouds but has no read() method" in p for p in problems), problems
    assert any("MockEvent does not accept these params" in p for p in problems), problems


def test_param_of_the_wrong_type_is_an_error_before_anything_runs(tmp_path):
    path = write(tmp_path / "c.yaml", "plugins:\n  mockcloud:\n    params:\n      record_count: '5'\n")
    config = load_config([path])
    assert config.audit_errors["mockaudit"] == [
        f"{path}: plugins.mockcloud.params.record_count: MockCloud param record_count must be int, not '5' "
        f"(a string); write it without quotes: record_count: 5"
    ]


def test_email_param_of_the_wrong_type_names_the_key(tmp_path):
    path = write(
        tmp_path / "c.yaml",
        "email:\n  from_addr: a@example.com\n  to_addrs: [b@example.com]\n  host: smtp.example.com\n  port: '2525'\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert str(info.value) == (
        f"{path}: email.port: EmailAlert param port must be int, not '2525' (a string); "
        f"write it without quotes: port: 2525; fix the email config"
    )


def documented_configs() -> list[tuple[str, str]]:
    """Every YAML config of docs/*.md and README.md (```yaml blocks) and of the original tutorial."""
    from support.cli import REPO_ROOT

    found = []
    for doc in sorted([*(REPO_ROOT / "docs").glob("*.md"), REPO_ROOT / "README.md"]):
        blocks = re.findall(r"^```yaml\n(.*?)^```", doc.read_text(), flags=re.S | re.M)
        found += [(f"{doc.name}#{i + 1}", block) for i, block in enumerate(blocks)]
    tutorial = REPO_ROOT / "docs" / "tutorial.txt"
    found += [(f"tutorial.txt:{line}", block) for line, block in tutorial_configs(tutorial.read_text())]
    return found


def tutorial_configs(text: str) -> list[tuple[int, str]]:
    """The tutorial's configs: runs of lines from a top-level config key down to the next prose line."""
    start = re.compile(r"^( *)(plugins|audits|run|email|emailalert|logger|schedule):\s*$")
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        match = start.match(lines[i])
        if not match:
            i += 1
            continue
        indent, first, block = len(match.group(1)), i, []
        while i < len(lines):
            line = lines[i]
            deeper = len(line) - len(line.lstrip()) > indent
            if line.strip() and not deeper and not re.match(rf"^ {{{indent}}}[a-z_]+:", line):
                break
            block.append(line[indent:])
            i += 1
        if not any(line.strip() == "..." for line in block):  # "..." marks an abridged excerpt
            found.append((first + 1, "\n".join(block) + "\n"))
    return found


@pytest.mark.parametrize(("where", "text"), [pytest.param(w, t, id=w) for w, t in documented_configs()])
def test_documented_configs_validate(tmp_path, where, text):
    """What the docs and the tutorial tell users to write passes validation, param types included."""
    import yaml

    from airflow_cloudmarker import plugins as plugin_loader

    path = write(tmp_path / "doc.yaml", text)
    undefined = "is not defined under"  # an excerpt may name audits or plugins defined elsewhere
    try:
        config = load_config([path])
    except ConfigError as exc:
        assert all(undefined in p for p in exc.problems), exc.problems
        return
    assert all(undefined in p for ps in config.audit_errors.values() for p in ps), config.audit_errors
    for key in (yaml.safe_load(text) or {}).get("plugins") or {}:
        plugin = config.plugins[key]
        cls = plugin_loader.load_class(plugin.class_path)
        plugin_loader.check_params(cls, plugin.params)
        assert plugin_loader.check_param_types(cls, plugin.params) == [], where


def test_documented_configs_are_found():
    names = [where for where, _ in documented_configs()]
    assert len([n for n in names if n.startswith("tutorial.txt")]) >= 15
    assert len([n for n in names if ".md#" in n]) >= 17
