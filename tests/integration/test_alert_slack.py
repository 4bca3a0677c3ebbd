"""SlackAlert with the real slack_sdk client against a local Slack Web API server (tests/servers/slack.py)."""

from __future__ import annotations

import json

import pytest
from servers.slack import TOKEN, SlackServer

from airflow_cloudmarker.alerts.slackalert import SlackAlert
from airflow_cloudmarker.events.mockevent import MockEvent

USERS = {"user1@example.com": "U001", "user2@example.com": "U002", "user3@example.com": "U003"}


@pytest.fixture
def slack():
    with SlackServer(USERS) as server:
        yield server


def mock_events(count: int = 10) -> list[dict]:
    plugin = MockEvent(n=3)
    events = []
    for i in range(count):
        for event in plugin.eval({"raw": {"data": i}, "ext": {"record_type": "apple"}, "com": {}}):
            event["com"]["audit_key"] = "mockaudit"
            events.append(event)
    return events


def send(alert: SlackAlert, events: list[dict]) -> None:
    for event in events:
        alert.write(event)
    alert.done()


def test_each_recipient_gets_a_dm_with_summary_and_json_file(slack):
    events = mock_events()
    alert = SlackAlert(
        bot_user_token=TOKEN,
        to=["user1@example.com", "user2@example.com"],
        text="Attention - Cloudmarker Alert",
        base_url=slack.base_url,
    )
    send(alert, events)
    assert [m["channel"] for m in slack.state.messages] == ["DU001", "DU002"]
    text = slack.state.messages[0]["text"]
    assert text.startswith("Attention - Cloudmarker Alert\n4 events: 4 mock_event (audit mockaudit)")
    assert "9 is a multiple of 3." in text
    assert [f["channel"] for f in slack.state.files] == ["DU001", "DU002"]
    upload = slack.state.files[0]
    assert upload["filename"] == "cloudmarker_events.json"
    assert json.loads(upload["content"]) == events and upload["length"] == len(upload["content"].encode())


def test_unknown_and_rate_limited_recipients_do_not_stop_the_others(slack):
    slack.state.rate_limited = {"user2@example.com": 1, "user3@example.com": -1}
    alert = SlackAlert(
        bot_user_token=TOKEN,
        to=["nobody@example.com", "user1@example.com", "user2@example.com", "user3@example.com"],
        base_url=slack.base_url,
    )
    with pytest.raises(RuntimeError) as info:
        send(alert, mock_events())
    message = str(info.value)
    assert "2 of 4 recipients did not get the alert (2 did)" in message
    assert "nobody@example.com (users.lookupByEmail: users_not_found)" in message
    assert "user3@example.com (users.lookupByEmail: ratelimited)" in message
    assert "user1@example.com (" not in message and "user2@example.com (" not in message
    # user2 was rate limited once, retried after Retry-After, and got it; user1 too.
    assert [m["channel"] for m in slack.state.messages] == ["DU001", "DU002"]
    assert len(slack.state.files) == 2
    assert slack.state.calls.count("users.lookupByEmail") == 1 + 1 + 2 + 3  # user3: first try + 2 retries


def test_connection_id_carries_token_and_base_url(slack, monkeypatch):
    conn = {"conn_type": "slack", "password": TOKEN, "extra": {"base_url": slack.base_url}}
    monkeypatch.setenv("AIRFLOW_CONN_CM_SLACK", json.dumps(conn))
    send(SlackAlert(conn_id="cm_slack", to="user3@example.com"), mock_events(4))
    assert [m["channel"] for m in slack.state.messages] == ["DU003"]
    assert "2 events: 2 mock_event" in slack.state.messages[0]["text"]


def test_wrong_token_fails_naming_every_recipient_but_not_the_token(slack):
    alert = SlackAlert(bot_user_token="xoxb-wrong", to=["user1@example.com"], base_url=slack.base_url)
    with pytest.raises(RuntimeError, match=r"user1@example.com \(users.lookupByEmail: invalid_auth\)") as info:
        send(alert, mock_events())
    assert "xoxb-wrong" not in str(info.value)


def test_no_events_no_message_unless_send_empty(slack):
    SlackAlert(bot_user_token=TOKEN, to=["user1@example.com"], base_url=slack.base_url).done()
    assert slack.state.calls == []
    SlackAlert(bot_user_token=TOKEN, to=["user1@example.com"], base_url=slack.base_url, send_empty=True).done()
    assert [m["text"] for m in slack.state.messages] == ["Cloudmarker Alert\nNo events."]
    assert slack.state.files == []
