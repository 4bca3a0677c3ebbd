"""The plugin contract (protocols, optional abilities, check metadata) and the plugin listing.

Everything here runs without an Airflow run: the contract is checked at config load time, and
``cloudmarker --list-plugins`` reads only the plugin classes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support.cli import REPO_ROOT

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import contract, findings, plugins
from airflow_cloudmarker.contract import CIS_AWS, CIS_AZURE, CIS_AZURE_2, CIS_AZURE_3, CIS_GCP, CheckMetadata
from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent

#: The CIS controls of /work/shared/spec/cis-mapping.md that the built-in checks may name (the
#: newest benchmark of each cloud), with a word of the control's title the check's title must share.
CIS_CONTROLS = {
    CIS_AZURE: {
        **{"7.1": "RDP", "7.2": "SSH", "7.3": "UDP", "7.4": "HTTP"},
        **{"8.3.1": "expiration", "8.3.2": "expiration", "8.3.3": "expiration", "8.3.4": "expiration"},
        **{"8.3.5": "purge protection", "9.3.2.3": "Deny", "9.3.4": "secure transfer", "9.3.5": "trusted"},
        **{"6.1.1.1": "diagnostic setting", "6.1.1.2": "categories"},
    },
    # Controls that left the Foundations benchmark from 4.0 on (databases, App Service, VM extensions).
    CIS_AZURE_3: {
        **{"5.1.5": "encryption", "5.2.1": "secure transport", "5.3.1": "secure transport"},
        **{"5.2.2": "checkpoint", "5.2.3": "throttling", "5.2.4": "logs", "5.2.6": "connection logging"},
        **{"5.2.7": "disconnection", "8.7": "extension", "9.1": "HTTPS Only"},
        **{"9.4": "latest TLS version", "9.10": "HTTP20enabled"},
    },
    CIS_AZURE_2: {"9.4": "Client Certificates"},
    CIS_GCP: {"3.6": "SSH", "3.7": "RDP"},
    # 6.3/6.4: no security group open to 0.0.0.0/0 or ::/0 on remote server administration ports.
    CIS_AWS: {"3.1.4": "Block Public Access", "6.1.1": "EBS volume encryption", "6.3": "port", "6.4": "port"},
}


def builtin_paths() -> set[str]:
    return {info.path for info in plugins.builtin_plugins()}


# -- protocols ----------------------------------------------------------------------------------


def test_protocols_accept_every_builtin_plugin():
    infos = plugins.builtin_plugins()
    base = yaml.safe_load(config_mod.base_config_text())["plugins"]
    assert {entry["plugin"] for entry in base.values()} <= {i.path for i in infos}  # discovery found them all
    assert len(infos) >= 14
    for info in infos:
        for kind in info.kinds:
            protocol = contract.protocol_for(info.cls, kind)
            assert issubclass(info.cls, protocol), (info.path, kind)
            assert contract.missing_methods(info.cls, kind) == [], (info.path, kind)
            assert plugins.check_abilities(info.cls, kind) == [], (info.path, kind)


def test_sharded_clouds_are_checked_against_the_sharded_protocol():
    from airflow_cloudmarker.clouds.azcloud import AzCloud
    from airflow_cloudmarker.clouds.mockcloud import MockCloud

    assert contract.protocol_for(AzCloud, "clouds") is contract.ShardedCloudPlugin
    assert contract.protocol_for(MockCloud, "clouds") is contract.CloudPlugin
    assert contract.protocol_methods(contract.ShardedCloudPlugin) == ("shards", "read", "done")
    assert contract.protocol_methods(contract.AlertPlugin) == ("write", "done")
    assert contract.max_parallel_shards(AzCloud) == 8 and contract.max_parallel_shards(MockCloud) == 8


class HalfCloud:
    """A cloud without done()."""

    def read(self):
        yield {}


class ShardsOnly:
    """Splits its work but cannot read a shard."""

    max_parallel_shards = 2

    def shards(self):
        return ["a"]

    def done(self):
        pass


class BadAbilities:
    """A sharded cloud whose declared abilities have the wrong types."""

    max_parallel_shards = "8"

    def __init__(self, region: str = "eu"):
        self.region = region

    def shards(self):
        return []

    def read(self, shard=None):
        return []

    def done(self):
        pass


class FewShards(BadAbilities):
    """A sharded cloud fetching at most 3 shards at once."""

    max_parallel_shards = 3


class BadCheckEvent:
    CHECK = ("not metadata",)

    def eval(self, record):
        return []

    def done(self):
        pass


class BadStore:
    keeps_every_event = "yes"
    abort = None

    def write(self, record):
        pass

    def done(self):
        pass


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return config_mod.load_config([str(path)]).audit_errors["a"]


def test_a_class_missing_a_method_is_one_line_naming_file_key_and_fix(tmp_path):
    assert not isinstance(HalfCloud(), contract.CloudPlugin)
    assert isinstance(HalfCloud(), contract.EventPlugin) is False
    problems = _problems(
        tmp_path,
        "plugins:\n  half:\n    plugin: unit.test_contract.HalfCloud\n"
        "  shardy:\n    plugin: unit.test_contract.ShardsOnly\n"
        "audits:\n  a:\n    clouds: [half, shardy]\n",
    )
    where = f"{tmp_path / 'c.yaml'}: audits.a.clouds"
    assert problems == [
        f"{where}: plugin key 'half': unit.test_contract.HalfCloud is used in clouds but has no done() method; "
        f"list it under the right key",
        f"{where}: plugin key 'shardy': unit.test_contract.ShardsOnly is used in clouds but has no read() method; "
        f"list it under the right key",
    ]


def test_bad_abilities_and_bad_params_are_reported_together(tmp_path):
    problems = _problems(
        tmp_path,
        "plugins:\n  bad:\n    plugin: unit.test_contract.BadAbilities\n    params:\n      regoin: us\n"
        "  badstore:\n    plugin: unit.test_contract.BadStore\n"
        "audits:\n  a:\n    clouds: [bad]\n    alerts: [badstore]\n",
    )
    source = tmp_path / "c.yaml"
    assert problems == [
        f"{source}: plugins.bad.plugin: unit.test_contract.BadAbilities.max_parallel_shards must be a positive "
        f"integer, not '8'; set it to a number such as 8",
        f"{source}: plugins.bad.params: BadAbilities does not accept these params (got an unexpected keyword "
        f"argument 'regoin'); accepted params: region; fix the params",
        f"{source}: plugins.badstore.plugin: unit.test_contract.BadStore.keeps_every_event must be True or False, "
        f"not 'yes'; set it to True or False",
    ]
    assert all("\n" not in p for p in problems)


def test_keeps_every_event_is_declared_by_the_stores_not_guessed_from_a_module_path():
    by_path = {i.path: i.cls for i in plugins.builtin_plugins()}
    stores = [c for p, c in by_path.items() if p.startswith("cloudmarker.stores.")]
    alerts = [c for p, c in by_path.items() if p.startswith("cloudmarker.alerts.")]
    assert stores and alerts
    assert all(contract.keeps_every_event(c) for c in stores)
    assert not any(contract.keeps_every_event(c) for c in alerts)
    undeclared = type("Store", (), {"__module__": "airflow_cloudmarker.stores.mine", "write": print, "done": print})
    assert not contract.keeps_every_event(undeclared)


def test_write_batch_is_found_only_when_callable():
    class Batched:
        def write_batch(self, records):
            return len(records)

    class NotCallable:
        write_batch = 3

    assert contract.write_batch_method(Batched())([{}, {}]) == 2
    assert contract.write_batch_method(NotCallable()) is None
    assert contract.write_batch_method(object()) is None
    assert any("write_batch must be a method" in p for p in contract.ability_problems(NotCallable, "stores"))


def test_every_ability_is_named_once_with_its_meaning():
    names = [a.name for a in contract.ABILITIES]
    assert names == [
        "shards",
        "max_parallel_shards",
        "max_shard_groups",
        "api_counts",
        "abort",
        "write_batch",
        "keeps_every_event",
        "CHECK",
    ]
    for ability in contract.ABILITIES:
        assert ability.meaning and ability.declared_as
        assert set(ability.kinds) <= set(contract.PROTOCOLS)


def test_max_parallel_shards_reaches_the_mapped_fetch_task(tmp_path):
    from airflow_cloudmarker import factory

    path = tmp_path / "c.yaml"
    path.write_text(
        "plugins:\n  few:\n    plugin: unit.test_contract.FewShards\n"
        "audits:\n  a:\n    clouds: [few, mockcloud]\n    events: [mockevent]\n"
    )
    config = config_mod.load_config([str(path)])
    assert config.audit_errors == {}
    dag = factory.build_dag(config, config.audits["a"])
    assert dag.get_task("fetch_few").max_active_tis_per_dagrun == 3
    assert "shards_few" in dag.task_ids and "shards_mockcloud" not in dag.task_ids


# -- check metadata ----------------------------------------------------------------------------

GOOD = {
    "check_id": "my_check",
    "title": "Something is open",
    "severity": "high",
    "resource_type": "bucket",
    "risk": "Anyone can read it.",
    "remediation": "Close {name}.",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"check_id": ""}, "check_id must be lower-case letters, digits and _, not ''"),
        ({"check_id": "My-Check"}, "check_id must be lower-case letters"),
        ({"title": " "}, "check my_check: title must be a non-empty string"),
        ({"title": "two\nlines"}, "title must be one line"),
        ({"severity": "urgent"}, "severity must be one of critical, high, medium, low, info, not 'urgent'"),
        ({"resource_type": None}, "resource_type must be a non-empty string"),
        ({"risk": ""}, "risk must be a non-empty string"),
        ({"remediation": "Close {0}."}, "placeholder {0} must be a plain name"),
        ({"remediation": "Close {name!r}."}, "placeholder {name} must be a plain name"),
        ({"description": "Open {"}, "description is not a valid text template"),
        ({"links": "https://example.com"}, "links must be a list of URLs"),
        ({"links": ["ftp://example.com/x"]}, "'ftp://example.com/x' is not an http(s) URL"),
        ({"links": ["https://"]}, "is not an http(s) URL"),
        ({"controls": ["7.1"]}, "controls must map benchmark names to lists of control ids"),
        ({"controls": {CIS_AZURE: "7.1"}}, "must be a list of control ids such as ['7.1']"),
        ({"controls": {CIS_AZURE: []}}, "are not control ids"),
        ({"controls": {CIS_AZURE: ["7.1", "seven"]}}, "['seven'] are not control ids"),
        ({"controls": {"": ["7.1"]}}, "controls benchmark name must be a non-empty string"),
    ],
)
def test_check_metadata_refuses_unusable_values(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CheckMetadata(**{**GOOD, **change})


def test_check_metadata_fills_the_event_texts_and_is_frozen():
    check = CheckMetadata(**GOOD, links=["https://example.com/doc"], controls={CIS_GCP: ["3.6"]})
    assert check.description == check.title  # no description: the title
    assert check.links == ("https://example.com/doc",)
    assert check.controls == {CIS_GCP: ("3.6",)}
    assert check.event_com({"name": "b1"}) == {
        "check_id": "my_check",
        "title": "Something is open",
        "severity": "high",
        "description": "Something is open",
        "recommendation": "Close b1.",
    }
    assert check.event_com({"name": "b1"}, "low")["severity"] == "low"
    with pytest.raises(KeyError, match="no value for name"):
        check.event_com({})
    with pytest.raises(AttributeError):
        check.severity = "low"
    with pytest.raises(TypeError):
        check.controls[CIS_AZURE] = ("7.1",)


def test_a_bad_check_declaration_is_a_config_problem(tmp_path):
    problems = _problems(
        tmp_path,
        "plugins:\n  ev:\n    plugin: unit.test_contract.BadCheckEvent\naudits:\n  a:\n    clouds: [mockcloud]\n"
        "    events: [ev]\n",
    )
    assert problems == [
        f"{tmp_path / 'c.yaml'}: plugins.ev.plugin: unit.test_contract.BadCheckEvent.CHECK must be a CheckMetadata "
        f"or a tuple of them, not ('not metadata',); declare CHECK = CheckMetadata(...) "
        f"from airflow_cloudmarker.contract"
    ]


def builtin_events():
    return [i for i in plugins.builtin_plugins() if i.kinds == ("events",)]


def test_every_builtin_event_declares_valid_checks_with_known_cis_controls():
    events = builtin_events()
    assert len(events) >= 4
    ids = [c.check_id for info in events for c in info.checks]
    assert len(ids) == len(set(ids)), ids  # stable ids, one check each
    for info in events:
        assert info.checks, f"{info.path} declares no CHECK"
        severity = next(p for p in info.params if p.name == "severity")
        if len({c.severity for c in info.checks}) == 1 and severity.default is not None:
            assert severity.default == info.checks[0].severity  # the param's default comes from the check
        for check in info.checks:
            for benchmark, controls in check.controls.items():
                assert benchmark in CIS_CONTROLS, (check.check_id, benchmark)
                for control in controls:
                    word = CIS_CONTROLS[benchmark].get(control)
                    assert word, f"{check.check_id}: {benchmark} {control} is not in cis-mapping.md"
                    assert word in check.title, (check.check_id, control, word)
    mapped = {c.check_id: c.controls for c in FirewallRuleEvent.CHECK}
    assert mapped["firewall_ssh_open_to_internet"] == {CIS_AZURE: ("7.2",), CIS_GCP: ("3.6",), CIS_AWS: ("6.3", "6.4")}
    assert mapped["firewall_rdp_open_to_internet"] == {CIS_AZURE: ("7.1",), CIS_GCP: ("3.7",), CIS_AWS: ("6.3", "6.4")}
    assert mapped["firewall_database_open_to_internet"] == {}  # no CIS network control for DB ports


def test_findings_take_the_default_severity_from_the_check():
    assert findings.normalize_severity(None, "firewall_ssh_open_to_internet") == "high"
    assert findings.normalize_severity("bogus", "mock_multiple_of_n") == "low"
    assert findings.normalize_severity("LOW", "firewall_ssh_open_to_internet") == "low"  # the event's own wins
    assert findings.normalize_severity(None, "no_such_check") == findings.DEFAULT_SEVERITY
    assert findings.normalize_severity(None) == findings.DEFAULT_SEVERITY
    mine = type("Mine", (), {"CHECK": CheckMetadata(**{**GOOD, "check_id": "mine_critical", "severity": "critical"})})
    contract.checks_of(mine)  # what loading the plugin does
    assert findings.normalize_severity(None, "mine_critical") == "critical"


def test_findings_keep_the_check_id_of_a_resolved_finding(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "audit")
    event = {
        "ext": {},
        "com": {"reference": "r1", "finding_key": "22", "cloud_key": "c", "origin_key": "e"},
    }
    event["com"].update(FirewallRuleEvent.CHECK[1].event_com({"cloud": "Azure", "reference": "r1", "ports": "port 22"}))
    findings.track(store, "run1", "2024-01-01T00:00:00+00:00", [event], findings.Scope(), lambda e: None)
    out: list[dict] = []
    findings.track(store, "run2", "2024-01-02T00:00:00+00:00", [], findings.Scope(), out.append)
    (resolved,) = out
    assert resolved["com"]["status"] == "resolved"
    assert resolved["com"]["check_id"] == "firewall_ssh_open_to_internet"
    assert resolved["com"]["title"] == FirewallRuleEvent.CHECK[1].title


# -- the listing ---------------------------------------------------------------------------------


# -- the docs cannot drift from the plugins ------------------------------------------------------

DOCS = REPO_ROOT / "docs" / "plugins.md"


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_docs_list_every_plugin_param_and_check():
    rows = _table_rows(DOCS.read_text())
    for info in plugins.builtin_plugins():
        (row,) = [r for r in rows if f"`{info.path}`" in r.split("|")[2]]
        missing = [p.name for p in info.params if f"`{p.name}`" not in row]
        assert not missing, f"docs/plugins.md: the row of {info.path} does not list params {missing}"
        for check in info.checks:
            (check_row,) = [r for r in rows if r.startswith(f"| `{check.check_id}` ")]
            cells = [c.strip() for c in check_row.split("|")[1:-1]]
            assert cells[1] == f"`{info.cls.__name__}`", check_row
            assert cells[2] == check.severity, check_row
            assert cells[3] == check.title, check_row
            assert cells[4] == plugins.controls_text(check), check_row
    documented = {r.split("|")[1].strip().strip("`") for r in rows if re.match(r"\| `[a-z0-9_]+` \| `", r)}
    assert documented == {c.check_id for i in builtin_events() for c in i.checks}  # no check documented twice or gone
    for ability in contract.ABILITIES:
        assert f"`{ability.name}`" in DOCS.read_text(), ability.name


def test_the_docs_example_plugin_satisfies_the_contract():
    text = DOCS.read_text().split("### Check metadata", 1)[1]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - the repository's own docs
    cls = namespace["BucketEvent"]
    assert contract.missing_methods(cls, "events") == [] and plugins.check_abilities(cls, "events") == []
    (event,) = cls().eval({"ext": {"public": True}, "com": {"reference": "b1"}})
    assert event["com"]["check_id"] == "acme_bucket_public"
    assert event["com"]["description"] == "Bucket b1 is readable by anyone."
