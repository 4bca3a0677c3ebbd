"""SlackAlert without a Slack server: bad params name the param at construction.

The messages themselves, through the real slack_sdk client and a local Slack Web API, are in
tests/integration/test_alert_slack.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.alerts.slackalert import SlackAlert

TOKEN = "xoxb-unit-test-token"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bot_user_token": None}, "bot_user_token is not set"),
        ({"to": []}, "to must be a non-empty list"),
        ({"conn_id": "x"}, "either conn_id or bot_user_token"),
        ({"base_url": "slack.com"}, "base_url must be an http"),
    ],
)
def test_bad_params_name_the_param(params, message):
    with pytest.raises(ValueError, match=message):
        SlackAlert(**{"bot_user_token": TOKEN, "to": ["user1@example.com"], **params})
