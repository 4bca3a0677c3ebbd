"""Render a run's events for people: a summary line, then each event's description and recommendation.

Email and Slack alerts share this so that both read the same way, and so that the
rendering is tested as plain functions, without any server.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_cloudmarker import contract

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: Events listed one by one in a message body; the JSON attachment always holds all of them.
MAX_LISTED = 200


def _com(event: dict[str, Any]) -> dict[str, Any]:
    com = event.get("com") if isinstance(event, dict) else None
    return com if isinstance(com, dict) else {}


def event_type(event: dict[str, Any]) -> str:
    """``com.record_type`` (``ext.record_type`` for plugins that set only that), else ``unknown``."""
    ext = event.get("ext") if isinstance(event, dict) else None
    return str(_com(event).get("record_type") or (ext or {}).get("record_type") or "unknown")


def counts_by_type(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Number of events per event type, most frequent first (ties by name)."""
    counter = Counter(event_type(e) for e in events)
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def summary_line(events: Sequence[dict[str, Any]]) -> str:
    """``3 events: 2 mock_event, 1 firewall_rule_event`` (or ``No events.``)."""
    if not events:
        return "No events."
    counts = ", ".join(f"{n} {kind}" for kind, n in counts_by_type(events).items())
    return f"{len(events)} event{'s' if len(events) != 1 else ''}: {counts}"


def audits_of(events: Iterable[dict[str, Any]]) -> list[str]:
    """The audit keys the events came from, in order of first appearance."""
    return list(dict.fromkeys(str(_com(e).get("audit_key")) for e in events if _com(e).get("audit_key")))


def _describe(event: dict[str, Any]) -> tuple[str, str, str]:
    com = _com(event)
    description = str(com.get("description") or "(no description)")
    recommendation = str(com.get("recommendation") or "")
    reference = str(com.get("reference") or "")
    return description, recommendation, reference


def check_line(event: dict[str, Any]) -> str:
    """``Check: <title> (<id>, severity high; CIS ...: 7.2)`` from the check metadata the event names, or ``""``."""
    com = _com(event)
    check = contract.find_check(com.get("check_id"))
    if check is None:
        return ""
    severity = com.get("severity") or check.severity
    return f"Check: {check.title} ({check.check_id}, severity {severity}; controls: {check.controls_text()})"


def render_text(title: str, events: Sequence[dict[str, Any]], attachment_name: str | None = None) -> str:
    """Plain-text body: title, summary line, then one numbered paragraph per event."""
    lines = [title, "", summary_line(events), ""]
    for index, event in enumerate(events[:MAX_LISTED], start=1):
        description, recommendation, reference = _describe(event)
        lines.append(f"{index}. [{event_type(event)}] {description}")
        if check := check_line(event):
            lines.append(f"   {check}")
        if reference:
            lines.append(f"   Reference: {reference}")
        if recommendation:
            lines.append(f"   Recommendation: {recommendation}")
        lines.append("")
    if len(events) > MAX_LISTED:
        lines += [f"... and {len(events) - MAX_LISTED} more events.", ""]
    if attachment_name and events:
        lines.append(f"All events are attached as {attachment_name}.")
    return "\n".join(lines).rstrip() + "\n"


def render_html(title: str, events: Sequence[dict[str, Any]], attachment_name: str | None = None) -> str:
    """HTML body with the same content as ``render_text`` (every value escaped)."""
    esc = html.escape
    parts = [f"<h2>{esc(title)}</h2>", f"<p><b>{esc(summary_line(events))}</b></p>"]
    if events:
        parts.append("<ol>")
        for event in events[:MAX_LISTED]:
            description, recommendation, reference = _describe(event)
            item = f"<li><p><code>{esc(event_type(event))}</code> {esc(description)}"
            if check := check_line(event):
                item += f"<br>{esc(check)}"
            if reference:
                item += f"<br>Reference: {esc(reference)}"
            if recommendation:
                item += f"<br><i>Recommendation:</i> {esc(recommendation)}"
            parts.append(item + "</p></li>")
        parts.append("</ol>")
    if len(events) > MAX_LISTED:
        parts.append(f"<p>... and {len(events) - MAX_LISTED} more events.</p>")
    if attachment_name and events:
        parts.append(f"<p>All events are attached as <code>{esc(attachment_name)}</code>.</p>")
    return "<html><body>" + "\n".join(parts) + "</body></html>"


def events_json(events: Sequence[dict[str, Any]]) -> bytes:
    """The full event records as an indented JSON array (datetimes and other objects as strings)."""
    return json.dumps(list(events), indent=2, default=str, ensure_ascii=False).encode("utf-8")
