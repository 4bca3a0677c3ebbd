"""A real SMTP server for the tests (aiosmtpd) in the three modes clients meet: implicit TLS,
STARTTLS and plain, each with or without AUTH. TLS uses a throwaway CA (trustme); clients trust
it through SSL_CERT_FILE, which ``ssl.create_default_context()`` (SmtpHook's default) reads, so
the certificate is really verified.
"""

from __future__ import annotations

import email
import email.policy
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from servers.net import free_port

USERNAME = "cmuser"
PASSWORD = "s3cret-Pa55"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage


@dataclass
class SmtpServer:
    host: str
    port: int
    mode: str  # ssl | starttls | disable
    auth: bool
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def params(self, **extra) -> dict:
        """EmailAlert / ``email`` params that reach this server."""
        params = {
            "from_addr": "Cloudmarker <cloudmarker@example.com>",
            "to_addrs": ["user1@example.com", "user2@example.com"],
            "host": self.host,
            "port": self.port,
            "ssl_mode": self.mode,
        }
        if self.auth:
            params.update(username=USERNAME, password=PASSWORD)
        return {**params, **extra}


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


class TlsMaterial:
    """A throwaway CA and a certificate for 127.0.0.1/localhost; ``ca_file`` is for SSL_CERT_FILE."""

    def __init__(self, directory: Path):
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        # PROTOCOL_TLS (not _SERVER): aiosmtpd's readiness probe wraps a client socket with it too.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS)
        self.cert.configure_cert(context)
        return context


def start(mode: str, auth: bool, tls: TlsMaterial | None) -> tuple[SmtpServer, Controller]:
    """Start a server in ``mode`` (ssl, starttls, disable), with AUTH (PLAIN, LOGIN) if ``auth``."""
    server = SmtpServer("127.0.0.1", free_port(), mode, auth)

    def authenticator(smtp, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode()
        server.logins.append(f"{mechanism}:{auth_data.login.decode()}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)  # handled=True would leave a failure unanswered

    kwargs: dict = {"hostname": server.host, "port": server.port, "ready_timeout": 5}
    if auth:
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=mode == "starttls")
        # aiosmtpd only knows TLS it started itself (STARTTLS); an implicit-TLS socket is encrypted anyway.
    if mode == "ssl":
        kwargs["ssl_context"] = tls.server_context()
    elif mode == "starttls":
        kwargs.update(tls_context=tls.server_context(), require_starttls=True)
    controller = Controller(_Handler(server), **kwargs)
    controller.start()
    return server, controller
