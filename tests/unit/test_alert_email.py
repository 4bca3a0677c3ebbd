"""EmailAlert without a mail server: its params are checked at construction, and the summary it sends.

The mails themselves, through a real SMTP server, are in tests/integration/test_alert_email.py.
"""

from __future__ import annotations

import pytest

from airflow_cloudmarker.alerts import _summary
from airflow_cloudmarker.alerts.emailalert import EmailAlert


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ssl_mode": "tls"}, "ssl_mode must be one of ssl, starttls, disable"),
        ({"host": ""}, "host is not set"),
        ({"to_addrs": []}, "to_addrs must be a non-empty list"),
        ({"to_addrs": ["nobody"]}, "'nobody' is not an email address"),
        ({"port": "25"}, "port must be an integer"),
        ({"from_addr": None}, "from_addr must be a sender address"),
        ({"conn_id": "cm_smtp"}, "give either conn_id or host"),
        ({"send_empty": "yes"}, "send_empty must be true or false"),
    ],
)
def test_bad_params_name_the_param_and_the_fix(params, message):
    good = {"from_addr": "a@example.com", "to_addrs": ["b@example.com"], "host": "smtp.example.com"}
    with pytest.raises(ValueError, match=message):
        EmailAlert(**{**good, **params})


def test_summary_counts_per_event_type_most_frequent_first():
    events = [{"com": {"record_type": t}} for t in ("b_event", "a_event", "b_event", "c_event", "a_event", "b_event")]
    assert _summary.counts_by_type(events) == {"b_event": 3, "a_event": 2, "c_event": 1}
    assert _summary.summary_line(events) == "6 events: 3 b_event, 2 a_event, 1 c_event"
    html = _summary.render_html("t", [{"com": {"record_type": "x", "description": "<script>"}}])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_messages_name_each_events_check_with_its_controls():
    """Emails read the check metadata the event names: title, id, severity and CIS controls."""
    from airflow_cloudmarker.events.firewallruleevent import FirewallRuleEvent

    rule = {
        "ext": {"cloud_type": "azure", "record_type": "security_rule"},
        "com": {
            "cloud_type": "azure",
            "record_type": "firewall_rule",
            "reference": "nsg/ssh",
            "enabled": True,
            "direction": "in",
            "access": "allow",
            "protocol": "tcp",
            "source_addresses": ["0.0.0.0/0"],
            "destination_ports": ["22"],
        },
    }
    (event,) = FirewallRuleEvent().eval(rule)
    text = _summary.render_text("t", [event])
    assert (
        f"Check: {event['com']['title']} ({event['com']['check_id']}, severity high; controls: "
        "CIS Microsoft Azure Foundations 6.0.0: 7.2; CIS Google Cloud Platform Foundation 5.0.0: 3.6; "
        "CIS Amazon Web Services Foundations 7.0.0: 6.3, 6.4)"
    ) in text
    assert "controls: CIS Microsoft Azure Foundations 6.0.0: 7.2" in _summary.render_html("t", [event])
    assert "Check:" not in _summary.render_text("t", [{"com": {"record_type": "x", "description": "d"}}])


def test_emailalert_annotations_take_what_the_constructor_accepts():
    """The config check uses these annotations: they must allow what EmailAlert itself accepts."""
    from airflow_cloudmarker import plugins

    accepted = {"username": None, "password": None, "debug": True, "from_addr": "a@example.com", "to_addrs": "b@x.org"}
    EmailAlert(host="smtp.example.com", **accepted)
    assert plugins.check_param_types(EmailAlert, accepted) == []
    assert plugins.check_param_types(EmailAlert, {"port": "25"})  # and still refuse what it refuses
