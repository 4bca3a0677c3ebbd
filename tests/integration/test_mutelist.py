"""The mutelist end to end: one ``cloudmarker -n`` run as a new user (fresh HOME), a real SMTP server (aiosmtpd)
for the email alert and the end-of-audit emails. Matching and validation are in tests/unit/test_mutelist.py.
"""

from __future__ import annotations

import json
import logging

import pytest
from servers import smtp as smtp_server
from support.cli import run_cli_as_user, user_config

logging.getLogger("mail.log").setLevel(logging.WARNING)

REASON = "Mock records 3 and 6 are accepted (SEC-1234)"
OLD_REASON = "An exception that ended (SEC-1)"


@pytest.fixture
def smtp():
    server, controller = smtp_server.start("disable", False, None)
    yield server
    controller.stop()


def mail_params(server, to: str, subject: str, indent: str) -> str:
    return "".join(
        f"{indent}{line}\n"
        for line in (
            "from_addr: Cloudmarker <cloudmarker@example.com>",
            f"to_addrs: [{to}]",
            f"subject: {subject}",
            f"host: {server.host}",
            f"port: {server.port}",
            "ssl_mode: disable",
        )
    )


def config_text(server) -> str:
    audit = "    clouds: [mockcloud]\n    events: [mockevent]\n    alerts: [filestore, emailalert]\n"
    return (
        "plugins:\n  emailalert:\n    plugin: cloudmarker.alerts.emailalert.EmailAlert\n    params:\n"
        + mail_params(server, "sec@example.com", "Cloudmarker Alert", "      ")
        + f"audits:\n  muteaudit:\n{audit}  expiredaudit:\n{audit}"
        + "run: [muteaudit, expiredaudit]\n"
        + "email:\n"
        + mail_params(server, "ops@example.com", "Cloudmarker Audit", "  ")
        + f"mutelist:\n  - reason: {REASON}\n    audits: [muteaudit]\n    references: ['3', '6']\n"
        + "    expires: 2099-12-31\n"
        + f"  - reason: {OLD_REASON}\n    audits: [expiredaudit]\n    events: [mockevent]\n"
        + "    expires: 2020-01-01\n"
    )


def alerted(server, audit: str) -> list[dict]:
    """The events of ``audit`` the email alert sent (its JSON attachment)."""
    found = []
    for message in (m.message for m in server.messages if m.rcpt_tos == ["sec@example.com"]):
        for part in message.iter_attachments():
            events = json.loads(part.get_content())
            if events and events[0]["com"]["audit_key"] == audit:
                found.append(events)
    (events,) = found
    return events


def end_email(server, audit: str) -> str:
    subject = f"Cloudmarker Audit - audit {audit} - end: success"
    (message,) = [m.message for m in server.messages if m.message["Subject"] == subject]
    return message.get_body(preferencelist=("plain",)).get_content()


def summary_rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout[stdout.index("Cloudmarker summary") :].splitlines()
    header = lines[1].split()
    return {
        line.split()[0]: dict(zip(header, line.split(), strict=True))
        for line in lines[2:]
        if line and not line[0].isspace()
    }


def test_muted_findings_are_stored_not_alerted_and_counted_apart(user_home, tmp_path, smtp):
    out = user_config(user_home, tmp_path, config_text(smtp))
    result = run_cli_as_user("-n", home=user_home)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-4000:]

    # The store (FileStore as an alert keeps every event) gets all 4 findings, 3 and 6 muted.
    stored = json.loads((out / "muteaudit_mockevent.json").read_text())
    assert sorted(e["com"]["reference"] for e in stored) == ["0", "3", "6", "9"]
    muted = {e["com"]["reference"]: e["com"] for e in stored if e["com"].get("muted")}
    assert sorted(muted) == ["3", "6"]
    assert muted["3"]["mute_reason"] == REASON and muted["3"]["mute_expires"] == "2099-12-31"
    assert {c["status"] for c in muted.values()} == {"new"} and all(len(c["finding_id"]) == 32 for c in muted.values())

    # The email alert (not a store) gets only the 2 unmuted ones.
    assert sorted(e["com"]["reference"] for e in alerted(smtp, "muteaudit")) == ["0", "9"]

    # The expired rule mutes nothing, says so once, and the end email and the summary list it.
    expired_stored = json.loads((out / "expiredaudit_mockevent.json").read_text())
    assert [e["com"].get("muted") for e in expired_stored] == [None] * 4
    assert sorted(e["com"]["reference"] for e in alerted(smtp, "expiredaudit")) == ["0", "3", "6", "9"]
    warning = (
        f"audit expiredaudit: mutelist[1] (reason: {OLD_REASON}) expired on 2020-01-01 and mutes nothing now; "
        f"extend its expires or remove it ({user_home / 'cloudmarker.yaml'})"
    )
    log_text = (tmp_path / "cloudmarker.log").read_text()
    assert log_text.count(warning) == 1, log_text[-3000:]
    assert "muteaudit: mutelist" not in log_text  # the live rule of the other audit is no warning

    rows = summary_rows(result.stdout)
    assert (rows["muteaudit"]["new"], rows["muteaudit"]["muted"]) == ("2", "2"), result.stdout
    assert (rows["expiredaudit"]["new"], rows["expiredaudit"]["muted"]) == ("4", "0"), result.stdout
    assert f"mutelist[1] (reason: {OLD_REASON}) expired on 2020-01-01; it mutes nothing" in result.stdout

    mute_end = end_email(smtp, "muteaudit")
    assert "New findings: 2" in mute_end and "Muted findings: 2" in mute_end
    assert "Expired mutelist rules" not in mute_end
    expired_end = end_email(smtp, "expiredaudit")
    assert "Muted findings: 0" in expired_end
    assert f"Expired mutelist rules (muting nothing): mutelist[1] (reason: {OLD_REASON}) expired on 2020-01-01" in (
        expired_end
    )


def test_a_wrong_rule_stops_the_run_with_one_line(user_home, tmp_path):
    user_config(user_home, tmp_path, "mutelist:\n  - reason: Too wide\n    expires: 2027-03-31\n")
    result = run_cli_as_user("-n", home=user_home)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert (
        f"{user_home / 'cloudmarker.yaml'}: mutelist[0] (reason: Too wide): no condition, so it would mute every "
        "finding; give at least one of audits, events, record_types, references, finding_ids"
    ) in result.stderr
