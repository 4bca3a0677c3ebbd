"""`schedule: "HH:MM"`: every day at that local time, as Airflow's scheduler computes the next run.

Pure: the config is loaded and the DAG built in memory (no metadata DB, no scheduler); the next
run times come from the DAG's own timetable, the same call the scheduler makes.
"""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import factory


def load(tmp_path, text: str):
    path = tmp_path / "cloudmarker.yaml"
    path.write_text(text)
    return config_mod.load_config([str(path)])


def dag_of(config, key="mockaudit"):
    return factory.build_dags(config, [key])[key]


def next_after(dag, last_run: dt.datetime) -> pendulum.DateTime:
    """The daily cadence: the run the timetable gives after an automated run at ``last_run``.

    With ``catchup=False`` the scheduler also never goes back before the most recent tick of
    *now*; ``catchup=True`` here isolates the cadence from today's date.
    """
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(last_run, last_run),
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    return info.run_after


def utc(*args) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


def test_named_timezone_runs_daily_at_that_wall_clock_time(tmp_path):
    dag = dag_of(load(tmp_path, 'schedule: "06:30"\ntimezone: Asia/Kolkata\n'))
    assert dag.timetable.summary == "30 6 * * *"
    # 06:30 in Kolkata is 01:00 UTC; the run after one is the next day's.
    assert next_after(dag, utc(2025, 3, 10, 1, 0)) == utc(2025, 3, 11, 1, 0)


def test_local_time_follows_daylight_saving_time(tmp_path):
    dag = dag_of(load(tmp_path, 'schedule: "00:00"\ntimezone: Europe/Paris\n'))
    # Midnight in Paris is 23:00 UTC in winter and 22:00 UTC after the switch on 30 March 2025.
    assert next_after(dag, utc(2025, 3, 28, 23, 0)) == utc(2025, 3, 29, 23, 0)
    assert next_after(dag, utc(2025, 3, 29, 23, 0)) == utc(2025, 3, 30, 22, 0)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_without_timezone_the_machines_zone_is_used(tmp_path, zone):
    with pendulum.tz.test_local_timezone(pendulum.timezone(zone)):
        dag = dag_of(load(tmp_path, 'schedule: "23:15"\n'))
    expected = pendulum.datetime(2025, 6, 2, 23, 15, tz=zone).in_tz("UTC")
    assert next_after(dag, pendulum.datetime(2025, 6, 1, 23, 15, tz=zone)) == expected


def test_first_run_is_at_the_schedule_time_and_within_a_day(tmp_path):
    dag = dag_of(load(tmp_path, 'schedule: "07:45"\ntimezone: Europe/Berlin\n'))
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup),
    )
    local = info.run_after.in_tz("Europe/Berlin")
    assert (local.hour, local.minute) == (7, 45)
    now = pendulum.now("UTC")
    # No start date: a new deployment waits for the next HH:MM instead of running a past one at once.
    assert dag.start_date is None
    assert now < info.run_after <= now + dt.timedelta(days=1)
    assert dag.catchup is False  # a stopped service does not replay the days it missed


def test_audits_outside_run_have_no_schedule(tmp_path):
    config = load(
        tmp_path,
        'audits:\n  other:\n    clouds: [mockcloud]\n    stores: [filestore]\nrun: [mockaudit]\nschedule: "01:00"\n',
    )
    assert type(dag_of(config, "other").timetable).__name__ == "NullTimetable"
    assert dag_of(config, "mockaudit").timetable.summary == "0 1 * * *"
