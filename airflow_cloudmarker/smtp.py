"""SMTP for cloudmarker: the email params (inline or an Airflow connection id), checked once, and sending.

EmailAlert and the begin/end audit emails take the same params, the tutorial's (those of the
original ``cloudmarker.util.send_email``). They are checked here once, without touching the
network, so a wrong value is reported at parse time naming the param and the fix. Public, like
``util``: the config check, the audit emails and alert plugins (users' own too) share it.

Sending uses only public APIs: an Airflow connection is read with ``BaseHook.get_connection`` and
its extras mean what the smtp provider documents for them (``disable_ssl``, ``disable_tls``,
``from_email``, ``timeout``, ``retry_limit``, ``ssl_context``, ``auth_type``/``access_token``);
the client is ``smtplib``'s own, so its debug output can be masked. Inline params need no
connection store at all: that is what makes them work in DAG-level callbacks under
``dag.test()``, which see only environment-variable connections.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker.util import mask_secret

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

#: ssl_mode -> standard port (port 0 in the config means this one).
STANDARD_PORTS = {"ssl": 465, "starttls": 587, "disable": 25}
#: Connect attempts after the first when the server drops the connection at once (inline params).
INLINE_RETRY_LIMIT = 1
INLINE_TIMEOUT_SECONDS = 30
#: The smtp provider's defaults for a connection's extras.
CONNECTION_RETRY_LIMIT = 5
CONNECTION_TIMEOUT_SECONDS = 30
#: What SMTP debug output shows instead of credentials.
MASK = "***"
_AUTH_COMMAND = re.compile(r"(AUTH\s+[\w-]+)\s+[^\s'\\]+", re.IGNORECASE)


class EmailSendError(Exception):
    """Sending failed; the message names the server (never the password) and the cause."""


@dataclass(frozen=True)
class SmtpSettings:
    """Validated SMTP params: where to send, as whom, and to whom."""

    to_addrs: tuple[str, ...]
    from_addr: str | None = None
    subject: str = "Cloudmarker Alert"
    host: str = ""
    port: int = 0
    ssl_mode: str = "ssl"
    username: str = ""
    password: str = field(default="", repr=False)
    debug: int = 0
    conn_id: str | None = None

    @property
    def effective_port(self) -> int:
        """The configured port, else the standard one of the TLS mode (465, 587 or 25)."""
        return self.port or STANDARD_PORTS[self.ssl_mode]

    def describe(self) -> str:
        """Where mail goes, for logs: ``smtp.example.com:465 (ssl)`` or ``connection 'x'``."""
        if self.conn_id:
            return f"SMTP connection {self.conn_id!r}"
        return f"{self.host}:{self.effective_port} ({self.ssl_mode})"


def _addresses(owner: str, name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{owner} {name} must be a non-empty list of email addresses, such as [user1@example.com]")
    for item in value:
        if "@" not in item:
            raise ValueError(f"{owner} {name}: {item!r} is not an email address (user@example.com)")
    return tuple(v.strip() for v in value)


def smtp_params(params: dict[str, Any]) -> dict[str, Any]:
    """EmailAlert params minus those about what to send (``send_empty``): the SMTP part."""
    return {k: v for k, v in params.items() if k != "send_empty"}


def smtp_settings(
    owner: str,
    *,
    to_addrs: Any,
    from_addr: Any = None,
    subject: Any = "Cloudmarker Alert",
    host: Any = "",
    port: Any = 0,
    ssl_mode: Any = "ssl",
    username: Any = "",
    password: Any = "",
    debug: Any = 0,
    conn_id: Any = None,
) -> SmtpSettings:
    """Check the params (no network) and return the settings; ``ValueError`` names the param and the fix."""
    mask_secret(password)
    recipients = _addresses(owner, "to_addrs", to_addrs)
    _check_server(owner, conn_id, host, username, password)
    _check_sender(owner, conn_id, from_addr)
    _check_transport(owner, ssl_mode, port)
    _check_strings(owner, subject, username, password)
    debug = _debug_level(owner, debug)
    _mask_login(username, password)
    return SmtpSettings(
        to_addrs=recipients,
        from_addr=from_addr,
        subject=subject,
        host=(host or "").strip(),
        port=port,
        ssl_mode=ssl_mode,
        username=username or "",
        password=password or "",
        debug=debug,
        conn_id=conn_id or None,
    )


def _check_server(owner: str, conn_id: Any, host: Any, username: Any, password: Any) -> None:
    """Either a connection id or an inline host (with its credentials), never both."""
    if conn_id is not None and (not isinstance(conn_id, str) or not conn_id.strip()):
        raise ValueError(f"{owner} conn_id must be the id of an Airflow SMTP connection (a string)")
    if conn_id:
        inline = [n for n, v in (("host", host), ("username", username), ("password", password)) if v]
        if inline:
            raise ValueError(
                f"{owner}: give either conn_id or {', '.join(inline)}, not both; "
                f"the connection holds the server and the credentials"
            )
    elif not isinstance(host, str) or not host.strip():
        raise ValueError(
            f"{owner} host is not set; set host to your SMTP server (smtp.example.com) "
            f"or conn_id to an Airflow SMTP connection"
        )


def _check_sender(owner: str, conn_id: Any, from_addr: Any) -> None:
    """Inline params need a sender address; a connection may give its own (``from_email``)."""
    if not conn_id and (not isinstance(from_addr, str) or "@" not in from_addr):
        raise ValueError(f"{owner} from_addr must be a sender address such as 'Cloudmarker <cloudmarker@example.com>'")
    if from_addr is not None and not isinstance(from_addr, str):
        raise ValueError(f"{owner} from_addr must be a string such as 'Cloudmarker <cloudmarker@example.com>'")


def _check_transport(owner: str, ssl_mode: Any, port: Any) -> None:
    if ssl_mode not in STANDARD_PORTS:
        raise ValueError(f"{owner} ssl_mode must be one of ssl, starttls, disable, not {ssl_mode!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{owner} port must be an integer from 1 to 65535, or 0 for the standard port of ssl_mode")


def _check_strings(owner: str, subject: Any, username: Any, password: Any) -> None:
    if not isinstance(subject, str):
        raise ValueError(f"{owner} subject must be a string")
    for name, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{owner} {name} must be a string (quote it in YAML)")


def _debug_level(owner: str, debug: Any) -> int:
    """Return smtplib's debug level (YAML true/false read as 1/0)."""
    if isinstance(debug, bool):
        debug = int(debug)
    if not isinstance(debug, int) or debug < 0:
        raise ValueError(f"{owner} debug must be 0 (off), 1 or 2 (smtplib debug output)")
    return debug


def _mask_login(username: Any, password: Any) -> None:
    if username and password:
        # smtplib's debug output shows AUTH in base64; mask that form too.
        mask_secret(base64.b64encode(f"\0{username}\0{password}".encode()).decode())
        mask_secret(base64.b64encode(password.encode()).decode())


def _secret_forms(username: str | None, password: str | None) -> list[str]:
    """The password as an SMTP dialogue carries it: plain, base64 (AUTH LOGIN), base64 of AUTH PLAIN's payload."""
    if not password:
        return []
    user = username or ""
    forms = [password, base64.b64encode(password.encode()).decode()]
    forms += [base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode() for authz in ("", user)]
    return sorted(set(forms), key=len, reverse=True)


def mask_debug_output(client: smtplib.SMTP, username: str | None, password: str | None) -> None:
    """Send ``client``'s debug output to this module's logger with every credential masked.

    smtplib prints its debug lines straight to stderr, past Airflow's log masker, and they show
    what the client sends: ``AUTH PLAIN <base64 of user and password>``, or for AUTH LOGIN the
    base64 password on a line of its own. So while the client authenticates, each line it sends
    is masked whatever the mechanism (the AUTH command keeps its name); any remaining form of the
    password is masked too, and the lines go through logging, where Airflow masks secrets again.
    """
    forms = _secret_forms(username, password)
    authenticating = False
    authenticate = client.auth

    def auth(*args: Any, **kwargs: Any) -> Any:
        nonlocal authenticating
        authenticating = True
        try:
            return authenticate(*args, **kwargs)
        finally:
            authenticating = False

    def print_debug(*args: Any) -> None:
        line = " ".join(str(a) for a in args)
        sent = bool(args) and args[0] == "send:"
        if sent and authenticating:
            command = _AUTH_COMMAND.match(str(args[1]).strip("'\""))
            line = f"send: '{command.group(1)} {MASK}'" if command else f"send: {MASK}"
        elif sent:  # an AUTH sent some other way than auth(): its argument is a credential too
            line = _AUTH_COMMAND.sub(rf"\1 {MASK}", line)
        for form in forms:
            line = line.replace(form, MASK)
        log.info("smtplib: %s", line)

    client.auth = auth  # type: ignore[method-assign]  # login() calls self.auth(...)
    client._print_debug = print_debug  # type: ignore[attr-defined]  # every debug line goes through it


@dataclass(frozen=True)
class Server:
    """How to reach one SMTP server: from inline params, or from an Airflow connection's fields and extras."""

    host: str
    port: int  # 0: smtplib's default for the client (25, or 465 with implicit TLS)
    implicit_tls: bool
    starttls: bool
    login: str = ""
    password: str = field(default="", repr=False)
    timeout: float = INLINE_TIMEOUT_SECONDS
    retry_limit: int = INLINE_RETRY_LIMIT
    from_email: str | None = None
    verify_certificate: bool = True
    oauth2_token: str | None = field(default=None, repr=False)


def _inline_server(settings: SmtpSettings) -> Server:
    return Server(
        host=settings.host,
        port=settings.effective_port,
        implicit_tls=settings.ssl_mode == "ssl",
        starttls=settings.ssl_mode == "starttls",
        login=settings.username,
        password=settings.password,
    )


def _connection_server(conn_id: str) -> Server:
    """The server of Airflow SMTP connection ``conn_id``, its extras read as the smtp provider documents them."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        raise EmailSendError(f"Airflow connection {conn_id!r} is not defined; create it or fix conn_id") from exc
    extra = conn.extra_dejson
    ssl_context = extra.get("ssl_context")
    if ssl_context not in (None, "default", "none"):
        raise EmailSendError(
            f"SMTP connection {conn_id!r}: extra ssl_context must be 'default' or 'none', not {ssl_context!r}"
        )
    server = Server(
        host=conn.host or "",
        port=conn.port or 0,
        # The provider's semantics: both are on unless its extras turn them off.
        implicit_tls=not bool(extra.get("disable_ssl", False)),
        starttls=not bool(extra.get("disable_tls", False)),
        login=conn.login or "",
        password=conn.password or "",
        timeout=float(extra.get("timeout", CONNECTION_TIMEOUT_SECONDS)),
        retry_limit=int(extra.get("retry_limit", CONNECTION_RETRY_LIMIT)),
        from_email=extra.get("from_email"),
        verify_certificate=ssl_context != "none",
    )
    if extra.get("auth_type", "basic") == "oauth2":
        token = _oauth2_token(conn_id, extra)
        mask_secret(token)
        server = dataclasses.replace(server, oauth2_token=token)
    return server


def _oauth2_token(conn_id: str, extra: dict[str, Any]) -> str:
    """The connection's ``access_token``, else one from Microsoft Entra for its client credentials (as the provider)."""
    if extra.get("access_token"):
        return str(extra["access_token"])
    client_id, client_secret = extra.get("client_id"), extra.get("client_secret")
    if not (client_id and client_secret):
        raise EmailSendError(
            f"SMTP connection {conn_id!r} has auth_type oauth2 but neither access_token nor "
            f"client_id and client_secret in its extras; add them"
        )
    mask_secret(client_secret)
    from msal import ConfidentialClientApplication

    app = ConfidentialClientApplication(
        client_id=client_id,
        client_credential=client_secret,
        authority=f"https://login.microsoftonline.com/{extra.get('tenant_id', 'common')}",
    )
    result = app.acquire_token_for_client(scopes=[extra.get("scope", "https://outlook.office.com/.default")])
    if "access_token" not in result:
        raise EmailSendError(
            f"SMTP connection {conn_id!r}: no OAuth2 access token from Microsoft Entra: "
            f"{result.get('error_description') or result.get('error')}"
        )
    return str(result["access_token"])


def _tls_context(server: Server) -> ssl.SSLContext:
    """The system's trusted CAs (``SSL_CERT_FILE`` too); no verification only when the connection says ``none``."""
    if server.verify_certificate:
        return ssl.create_default_context()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _open(server: Server, debug: int) -> smtplib.SMTP:
    """A connected client in the server's TLS mode, logged in; a dropped first connection is retried."""
    for attempt in range(server.retry_limit + 1):
        try:
            if server.implicit_tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    server.host, server.port, timeout=server.timeout, context=_tls_context(server)
                )
            else:
                client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        except smtplib.SMTPServerDisconnected:
            if attempt == server.retry_limit:
                raise
            continue
        break
    try:
        if debug:
            mask_debug_output(client, server.login, server.password or server.oauth2_token)
            client.set_debuglevel(debug)
        if server.starttls:
            client.starttls(context=_tls_context(server))
            client.ehlo()
        _authenticate(client, server)
    except BaseException:
        client.close()
        raise
    return client


def _authenticate(client: smtplib.SMTP, server: Server) -> None:
    """XOAUTH2 with a token, else AUTH with login and password when both are set, else none."""
    if server.oauth2_token is not None:
        identity = server.login or server.from_email or ""
        token = server.oauth2_token
        client.ehlo_or_helo_if_needed()  # auth() does not greet first (login() does): a 503 would pass as success
        client.auth("XOAUTH2", lambda challenge=None: f"user={identity}\x01auth=Bearer {token}\x01\x01")
    elif server.login and server.password:
        client.login(server.login, server.password)


def build_message(
    settings: SmtpSettings,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
    from_addr: str | None = None,
) -> EmailMessage:
    """A multipart message: text, its HTML alternative, and JSON attachments."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = from_addr or settings.from_addr or ""
    message["To"] = ", ".join(settings.to_addrs)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="cloudmarker")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, data in attachments:
        message.add_attachment(data, maintype="application", subtype="json", filename=filename)
    return message


def send_email(
    settings: SmtpSettings,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Send one message to ``settings.to_addrs``; raise ``EmailSendError`` saying where and why it failed."""
    recipients = [addr for _, addr in getaddresses(list(settings.to_addrs))]
    try:
        server = _connection_server(settings.conn_id) if settings.conn_id else _inline_server(settings)
        sender = settings.from_addr or server.from_email
        if not sender:
            raise EmailSendError(
                f"no sender: set from_addr, or from_email in the extras of SMTP connection {settings.conn_id!r}"
            )
        client = _open(server, settings.debug)
        try:
            client.send_message(build_message(settings, subject, text, html, attachments, sender), to_addrs=recipients)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
    except EmailSendError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        # Not chained: an AUTH refusal's text can echo what the client sent (the base64 credentials).
        raise EmailSendError(
            f"SMTP login to {settings.describe()} as {settings.username or '(connection login)'} was refused "
            f"({exc.smtp_code}); check username and password"
        ) from None
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        raise EmailSendError(
            f"sending email via {settings.describe()} failed: {type(exc).__name__}: {detail}{_mode_hint(settings, exc)}"
        ) from exc
    log.info("Sent email %r to %s via %s", subject, ", ".join(recipients), settings.describe())


def _mode_hint(settings: SmtpSettings, exc: Exception) -> str:
    """How to fix a connection whose TLS modes do not match its server (the provider turns both on by default)."""
    if not settings.conn_id or not isinstance(exc, smtplib.SMTPNotSupportedError):
        return ""
    return (
        f"; SMTP connection {settings.conn_id!r} has implicit TLS and STARTTLS both on unless its extras turn one "
        'off: set {"disable_tls": true} for port 465 or {"disable_ssl": true} for port 587'
    )
