"""Alerts to the owners: Slack-compatible JSON to a webhook URL, and the log; never fatal."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import httpx

log = logging.getLogger(__name__)

ALERT_URL_ENV = "INTEGRATIONS_ALERT_WEBHOOK_URL"


def alert(title: str, text: str, owners: Sequence[str], url: str | None = None) -> bool:
    """Post an alert naming the owners; True when delivered. A failed delivery is only logged."""
    who = ", ".join(owners) or "nobody (no owner declared)"
    log.warning("ALERT %s: %s (owners: %s)", title, text, who)
    target = url or os.environ.get(ALERT_URL_ENV)
    if not target:
        return False
    body = {"text": f":rotating_light: *{title}*\n{text}\nOwners: {who}",
            "title": title, "owners": list(owners)}
    try:
        httpx.post(target, json=body, timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        log.error("alert not delivered to the alert webhook: %s", type(exc).__name__)
        return False
    return True
