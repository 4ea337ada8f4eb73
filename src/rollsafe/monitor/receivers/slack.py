"""A Slack incoming webhook: one Block Kit message per notification (``text`` for
notifications and screen readers, ``blocks`` for the channel)."""

from __future__ import annotations

from typing import Any

from rollsafe.monitor.model import AlertEvent, Notification
from rollsafe.monitor.receivers._render import event_line, title
from rollsafe.monitor.receivers.base import HttpReceiver

__all__ = ["MAX_EVENT_BLOCKS", "SlackReceiver", "slack_message"]

#: events shown one by one; Slack takes at most 50 blocks per message
MAX_EVENT_BLOCKS = 20
_HEADER_MAX = 150
_SECTION_MAX = 3000


def _event_blocks(event: AlertEvent) -> list[dict[str, Any]]:
    lines = [event_line(event, markdown=True)]
    description = event.annotations["description"]
    if description:
        lines.append(description)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_SECTION_MAX]}}
    ]
    evidence = event.annotations["evidence"]
    if evidence:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"evidence: {evidence}"[:_SECTION_MAX]}],
            }
        )
    return blocks


def slack_message(notification: Notification) -> dict[str, Any]:
    """The incoming-webhook body: ``text`` and ``blocks``."""
    head = title(notification)
    events = list(notification.events)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:_HEADER_MAX]}}
    ]
    for event in events[:MAX_EVENT_BLOCKS]:
        blocks.extend(_event_blocks(event))
    if len(events) > MAX_EVENT_BLOCKS:
        more = len(events) - MAX_EVENT_BLOCKS
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]}
        )
    text = "\n".join([head, *(event_line(e) for e in events[:MAX_EVENT_BLOCKS])])
    return {"text": text[:_SECTION_MAX], "blocks": blocks}


class SlackReceiver(HttpReceiver):
    """One message per notification to a Slack incoming webhook."""

    type = "slack"

    def send(self, notification: Notification) -> None:
        self._post(slack_message(notification))
