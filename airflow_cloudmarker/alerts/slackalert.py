"""SlackAlert: each recipient gets a direct message summing up the run's events, with the events as JSON.

The message comes from a Slack bot, through the slack provider's SlackHook (slack_sdk).
Events are collected in ``write()`` and sent in ``done()``. Recipients are independent: one that
cannot be found or reached does not stop the others, and the task fails at the end naming who
did not get the alert, so the failure is visible without hiding what was delivered.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_cloudmarker.alerts import _summary
from airflow_cloudmarker.util import mask_secret

log = logging.getLogger(__name__)

INLINE_CONN_ID = "cloudmarker_inline_slack"
#: Events quoted in the message itself; the attached JSON file holds all of them.
QUOTED_EVENTS = 10


class SlackAlert:
    """Send the events of an audit run to Slack users (by email) as direct messages from a bot.

    Params:

    - ``bot_user_token``: the bot's token (``xoxb-...``; scopes ``users:read.email``, ``im:write``,
      ``chat:write``, ``files:write``).
    - ``to``: list of the recipients' Slack account email addresses.
    - ``text``: first line of the message (default ``Cloudmarker Alert``).
    - ``conn_id``: an Airflow Slack connection (token in its password) instead of
      ``bot_user_token`` (recommended: the token then lives in Airflow's secrets, not in YAML).
    - ``base_url``: Slack Web API URL (default ``https://slack.com/api/``; for proxies and tests).
    - ``send_empty``: also message when the run found no events (default false).
    """

    def __init__(
        self,
        bot_user_token: str | None = None,
        to: list[str] | str | None = None,
        text: str = "Cloudmarker Alert",
        conn_id: str | None = None,
        base_url: str | None = None,
        send_empty: bool = False,
    ):
        mask_secret(bot_user_token)
        if conn_id and bot_user_token:
            raise ValueError("SlackAlert: give either conn_id or bot_user_token, not both")
        if not conn_id and (not isinstance(bot_user_token, str) or not bot_user_token.strip()):
            raise ValueError(
                "SlackAlert bot_user_token is not set; set it to the Slack bot's token (xoxb-...) "
                "or conn_id to an Airflow Slack connection holding it"
            )
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
            raise ValueError("SlackAlert to must be a non-empty list of the recipients' Slack email addresses")
        if not isinstance(text, str):
            raise ValueError("SlackAlert text must be a string")
        if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
            raise ValueError("SlackAlert base_url must be an http(s) URL such as https://slack.com/api/")
        if not isinstance(send_empty, bool):
            raise ValueError("SlackAlert send_empty must be true or false")
        self._token = bot_user_token
        self._conn_id = conn_id
        self._base_url = base_url
        self._to = [a.strip() for a in to]
        self._text = text
        self._send_empty = send_empty
        self._events: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        """Keep an event for the run's messages."""
        self._events.append(record)

    def _client(self):
        """slack_sdk WebClient from SlackHook; an inline token becomes an in-memory connection."""
        from airflow.providers.slack.hooks.slack import SlackHook
        from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

        token, conn_id = self._token, self._conn_id

        class CloudmarkerSlackHook(SlackHook):
            def get_connection(self, requested_id: str):  # shadows the classmethod for an inline token
                if conn_id:
                    return SlackHook.get_connection(requested_id)
                from airflow.sdk import Connection

                return Connection(conn_id=INLINE_CONN_ID, conn_type="slack", password=token)

        retry = [ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)]
        hook = CloudmarkerSlackHook(
            slack_conn_id=conn_id or INLINE_CONN_ID, base_url=self._base_url, retry_handlers=retry
        )
        return hook.client

    def _message(self, events: list[dict[str, Any]]) -> str:
        audits = _summary.audits_of(events)
        lines = [self._text, f"{_summary.summary_line(events)}" + (f" (audit {', '.join(audits)})" if audits else "")]
        for event in events[:QUOTED_EVENTS]:
            com = event.get("com") or {}
            lines.append(f"• {com.get('description') or '(no description)'} {com.get('recommendation') or ''}".rstrip())
        if len(events) > QUOTED_EVENTS:
            lines.append(f"… and {len(events) - QUOTED_EVENTS} more in the attached file.")
        return "\n".join(lines)

    def done(self) -> None:
        """Message every recipient; raise at the end naming those who did not get the alert."""
        events = self._events
        if not events and not self._send_empty:
            log.info("SlackAlert: no events in this run; no message sent (set send_empty: true to send one anyway)")
            return
        from slack_sdk.errors import SlackApiError

        try:
            client = self._client()
        except Exception as exc:
            raise RuntimeError(f"SlackAlert: cannot set up the Slack client: {type(exc).__name__}: {exc}") from exc
        text = self._message(events)
        content = _summary.events_json(events).decode("utf-8") if events else None
        failed: dict[str, str] = {}
        for address in self._to:
            step = "users.lookupByEmail"
            try:
                user_id = client.users_lookupByEmail(email=address)["user"]["id"]
                step = "conversations.open"
                channel = client.conversations_open(users=[user_id])["channel"]["id"]
                step = "chat.postMessage"
                client.chat_postMessage(channel=channel, text=text)
                if content is not None:
                    step = "file upload"
                    client.files_upload_v2(
                        channel=channel,
                        content=content,
                        filename="cloudmarker_events.json",
                        title="Cloudmarker events",
                    )
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                status = getattr(exc.response, "status_code", "?")
                failed[address] = f"{step}: {error or 'HTTP ' + str(status)}"
            except Exception as exc:  # network errors: keep going with the other recipients
                failed[address] = f"{step}: {type(exc).__name__}: {exc}"
            else:
                log.info("SlackAlert: sent %d events to %s", len(events), address)
                continue
            log.error("SlackAlert: %s did not get the alert (%s)", address, failed[address])
        if failed:
            who = "; ".join(f"{address} ({reason})" for address, reason in failed.items())
            delivered = len(self._to) - len(failed)
            raise RuntimeError(
                f"SlackAlert: {len(failed)} of {len(self._to)} recipients did not get the alert "
                f"({delivered} did): {who}"
            )
        self._events = []
