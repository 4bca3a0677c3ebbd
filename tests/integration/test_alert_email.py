"""EmailAlert against a real SMTP server (aiosmtpd) in all three modes, with and without AUTH."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from servers import smtp as smtp_server
from servers.net import free_port

from airflow_cloudmarker.alerts.emailalert import EmailAlert
from airflow_cloudmarker.events.mockevent import MockEvent

logging.getLogger("mail.log").setLevel(logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    return smtp_server.TlsMaterial(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust(tls, monkeypatch):
    """Trust the throwaway CA the way any client using ssl.create_default_context() would."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    return tls


@pytest.fixture
def smtp(request, trust):
    mode, auth = request.param
    server, controller = smtp_server.start(mode, auth, trust)
    yield server
    controller.stop()


def mock_events(count: int = 10, n: int = 3) -> list[dict]:
    """Events produced by the real MockEvent plugin, stamped as the framework stamps them."""
    plugin = MockEvent(n=n)
    events = []
    for i in range(count):
        for event in plugin.eval({"raw": {"data": i}, "ext": {"record_type": "apple"}, "com": {}}):
            event["com"].update(audit_key="mockaudit", origin_worker="mockaudit_mockevent")
            events.append(event)
    return events


def body(message, subtype: str) -> str:
    return message.get_body(preferencelist=(subtype,)).get_content()


def attachment(message) -> tuple[str, bytes]:
    (part,) = list(message.iter_attachments())
    return part.get_filename(), part.get_content()


MODES = [(mode, auth) for mode in ("ssl", "starttls", "disable") for auth in (False, True)]


@pytest.mark.parametrize("smtp", MODES, indirect=True, ids=[f"{m}-{'auth' if a else 'noauth'}" for m, a in MODES])
def test_one_email_per_run_with_text_html_and_json(smtp):
    events = mock_events()
    alert = EmailAlert(**smtp.params(subject="Cloudmarker Alert"))
    for event in events:
        alert.write(event)
    assert smtp.messages == []  # nothing is sent before done()
    alert.done()

    assert len(smtp.messages) == 1
    received = smtp.messages[0]
    assert received.mail_from == "cloudmarker@example.com"
    assert received.rcpt_tos == ["user1@example.com", "user2@example.com"]
    message = received.message
    assert message["Subject"] == "Cloudmarker Alert"
    assert message["From"] == "Cloudmarker <cloudmarker@example.com>"
    text = body(message, "plain")
    assert "4 events: 4 mock_event" in text
    assert "9 is a multiple of 3." in text and "Divide 9 by 3 and confirm that the remainder is 0." in text
    html = body(message, "html")
    assert "<b>4 events: 4 mock_event</b>" in html and "Divide 6 by 3" in html
    name, data = attachment(message)
    assert name == "cloudmarker_events.json"
    assert json.loads(data) == events
    assert smtp.logins == (["PLAIN:cmuser:ok"] if smtp.auth else [])


@pytest.mark.parametrize("smtp", [("disable", False)], indirect=True)
def test_no_events_no_email_unless_send_empty(smtp):
    EmailAlert(**smtp.params()).done()
    assert smtp.messages == []
    EmailAlert(**smtp.params(send_empty=True, subject="Nothing found")).done()
    assert len(smtp.messages) == 1
    message = smtp.messages[0].message
    assert message["Subject"] == "Nothing found"
    assert "No events." in body(message, "plain")
    assert list(message.iter_attachments()) == []


@pytest.mark.parametrize("smtp", [("starttls", True)], indirect=True)
def test_wrong_password_fails_clearly_without_the_password(smtp, caplog):
    alert = EmailAlert(**smtp.params(password="not-the-password"))
    alert.write(mock_events()[0])
    with pytest.raises(RuntimeError) as info:
        alert.done()
    assert (
        "login" in str(info.value) and "refused" in str(info.value) and "check username and password" in str(info.value)
    )
    assert "not-the-password" not in str(info.value) + caplog.text
    assert smtp.messages == []


def test_untrusted_certificate_is_refused(tls, monkeypatch, tmp_path):
    """The TLS certificate is really verified: without the test CA the client refuses the server."""
    server, controller = smtp_server.start("ssl", False, tls)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "empty.pem"))
        (tmp_path / "empty.pem").write_text("")
        alert = EmailAlert(**server.params())
        alert.write(mock_events()[0])
        with pytest.raises(RuntimeError, match="CERTIFICATE_VERIFY_FAILED"):
            alert.done()
        assert server.messages == []
    finally:
        controller.stop()


def test_server_down_names_the_server():
    port = free_port()
    alert = EmailAlert(from_addr="a@example.com", to_addrs=["b@example.com"], host="127.0.0.1", port=port)
    alert.write(mock_events()[0])
    with pytest.raises(RuntimeError, match=rf"127\.0\.0\.1:{port} \(ssl\).*ConnectionRefusedError"):
        alert.done()


@pytest.mark.parametrize("smtp", [("starttls", True)], indirect=True)
def test_airflow_connection_id(smtp, monkeypatch):
    """``conn_id``: server, login and sender come from an Airflow SMTP connection."""
    conn = {
        "conn_type": "smtp",
        "host": smtp.host,
        "port": smtp.port,
        "login": smtp_server.USERNAME,
        "password": smtp_server.PASSWORD,
        "extra": {"disable_ssl": True, "from_email": "Alerts <alerts@example.com>", "retry_limit": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CM_SMTP", json.dumps(conn))
    alert = EmailAlert(to_addrs="sec@example.com", conn_id="cm_smtp")
    alert.write(mock_events()[0])
    alert.done()
    (received,) = smtp.messages
    assert received.mail_from == "alerts@example.com" and received.rcpt_tos == ["sec@example.com"]
    assert smtp.logins == ["PLAIN:cmuser:ok"]


def test_unknown_connection_id_is_named():
    alert = EmailAlert(to_addrs=["b@example.com"], conn_id="no_such_smtp_conn")
    alert.write(mock_events()[0])
    with pytest.raises(RuntimeError, match="no_such_smtp_conn"):
        alert.done()


def login_only_server(tls) -> tuple[smtp_server.SmtpServer, Controller]:
    """The STARTTLS server of smtp_server with AUTH LOGIN only, so smtplib sends the password on a line of its own."""
    server = smtp_server.SmtpServer("127.0.0.1", free_port(), "starttls", True)

    def authenticator(smtp, session, envelope, mechanism, auth_data):
        ok = auth_data.login == smtp_server.USERNAME.encode() and auth_data.password == smtp_server.PASSWORD.encode()
        server.logins.append(f"{mechanism}:{auth_data.login.decode()}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        smtp_server._Handler(server),
        hostname=server.host,
        port=server.port,
        ready_timeout=5,
        authenticator=authenticator,
        auth_required=True,
        auth_exclude_mechanism=["PLAIN"],
        tls_context=tls.server_context(),
        require_starttls=True,
    )
    controller.start()
    return server, controller


def secret_forms() -> list[str]:
    """The password as smtplib's debug output would show it: plain, and base64 for AUTH LOGIN and AUTH PLAIN."""
    user, password = smtp_server.USERNAME, smtp_server.PASSWORD
    return [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
        base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode(),
    ]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("debug", [1, 2])
def test_smtp_debug_output_masks_the_auth_line(trust, capfd, caplog, mechanism, debug):
    """smtplib's debug output prints what the client sends, AUTH included: none of the password's forms may show."""
    if mechanism == "PLAIN":
        server, controller = smtp_server.start("starttls", True, trust)
    else:
        server, controller = login_only_server(trust)
    try:
        caplog.set_level(logging.INFO, logger="airflow_cloudmarker")
        alert = EmailAlert(**server.params(debug=debug))
        alert.write(mock_events()[0])
        alert.done()
    finally:
        controller.stop()
    assert server.logins == [f"{mechanism}:cmuser:ok"] and len(server.messages) == 1
    captured = capfd.readouterr()
    shown = captured.out + captured.err + caplog.text
    assert "send:" in shown and "reply:" in shown, shown[-2000:]  # debug output is really on
    for form in secret_forms():
        assert form not in shown, f"{form!r} appeared in the SMTP debug output"
    assert f"AUTH {mechanism} ***" in shown, shown[-3000:]


@pytest.mark.parametrize("smtp", [("starttls", True)], indirect=True)
def test_smtp_debug_output_masks_the_auth_line_of_a_connection(smtp, monkeypatch, capfd, caplog):
    """With ``conn_id`` the password comes from an Airflow connection: masked the same way."""
    conn = {
        "conn_type": "smtp",
        "host": smtp.host,
        "port": smtp.port,
        "login": smtp_server.USERNAME,
        "password": smtp_server.PASSWORD,
        "extra": {"disable_ssl": True, "from_email": "alerts@example.com", "retry_limit": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CM_SMTP_DEBUG", json.dumps(conn))
    caplog.set_level(logging.INFO, logger="airflow_cloudmarker")
    alert = EmailAlert(to_addrs="sec@example.com", conn_id="cm_smtp_debug", debug=True)
    alert.write(mock_events()[0])
    alert.done()
    assert smtp.logins == ["PLAIN:cmuser:ok"]
    captured = capfd.readouterr()
    shown = captured.out + captured.err + caplog.text
    assert "AUTH PLAIN ***" in shown
    for form in secret_forms():
        assert form not in shown


def oauth2_server() -> tuple[smtp_server.SmtpServer, Controller]:
    """A plain server that takes AUTH XOAUTH2 only; ``logins`` records the user and token it received."""
    server = smtp_server.SmtpServer("127.0.0.1", free_port(), "disable", True)

    class Handler(smtp_server._Handler):
        async def auth_XOAUTH2(self, smtp, args):
            fields = dict(part.split("=", 1) for part in base64.b64decode(args[1]).decode().split("\x01") if part)
            self.server.logins.append(f"XOAUTH2:{fields.get('user')}:{fields.get('auth')}")
            return AuthResult(success=fields.get("auth") == "Bearer tok-123", handled=False)

    controller = Controller(
        Handler(server),
        hostname=server.host,
        port=server.port,
        ready_timeout=5,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    return server, controller


def test_oauth2_connection_authenticates_with_its_access_token(monkeypatch):
    """``auth_type: oauth2`` in the connection's extras (the smtp provider's format): AUTH XOAUTH2 with its token."""
    server, controller = oauth2_server()
    try:
        conn = {
            "conn_type": "smtp",
            "host": server.host,
            "port": server.port,
            "login": "alerts@example.com",
            "extra": {
                "disable_ssl": True,
                "disable_tls": True,
                "from_email": "alerts@example.com",
                "auth_type": "oauth2",
                "access_token": "tok-123",
                "retry_limit": 0,
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_CM_SMTP_OAUTH", json.dumps(conn))
        alert = EmailAlert(to_addrs="sec@example.com", conn_id="cm_smtp_oauth")
        alert.write(mock_events()[0])
        alert.done()
    finally:
        controller.stop()
    assert server.logins == ["XOAUTH2:alerts@example.com:Bearer tok-123"]
    assert len(server.messages) == 1


def test_connection_with_both_tls_modes_on_says_which_extra_to_set(trust, monkeypatch):
    """A connection without extras means implicit TLS *and* STARTTLS (provider defaults): the error names the fix."""
    server, controller = smtp_server.start("ssl", False, trust)
    try:
        conn = {"conn_type": "smtp", "host": server.host, "port": server.port, "extra": {"from_email": "a@example.com"}}
        monkeypatch.setenv("AIRFLOW_CONN_CM_SMTP_BOTH", json.dumps(conn))
        alert = EmailAlert(to_addrs="sec@example.com", conn_id="cm_smtp_both")
        alert.write(mock_events()[0])
        with pytest.raises(RuntimeError) as info:
            alert.done()
    finally:
        controller.stop()
    message = str(info.value)
    assert "SMTP connection 'cm_smtp_both'" in message and "STARTTLS" in message
    assert 'set {"disable_tls": true} for port 465' in message
    assert server.messages == []
