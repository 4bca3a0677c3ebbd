"""Benchmark: the findings task's matching with a 1,000-rule mutelist against 300,000 events, vs no rules.

It times ``findings.track`` (finding ids, statuses, the state snapshot written to a local
folder, and the mute of each finding) over the same events three ways: no mutelist, and a
mutelist of 1,000 rules mixing finding ids, exact references and reference globs (some with an
``events`` or ``record_types`` condition, some expired). The events are built before the clock
starts; each configuration runs ``--repeat`` times on a fresh state and the best time counts.
Target: the rules add at most 20% to the time without rules. It also times ``Mutelist.match``
alone per finding, and checks the compiled matching against a plain loop over the rules.

    python bench/bench_mutelist.py [--events N] [--rules N] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airflow_cloudmarker import findings  # noqa: E402
from airflow_cloudmarker.config import MuteRule  # noqa: E402

TODAY = dt.date(2026, 6, 1)
EVENT_KEYS = ("firewallruleevent", "azvmosdiskencryptionevent")
RECORD_TYPES = {"firewallruleevent": "firewall_rule_event", "azvmosdiskencryptionevent": "vm_os_disk_encryption_event"}


def reference(i: int) -> str:
    """An Azure-like resource id: 40 subscriptions, 500 resource groups, one resource per event."""
    return (
        f"/subscriptions/sub-{i % 40:04d}/resourceGroups/rg-{i % 500:03d}/providers/"
        f"Microsoft.Network/networkSecurityGroups/nsg-{i}"
    )


def make_events(count: int) -> list[dict]:
    events = []
    for i in range(count):
        key = EVENT_KEYS[i % 7 == 0]
        events.append(
            {
                "ext": {"record_type": RECORD_TYPES[key], "n": i},
                "com": {
                    "cloud_type": "azure",
                    "record_type": RECORD_TYPES[key],
                    "reference": reference(i),
                    "finding_key": "22",
                    "description": f"port 22 open on nsg-{i}",
                    "severity": "high",
                    "cloud_key": "myazcloud",
                    "origin_key": key,
                },
            }
        )
    return events


def make_rules(count: int, events: list[dict]) -> list[MuteRule]:
    """``count`` rules: 40% finding ids, 30% exact references, 30% globs; a few expired; ~5% of events muted."""
    rnd = random.Random(7)
    rules = []
    n_ids, n_refs = count * 4 // 10, count * 3 // 10
    for index in range(count):
        expires = TODAY - dt.timedelta(days=1) if index % 50 == 0 else dt.date(2027, 3, 31)
        conditions: dict = {}
        if index < n_ids:  # a few ids each, most of them of real findings
            picks = [rnd.randrange(len(events)) for _ in range(3)]
            ids = [findings.finding_id(events[p]) for p in picks]
            conditions["finding_ids"] = (*ids, f"{index:032x}")
        elif index < n_ids + n_refs:
            i = rnd.randrange(len(events) * 2)  # half of them name no resource of this run
            conditions["references"] = (reference(i),)
            if index % 3 == 0:
                conditions["events"] = ("firewallruleevent",)
        else:
            # Resource groups rg-000..rg-499 exist; globs name rg-000..rg-099 (for 1/5 of these rules)
            # and groups that do not exist, over every subscription or one of them.
            group = index % 100 if index % 5 == 0 else 1000 + index
            sub = "*" if index % 2 else f"sub-{index % 40:04d}"
            conditions["references"] = (f"/subscriptions/{sub}/resourceGroups/rg-{group:03d}/*",)
            if index % 4 == 0:
                conditions["record_types"] = ("firewall_rule_event",)
            if index % 8 == 1:
                conditions["events"] = ("firewallruleevent",)
        rules.append(MuteRule(index, f"accepted risk {index}", "bench", expires=expires, **conditions))
    return rules


def naive_match(rules: list[MuteRule], fid: str, event_key: str, record_type: str, ref: str) -> MuteRule | None:
    """The first live rule whose every given condition matches, by a plain loop (the reference result)."""
    for rule in rules:
        if rule.expired(TODAY):
            continue
        if rule.finding_ids and fid not in rule.finding_ids:
            continue
        if rule.events and event_key not in rule.events:
            continue
        if rule.record_types and record_type not in rule.record_types:
            continue
        if rule.references and not any(fnmatch.fnmatchcase(ref, p) for p in rule.references):
            continue
        return rule
    return None


def run_track(events: list[dict], mutes: findings.Mutelist | None) -> tuple[float, findings.Outcome]:
    with tempfile.TemporaryDirectory(prefix="cm-bench-mutelist-") as folder:
        store = findings.StateStore(f"file://{folder}", "benchaudit")
        gc.collect()
        started = time.perf_counter()
        emitted = []
        outcome = findings.track(
            store, "run1", "2026-06-01T00:00:00+00:00", events, findings.Scope(), emitted.append, mutes
        )
        return time.perf_counter() - started, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    template = make_events(args.events)
    rules = make_rules(args.rules, template)
    started = time.perf_counter()
    mutes = findings.Mutelist(rules, TODAY)
    compile_s = time.perf_counter() - started
    expired = len(mutes.expired)
    print(f"{args.events:,} events, {args.rules:,} rules ({expired} expired); compiled in {compile_s * 1000:.1f} ms")

    # The compiled matching gives the plain loop's answer (on a sample: the loop is slow).
    sample = template[:: max(1, args.events // 3000)]
    for event in sample:
        com = event["com"]
        fid = findings.finding_id(event)
        expected = naive_match(rules, fid, com["origin_key"], com["record_type"], com["reference"])
        got = mutes.match(fid, com["origin_key"], com["record_type"], com["reference"])
        assert got == expected, (com["reference"], got, expected)
    print(f"compiled matching = plain loop on {len(sample):,} sampled events")

    keys = [
        (findings.finding_id(e), e["com"]["origin_key"], e["com"]["record_type"], e["com"]["reference"])
        for e in template
    ]
    started = time.perf_counter()
    matched = sum(1 for key in keys if mutes.match(*key) is not None)
    per_event = (time.perf_counter() - started) / len(keys)
    print(f"Mutelist.match alone: {per_event * 1e6:.2f} us per finding; {matched:,} of {len(keys):,} events muted")

    timings: dict[str, list[float]] = {"no rules": [], f"{args.rules} rules": []}
    outcomes = {}
    for _ in range(args.repeat):
        for label, mutelist in (("no rules", None), (f"{args.rules} rules", mutes)):
            events = [{"ext": dict(e["ext"]), "com": dict(e["com"])} for e in template]  # not timed
            seconds, outcome = run_track(events, mutelist)
            timings[label].append(seconds)
            outcomes[label] = outcome
            del events
    base, muted = (min(t) for t in timings.values())
    for label, values in timings.items():
        print(f"findings.track, {label:>10}: best {min(values):.2f} s of {', '.join(f'{v:.2f}' for v in values)}")
    print(f"muted findings: {sum(outcomes[f'{args.rules} rules'].muted.values()):,}")
    growth = (muted - base) / base * 100
    print(f"growth with {args.rules} rules: {growth:+.1f}% (target <= 20%)")
    return 0 if growth <= 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
