"""The mutelist without Airflow: config validation, compiled matching, muting in the findings lifecycle,
what alerts are held back from, and the counts.

End to end through ``cloudmarker -n``: tests/integration/test_mutelist.py.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import random
import textwrap

import pytest

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import findings, results, tasks
from airflow_cloudmarker.config import ConfigError, MuteRule, load_config

TODAY = dt.date(2026, 6, 1)


def load(tmp_path, text: str):
    path = tmp_path / "mute.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config([str(path)]), str(path)


def problems(tmp_path, text: str) -> tuple[list[str], str]:
    path = tmp_path / "mute.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config([str(path)])
    return info.value.problems, str(path)


# -- config ----------------------------------------------------------------------------------------


def test_a_documented_rule_is_read_with_its_conditions_and_expiry(tmp_path):
    config, path = load(
        tmp_path,
        """
        mutelist:
          - reason: Bastion hosts must expose SSH (SEC-1234)
            audits: [myazaudit]
            events: [firewallruleevent]
            record_types: [firewall_rule_event]
            references: ["/subscriptions/*/resourceGroups/rg-bastion/*"]
            finding_ids: []
            expires: 2027-03-31
          - reason: quoted date
            finding_ids: [abc]
            expires: "2027-04-01"
          - reason: numbers read as text
            references: [3, 6]
        """,
    )
    first, second, third = config.mutelist
    assert first == MuteRule(
        0,
        "Bastion hosts must expose SSH (SEC-1234)",
        path,
        audits=("myazaudit",),
        events=("firewallruleevent",),
        record_types=("firewall_rule_event",),
        references=("/subscriptions/*/resourceGroups/rg-bastion/*",),
        expires=dt.date(2027, 3, 31),
    )
    assert second.expires == dt.date(2027, 4, 1) and second.finding_ids == ("abc",)
    assert third.references == ("3", "6") and third.expires is None
    assert first.label() == "mutelist[0] (reason: Bastion hosts must expose SSH (SEC-1234))"
    assert config.mutelist_for("myazaudit") == (first, second, third)
    assert config.mutelist_for("other") == (second, third)
    assert "mutelist" in config_mod.TOP_LEVEL_KEYS and not config.warnings


def test_the_mutelist_of_a_later_file_replaces_the_earlier_one(tmp_path):
    team = tmp_path / "security.yaml"
    team.write_text("mutelist:\n  - reason: the security team's\n    finding_ids: [x]\n")
    base = tmp_path / "base.yaml"
    base.write_text("mutelist:\n  - reason: mine\n    finding_ids: [y]\n")
    (rule,) = load_config([str(base), str(team)]).mutelist
    assert (rule.reason, rule.source) == ("the security team's", str(team))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            "finding_ids: [abc]",
            "mutelist[0] (no reason): no reason; add reason: saying why the risk is accepted (a ticket)",
            id="no-reason",
        ),
        pytest.param(
            "reason: ok\n  finding_ids: [abc]\n  reference: [x]",
            "mutelist[0] (reason: ok): unknown keys reference; a rule has reason, audits, events, record_types, "
            "references, finding_ids, expires",
            id="unknown-key",
        ),
        pytest.param(
            "reason: ok\n  references: /subscriptions/*",
            "mutelist[0] (reason: ok): references must be a list of strings; "
            "write it as references: [/subscriptions/*]",
            id="not-a-list",
        ),
        pytest.param(
            "reason: ok\n  audits: {a: 1}",
            "mutelist[0] (reason: ok): audits must be a list of strings; write it as audits: [...]",
            id="mapping-not-a-list",
        ),
        pytest.param(
            "reason: ok\n  finding_ids: [abc]\n  expires: 31/03/2027",
            "mutelist[0] (reason: ok): expires '31/03/2027' is not a date; write the last day it mutes as YYYY-MM-DD",
            id="bad-date",
        ),
        pytest.param(
            "reason: ok\n  finding_ids: [abc]\n  expires: 2027-13-01",
            "mutelist[0] (reason: ok): expires '2027-13-01' is not a date; write the last day it mutes as YYYY-MM-DD",
            id="impossible-yaml-date",
        ),
        pytest.param(
            "reason: ok\n  finding_ids: [abc]\n  expires: 2027-03-31 12:00:00",
            "mutelist[0] (reason: ok): expires datetime.datetime(2027, 3, 31, 12, 0) is not a date; "
            "write the last day it mutes as YYYY-MM-DD",
            id="a-time-not-a-date",
        ),
        pytest.param(
            "reason: ok\n  expires: 2027-03-31",
            "mutelist[0] (reason: ok): no condition, so it would mute every finding; give at least one of "
            "audits, events, record_types, references, finding_ids",
            id="no-condition",
        ),
        pytest.param(
            "reason: ok\n  finding_ids: []\n  references: []",
            "mutelist[0] (reason: ok): no condition, so it would mute every finding; give at least one of "
            "audits, events, record_types, references, finding_ids",
            id="only-empty-conditions",
        ),
    ],
)
def test_each_wrong_rule_is_one_line_naming_file_rule_and_fix(tmp_path, rule, expected):
    found, path = problems(tmp_path, f"mutelist:\n- reason: fine\n  finding_ids: [x]\n- {rule}\n")
    assert found == [f"{path}: {expected}".replace("mutelist[0]", "mutelist[1]")]


def test_every_problem_of_every_rule_is_reported_at_once(tmp_path):
    found, path = problems(
        tmp_path,
        """
        mutelist:
          - reason: "  two\\n  lines "
            colour: red
            expires: someday
          - just a string
        """,
    )
    assert found == [
        f"{path}: mutelist[0] (reason: two lines): unknown keys colour; a rule has reason, audits, events, "
        "record_types, references, finding_ids, expires",
        f"{path}: mutelist[0] (reason: two lines): expires 'someday' is not a date; write the last day it mutes "
        "as YYYY-MM-DD",
        f"{path}: mutelist[0] (reason: two lines): no condition, so it would mute every finding; give at least one "
        "of audits, events, record_types, references, finding_ids",
        f"{path}: mutelist[1]: a rule must be a mapping with a reason and conditions (audits, events, "
        "record_types, references, finding_ids), not a str",
    ]


def test_a_mutelist_that_is_not_a_list_is_refused(tmp_path):
    found, path = problems(tmp_path, "mutelist:\n  reason: x\n  finding_ids: [a]\n")
    assert found == [
        f"{path}: mutelist: must be a list of rules (each a mapping with a reason and conditions), not a dict"
    ]


def test_an_impossible_date_elsewhere_is_no_traceback_either(tmp_path):
    """PyYAML raised a bare ValueError (a traceback) for 2027-13-01 anywhere in a config."""
    found, path = problems(tmp_path, "schedule: 2027-13-01\n")
    assert found == [f'{path}: schedule: \'2027-13-01\' is not a time of day; use 24-hour "HH:MM" such as "00:00"']


# -- matching -------------------------------------------------------------------------------------


def rule(index: int, reason: str = "r", **conditions) -> MuteRule:
    return MuteRule(index, reason, "test.yaml", **conditions)


AZ = "/subscriptions/s1/resourceGroups/rg-bastion/providers/Microsoft.Network/networkSecurityGroups/nsg1"


def test_a_rule_matches_when_every_condition_it_gives_matches():
    mutes = findings.Mutelist(
        [rule(0, events=("firewallruleevent",), references=("/subscriptions/*/resourceGroups/rg-bastion/*",))],
        TODAY,
    )
    assert mutes.match("f1", "firewallruleevent", "firewall_rule_event", AZ).index == 0
    assert mutes.match("f1", "otherevent", "firewall_rule_event", AZ) is None
    assert mutes.match("f1", "firewallruleevent", "firewall_rule_event", AZ.replace("bastion", "web")) is None


@pytest.mark.parametrize(
    ("conditions", "hit", "miss"),
    [
        ({"finding_ids": ("f1", "f2")}, ("f2", "e", "t", "r"), ("f3", "e", "t", "r")),
        ({"references": ("3", "6")}, ("f", "e", "t", "6"), ("f", "e", "t", "36")),
        ({"references": ("rg-*",)}, ("f", "e", "t", "rg-a/b"), ("f", "e", "t", "xrg-a")),
        ({"references": ("*/nsg[12]",)}, ("f", "e", "t", "a/nsg2"), ("f", "e", "t", "a/nsg3")),
        ({"record_types": ("t",)}, ("f", "e", "t", "r"), ("f", "e", "u", "r")),
        ({"events": ("e",)}, ("f", "e", "t", "r"), ("f", "x", "t", "r")),
        ({"finding_ids": ("f",), "references": ("r*",)}, ("f", "e", "t", "r1"), ("f", "e", "t", "s1")),
        ({"audits": ("a",)}, ("f", "e", "t", "r"), None),  # audits are applied by Config.mutelist_for
    ],
)
def test_each_condition_alone_and_combined(conditions, hit, miss):
    mutes = findings.Mutelist([rule(0, **conditions)], TODAY)
    assert mutes.match(*hit) is not None
    if miss is not None:
        assert mutes.match(*miss) is None


def test_the_first_matching_rule_in_config_order_gives_the_reason():
    mutes = findings.Mutelist(
        [
            rule(0, "by glob, other event", events=("x",), references=("/subscriptions/*",)),
            rule(1, "by glob", references=("/subscriptions/*/resourceGroups/rg-bastion/*",)),
            rule(2, "by id", finding_ids=("f1",)),
            rule(3, "by reference", references=(AZ,)),
        ],
        TODAY,
    )
    assert mutes.match("f1", "fw", "t", AZ).reason == "by glob"
    assert mutes.match("f1", "fw", "t", "/elsewhere").reason == "by id"
    assert mutes.match("f9", "x", "t", "/subscriptions/s2").reason == "by glob, other event"


def test_an_expired_rule_mutes_nothing_but_mutes_on_its_last_day():
    rules = [rule(0, finding_ids=("f1",), expires=dt.date(2026, 5, 31))]
    assert findings.Mutelist(rules, dt.date(2026, 5, 31)).match("f1", "e", "t", "r") is not None
    expired = findings.Mutelist(rules, dt.date(2026, 6, 1))
    assert expired.match("f1", "e", "t", "r") is None
    assert expired.expired == rules and not expired


def naive(rules: list[MuteRule], fid: str, event_key: str, record_type: str, reference: str) -> MuteRule | None:
    """The first live rule whose every given condition holds, by a plain loop with fnmatch."""
    for candidate in rules:
        if candidate.expired(TODAY):
            continue
        if candidate.finding_ids and fid not in candidate.finding_ids:
            continue
        if candidate.events and event_key not in candidate.events:
            continue
        if candidate.record_types and record_type not in candidate.record_types:
            continue
        if candidate.references and not any(fnmatch.fnmatchcase(reference, p) for p in candidate.references):
            continue
        return candidate
    return None


def test_compiled_matching_gives_the_plain_loops_answer_on_random_rules():
    """The indexes (ids, references, globs by literal segment) are only shortcuts: same first rule as a loop."""
    rnd = random.Random(16)
    segments = ["subscriptions", "s1", "s2", "resourceGroups", "rg-a", "rg-b", "nsg1", "nsg2", ""]
    globbed = ["*", "rg-*", "s?", "[rs]*", "*a*", "nsg?"]

    def reference() -> str:
        return "/".join(rnd.choice(segments) for _ in range(rnd.randint(1, 5)))

    def pattern() -> str:  # a glob with one wildcard segment, or none literal at all
        parts = [rnd.choice(segments) for _ in range(rnd.randint(2, 5))]
        parts[rnd.randrange(len(parts))] = rnd.choice(globbed)
        return "/".join(parts) if rnd.random() < 0.9 else rnd.choice(["*rg-a*", "nsg?", "*/nsg1"])

    rules = []
    for index in range(60):
        conditions: dict = {}
        for key, values in (
            ("finding_ids", ["f1", "f2", "f3"]),
            ("events", ["e1", "e2"]),
            ("record_types", ["t1", "t2"]),
        ):
            if rnd.random() < 0.3:
                conditions[key] = tuple(rnd.sample(values, 1))
        if rnd.random() < 0.9 or len(conditions) < 2:
            conditions["references"] = tuple(reference() if rnd.random() < 0.4 else pattern() for _ in range(2))
        expires = TODAY - dt.timedelta(days=1) if rnd.random() < 0.1 else None
        rules.append(rule(index, f"r{index}", expires=expires, **conditions))
    mutes = findings.Mutelist(rules, TODAY)
    hits = 0
    for _ in range(3000):
        key = (rnd.choice(["f1", "f2", "f3", "f4"]), rnd.choice(["e1", "e2"]), rnd.choice(["t1", "t2"]), reference())
        expected = naive(rules, *key)
        assert mutes.match(*key) == expected, key
        hits += expected is not None
    assert 300 < hits < 2700  # both kinds of answer were checked


# -- the lifecycle ----------------------------------------------------------------------------


def mock_event(data: int) -> dict:
    return {
        "ext": {"record_type": "mock_event", "data": data},
        "com": {
            "cloud_type": "mock",
            "record_type": "mock_event",
            "reference": str(data),
            "cloud_key": "mockcloud",
            "origin_key": "mockevent",
        },
    }


def track(store, run_id: str, data: list[int], mutes) -> tuple[findings.Outcome, list[dict]]:
    out: list[dict] = []
    run_time = f"2026-06-0{run_id[-1]}T00:00:00+00:00"
    outcome = findings.track(
        store, run_id, run_time, [mock_event(d) for d in data], findings.Scope(), out.append, mutes
    )
    return outcome, out


def test_muted_findings_keep_their_id_and_lifecycle_and_their_resolved_event_is_muted(tmp_path):
    store = findings.StateStore(f"file://{tmp_path}", "mockaudit")
    mutes = findings.Mutelist([rule(0, "accepted (SEC-1)", references=("3", "6"), expires=dt.date(2027, 3, 31))], TODAY)
    outcome, out = track(store, "run1", [0, 3, 6, 9], mutes)
    muted = {e["com"]["reference"]: e["com"] for e in out if e["com"].get("muted")}
    assert sorted(muted) == ["3", "6"]
    assert muted["3"]["mute_reason"] == "accepted (SEC-1)" and muted["3"]["mute_expires"] == "2027-03-31"
    assert (outcome.new, outcome.muted) == (4, {"new": 2, "open": 0, "resolved": 0})
    unmuted_ids = {e["com"]["reference"]: e["com"]["finding_id"] for e in out}
    assert all("muted" not in e["com"] for e in out if e["com"]["reference"] in ("0", "9"))

    outcome, out = track(store, "run2", [0, 3, 9], mutes)  # 6 is gone: its resolved event is muted too
    by_ref = {e["com"]["reference"]: e["com"] for e in out}
    assert {r: c["status"] for r, c in by_ref.items()} == {"0": "open", "3": "open", "9": "open", "6": "resolved"}
    assert {r: c["finding_id"] for r, c in by_ref.items()} == unmuted_ids
    assert by_ref["6"]["muted"] is True and by_ref["3"]["muted"] is True
    assert outcome.muted == {"new": 0, "open": 1, "resolved": 1}

    outcome, out = track(store, "run3", [0, 3], None)  # no rules any more: 3 is open and unmuted
    assert [(e["com"]["reference"], e["com"]["status"], e["com"].get("muted")) for e in out] == [
        ("0", "open", None),
        ("3", "open", None),
        ("9", "resolved", None),
    ]
    assert set(store.current_findings()) == {unmuted_ids["0"], unmuted_ids["3"]}


def test_expired_rules_warn_once_each_on_the_local_day_of_the_run(caplog):
    rules = [
        rule(0, "old exception", finding_ids=("f",), expires=dt.date(2026, 6, 1)),
        rule(1, "still fine", finding_ids=("g",), expires=dt.date(2026, 6, 2)),
    ]
    with caplog.at_level(logging.WARNING, logger="airflow_cloudmarker.tasks"):
        late_utc = "2026-06-01T23:30:00+00:00"  # already June 2 in Tokyo, still June 1 in New York
        assert [r.index for r in tasks._mutelist("a", rules, late_utc, "America/New_York").expired] == []
        assert [r.index for r in tasks._mutelist("a", rules, late_utc, "Asia/Tokyo").expired] == [0]
    (warning,) = caplog.messages
    assert warning == (
        "audit a: mutelist[0] (reason: old exception) expired on 2026-06-01 and mutes nothing now; "
        "extend its expires or remove it (test.yaml)"
    )


# -- what alerts get, and the counts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("com", "wanted", "held"),
    [
        ({"status": "new", "muted": True}, None, "muted"),
        ({"status": "resolved", "muted": True}, findings.STATUSES_OF_CHANGE, "muted"),
        ({"status": "open"}, findings.STATUSES_OF_CHANGE, "unchanged"),
        ({"status": "new"}, findings.STATUSES_OF_CHANGE, None),
    ],
)
def test_alerts_that_are_not_stores_get_no_muted_finding(com, wanted, held):
    skipped = {"unchanged": 0, "muted": 0}
    kept = tasks._passed_on([{"com": com}, {"com": {"status": "new"}}], wanted, skipped)
    assert kept == ([{"com": com}] if held is None else []) + [{"com": {"status": "new"}}]
    assert skipped == {"unchanged": held == "unchanged", "muted": held == "muted"}


def test_the_summary_counts_muted_findings_apart():
    counts = results.AuditResult(audit="a", state="success")
    results.count_manifest(
        counts,
        {
            "kind": "findings",
            "new": 4,
            "open": 1,
            "resolved": 2,
            "muted": {"new": 2, "open": 1, "resolved": 1},
            "expired_rules": ["mutelist[1] (reason: x) expired on 2020-01-01"],
        },
    )
    results.count_manifest(counts, {"kind": "findings", "new": 1, "resolved": 0})  # a manifest of before
    assert (counts.new, counts.resolved, counts.muted) == (3, 1, 4)
    assert counts.expired_rules == ["mutelist[1] (reason: x) expired on 2020-01-01"]
