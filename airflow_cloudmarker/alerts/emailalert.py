"""EmailAlert: one email per audit run with the run's events (text, HTML and a JSON attachment).

Events are collected in ``write()`` and sent in ``done()``, which the framework calls only when
every event was handed over: recipients get one complete message per run instead of one per
event, and a run that broke half-way sends nothing half-done.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_cloudmarker import smtp
from airflow_cloudmarker.alerts import _summary

log = logging.getLogger(__name__)


class EmailAlert:
    """Send the events of an audit run by email through SMTP (inline params or an Airflow SMTP connection).

    Params (the tutorial's, as the original ``cloudmarker.util.send_email``):

    - ``from_addr``: sender, such as ``Cloudmarker <cloudmarker@example.com>``.
    - ``to_addrs``: list of recipient addresses.
    - ``subject``: subject line (default ``Cloudmarker Alert``).
    - ``host``: SMTP server; ``port``: 0 (default) means 465, 587 or 25 for ``ssl_mode``.
    - ``ssl_mode``: ``ssl`` (implicit TLS, default), ``starttls`` or ``disable``.
    - ``username`` / ``password``: login, when the server wants one.
    - ``debug``: smtplib debug level (0 off, 1 or 2, or true); the lines go to the log with the
      AUTH exchange masked.
    - ``conn_id``: an Airflow SMTP connection instead of host/port/ssl_mode/username/password
      (recommended: the password then lives in Airflow's secrets, not in YAML).
    - ``send_empty``: also send when the run found no events (default false).
    """

    def __init__(
        self,
        from_addr: str | None = None,
        to_addrs: list[str] | str | None = None,
        subject: str = "Cloudmarker Alert",
        host: str = "",
        port: int = 0,
        ssl_mode: str = "ssl",
        username: str | None = "",
        password: str | None = "",
        debug: int | bool = 0,
        conn_id: str | None = None,
        send_empty: bool = False,
    ):
        self._settings = smtp.smtp_settings(
            "EmailAlert",
            from_addr=from_addr,
            to_addrs=to_addrs,
            subject=subject,
            host=host,
            port=port,
            ssl_mode=ssl_mode,
            username=username,
            password=password,
            debug=debug,
            conn_id=conn_id,
        )
        if not isinstance(send_empty, bool):
            raise ValueError("EmailAlert send_empty must be true or false")
        self._send_empty = send_empty
        self._events: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        """Keep an event for the run's email."""
        self._events.append(record)

    def done(self) -> None:
        """Send the run's email (none without events unless ``send_empty``); a failure raises and fails the task."""
        events = self._events
        if not events and not self._send_empty:
            log.info("EmailAlert: no events in this run; no email sent (set send_empty: true to send one anyway)")
            return
        audits = _summary.audits_of(events)
        title = f"Cloudmarker events of audit {', '.join(audits)}" if audits else "Cloudmarker events"
        attachment = "cloudmarker_events.json"
        attachments = [(attachment, _summary.events_json(events))] if events else []
        try:
            smtp.send_email(
                self._settings,
                self._settings.subject,
                _summary.render_text(title, events, attachment),
                _summary.render_html(title, events, attachment),
                attachments,
            )
        except smtp.EmailSendError as exc:
            raise RuntimeError(f"EmailAlert: {exc}") from exc
        self._events = []
