"""Prometheus metrics of the engine's delivery step (``/metrics`` exposes them).

``escalade_notifications_total{channel, instance, outcome}`` counts each message once, by
how it ended: ``first_try`` (sent on its first attempt), ``after_retries`` (sent after at
least one failed attempt), ``gave_up`` (every attempt failed), ``undeliverable`` (no
channel configured, nobody on call) and ``cancelled`` (acknowledged or resolved first).
``escalade_notification_attempts_failed_total`` counts failed attempts, retried or not.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter(
    "escalade_notifications",
    "Outbox messages by how their delivery ended",
    ["channel", "instance", "outcome"],
)
FAILED_ATTEMPTS = Counter(
    "escalade_notification_attempts_failed",
    "Failed delivery attempts (each retry counts)",
    ["channel", "instance"],
)
SEND_SECONDS = Histogram(
    "escalade_notification_send_seconds",
    "Time a channel took to hand one message to its provider",
    ["channel"],
)


def outcome_count(channel: str, instance: str, outcome: str) -> float:
    """The current value of one ``escalade_notifications_total`` series (for tests)."""
    wanted = {"channel": channel, "instance": instance, "outcome": outcome}
    for metric in NOTIFICATIONS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels == wanted:
                return float(sample.value)
    return 0.0
