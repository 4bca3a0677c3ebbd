"""Begin/end-of-audit emails end to end: config in, ``runner.run_now`` (what ``cloudmarker -n`` runs),
messages out of a real SMTP server (aiosmtpd); counted as the tutorial counts them."""

from __future__ import annotations

import json
import logging

import pytest
from servers import smtp as smtp_server
from servers.net import free_port

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner

logging.getLogger("mail.log").setLevel(logging.WARNING)


@pytest.fixture
def smtp():
    server, controller = smtp_server.start("disable", False, None)
    yield server
    controller.stop()


def email_yaml(server, port=None) -> str:
    return (
        "email:\n"
        "  from_addr: Cloudmarker <cloudmarker@example.com>\n"
        "  to_addrs:\n    - ops@example.com\n"
        "  subject: Cloudmarker Audit\n"
        f"  host: {server.host}\n  port: {port or server.port}\n  ssl_mode: disable\n"
    )


def write_config(home, text: str, out) -> list[str]:
    work = home.parent / "work"
    (work / "cloudmarker.yaml").write_text(f"plugins:\n  filestore:\n    params:\n      path: {out}\n" + text)
    return [str(work / "cloudmarker.yaml")]


def run(paths):
    return runner.run_now(config_mod.load_config(paths), paths)


def notifications(server) -> list[str]:
    return [m.message["Subject"] for m in server.messages if m.rcpt_tos == ["ops@example.com"]]


def text_of(server, subject: str) -> str:
    (message,) = [m.message for m in server.messages if m.message["Subject"] == subject]
    return message.get_body(preferencelist=("plain",)).get_content()


def test_one_audit_sends_four_emails_and_the_alert(airflow_db, home, tmp_path, smtp):
    alert = (
        "  emailalert:\n    plugin: cloudmarker.alerts.emailalert.EmailAlert\n    params:\n"
        "      from_addr: Cloudmarker <cloudmarker@example.com>\n      to_addrs: [sec@example.com]\n"
        f"      subject: Cloudmarker Alert\n      host: {smtp.host}\n      port: {smtp.port}\n      ssl_mode: disable\n"
        "audits:\n  mockaudit:\n    alerts:\n      - filestore\n      - emailalert\n"
    )
    paths = write_config(home, alert + email_yaml(smtp), tmp_path / "out")
    (result,) = run(paths)
    assert result.state == "success"

    assert notifications(smtp) == [
        "Cloudmarker Audit - all audits - begin",
        "Cloudmarker Audit - audit mockaudit - begin",
        "Cloudmarker Audit - audit mockaudit - end: success",
        "Cloudmarker Audit - all audits - end: success",
    ]
    end = text_of(smtp, "Cloudmarker Audit - audit mockaudit - end: success")
    for line in ("About: audit mockaudit", "Started: ", "Ended: ", "Duration: ", "State: success"):
        assert line in end
    assert "Records fetched: 10" in end and "Events found: 4" in end
    everything = text_of(smtp, "Cloudmarker Audit - all audits - end: success")
    assert "About: all audits (mockaudit)" in everything
    assert "Audit mockaudit: success; 10 records, 4 events" in everything

    (alert_message,) = [m.message for m in smtp.messages if m.rcpt_tos == ["sec@example.com"]]
    assert alert_message["Subject"] == "Cloudmarker Alert"
    (part,) = list(alert_message.iter_attachments())
    events = json.loads(part.get_content())
    assert [e["ext"]["data"] for e in events] == [0, 3, 6, 9]
    assert {e["com"]["target_key"] for e in events} == {"emailalert"}


def test_three_audits_send_eight_emails(airflow_db, home, tmp_path, smtp):
    audits = "".join(f"  audit{i}:\n    clouds: [mockcloud]\n    stores: [filestore]\n" for i in (1, 2, 3))
    paths = write_config(home, f"audits:\n{audits}run: [audit1, audit2, audit3]\n" + email_yaml(smtp), tmp_path / "o")
    results = run(paths)
    assert [r.state for r in results] == ["success"] * 3
    subjects = notifications(smtp)
    assert len(subjects) == 8
    assert subjects[0] == "Cloudmarker Audit - all audits - begin"
    assert subjects[-1] == "Cloudmarker Audit - all audits - end: success"
    for i in (1, 2, 3):
        assert subjects.count(f"Cloudmarker Audit - audit audit{i} - begin") == 1
        assert subjects.count(f"Cloudmarker Audit - audit audit{i} - end: success") == 1


def test_a_failing_audit_says_failed(airflow_db, home, tmp_path, smtp):
    config = (
        "  brokencloud:\n    plugin: cm_test_plugins.FailingCloud\n"
        "audits:\n  brokenaudit:\n    clouds: [brokencloud]\n    stores: [filestore]\nrun: [brokenaudit]\n"
    )
    (result,) = run(write_config(home, config + email_yaml(smtp), tmp_path / "out"))
    assert result.state == "failed"
    assert notifications(smtp) == [
        "Cloudmarker Audit - all audits - begin",
        "Cloudmarker Audit - audit brokenaudit - begin",
        "Cloudmarker Audit - audit brokenaudit - end: failed",
        "Cloudmarker Audit - all audits - end: failed",
    ]
    end = text_of(smtp, "Cloudmarker Audit - audit brokenaudit - end: failed")
    assert "State: failed" in end and "Failed tasks: fetch_brokencloud" in end
    assert "Audit brokenaudit: failed" in text_of(smtp, "Cloudmarker Audit - all audits - end: failed")


def test_an_unreachable_mail_server_never_fails_the_audit(airflow_db, home, tmp_path, smtp):
    down = free_port()
    log_file = tmp_path / "cloudmarker.log"
    logger = f"logger:\n  handlers:\n    file:\n      filename: {log_file}\n"
    (result,) = run(write_config(home, logger + email_yaml(smtp, port=down), tmp_path / "out"))
    assert result.state == "success" and result.records == 10
    assert (tmp_path / "out" / "mockaudit_mockcloud.json").exists()
    assert smtp.messages == []
    errors = [line for line in log_file.read_text().splitlines() if "ERROR airflow_cloudmarker.notify" in line]
    for what in ("begin (all audits)", "begin (mockaudit)", "end (mockaudit)", "end (all audits)"):
        assert any(f"The {what} email could not be sent" in e and f"127.0.0.1:{down}" in e for e in errors), what
