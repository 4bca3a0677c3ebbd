"""SMTP settings (inline params or an Airflow connection id) and sending one message through SmtpHook.

EmailAlert and the begin/end audit emails take the same params, the tutorial's (those of the
original ``cloudmarker.util.send_email``). They are checked here once, without touching the
network, so a wrong value is reported at parse time naming the param and the fix. Sending goes
through the smtp provider's ``SmtpHook`` (TLS modes, login, retries); inline params become an
in-memory connection, so they need no connection store at all: that is what makes them work in
DAG-level callbacks under ``dag.test()``, which see only environment-variable connections.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from airflow_cloudmarker.util import mask_secret

log = logging.getLogger(__name__)

#: ssl_mode -> standard port (port 0 in the config means this one).
STANDARD_PORTS = {"ssl": 465, "starttls": 587, "disable": 25}
#: ssl_mode -> SmtpHook connection extras (see the hook: both default to on).
MODE_EXTRAS = {
    "ssl": {"disable_tls": True},
    "starttls": {"disable_ssl": True},
    "disable": {"disable_ssl": True, "disable_tls": True},
}
INLINE_CONN_ID = "cloudmarker_inline_smtp"
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
    if not conn_id and (not isinstance(from_addr, str) or "@" not in from_addr):
        raise ValueError(f"{owner} from_addr must be a sender address such as 'Cloudmarker <cloudmarker@example.com>'")
    if from_addr is not None and not isinstance(from_addr, str):
        raise ValueError(f"{owner} from_addr must be a string such as 'Cloudmarker <cloudmarker@example.com>'")
    if ssl_mode not in STANDARD_PORTS:
        raise ValueError(f"{owner} ssl_mode must be one of ssl, starttls, disable, not {ssl_mode!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{owner} port must be an integer from 1 to 65535, or 0 for the standard port of ssl_mode")
    if not isinstance(subject, str):
        raise ValueError(f"{owner} subject must be a string")
    for name, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{owner} {name} must be a string (quote it in YAML)")
    if isinstance(debug, bool):
        debug = int(debug)
    if not isinstance(debug, int) or debug < 0:
        raise ValueError(f"{owner} debug must be 0 (off), 1 or 2 (smtplib debug output)")
    if username and password:
        # smtplib's debug output shows AUTH in base64; mask that form too.
        mask_secret(base64.b64encode(f"\0{username}\0{password}".encode()).decode())
        mask_secret(base64.b64encode(password.encode()).decode())
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


def _smtp_hook_class():
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class CloudmarkerSmtpHook(SmtpHook):
        """SmtpHook that takes inline params as an in-memory connection and sends a prepared message."""

        def __init__(self, settings: SmtpSettings):
            super().__init__(smtp_conn_id=settings.conn_id or INLINE_CONN_ID)
            self._settings = settings

        def get_connection(self, conn_id: str):  # shadows the classmethod for inline params
            if self._settings.conn_id:
                return SmtpHook.get_connection(conn_id)
            from airflow.sdk import Connection

            s = self._settings
            extra = {**MODE_EXTRAS[s.ssl_mode], "retry_limit": 1, "timeout": 30}
            return Connection(
                conn_id=INLINE_CONN_ID,
                conn_type="smtp",
                host=s.host,
                port=s.effective_port,
                login=s.username or None,
                password=s.password or None,
                extra=json.dumps(extra),
            )

        def _build_client(self):
            client = super()._build_client()
            if self._settings.debug:
                mask_debug_output(client, self.smtp_user, self.smtp_password)
                client.set_debuglevel(self._settings.debug)
            return client

        def send_prepared(self, message: EmailMessage, recipients: Sequence[str]) -> None:
            self._smtp_client.send_message(message, to_addrs=list(recipients))

    return CloudmarkerSmtpHook


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
    hook = _smtp_hook_class()(settings)
    recipients = [addr for _, addr in getaddresses(list(settings.to_addrs))]
    try:
        with hook:
            sender = settings.from_addr or hook.from_email
            if not sender:
                raise EmailSendError(
                    f"no sender: set from_addr, or from_email in the extras of SMTP connection {settings.conn_id!r}"
                )
            hook.send_prepared(build_message(settings, subject, text, html, attachments, sender), recipients)
    except EmailSendError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise EmailSendError(
            f"SMTP login to {settings.describe()} as {settings.username or '(connection login)'} was refused "
            f"({exc.smtp_code}); check username and password"
        ) from None
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        if "connection is not found" in detail or "isn't defined" in detail:
            detail = f"Airflow connection {settings.conn_id!r} is not defined; create it or fix conn_id"
        raise EmailSendError(
            f"sending email via {settings.describe()} failed: {type(exc).__name__}: {detail}"
        ) from None
    log.info("Sent email %r to %s via %s", subject, ", ".join(recipients), settings.describe())
