"""No personal data or secrets in logs: a logging filter that masks e-mail addresses,
phone numbers, API keys and bearer credentials in every record it sees, and the logging
set-up of ``serve`` and ``worker`` that puts it on every handler (uvicorn's access log
included: a query string can carry an address).

Masking covers the message and each value passed as an argument
(``log.info("to %s", recipient)``); numbers stay numbers, anything else is masked as its
text.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# international numbers (+…) and North American ones (555-123-4567, (555) 123 4567);
# dates and times (2026-03-02, 12:00:00) are neither
PHONE = re.compile(
    r"(?<![\w+])(?:\+|%2B)\d[\d\s().-]{5,}\d(?!\w)|(?<!\w)\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\w)"
)
API_KEY = re.compile(r"esk_[A-Za-z0-9_-]+")
BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    text = API_KEY.sub("esk_[secret]", text)
    text = BEARER.sub(lambda m: f"{m.group(1)} [secret]", text)
    text = EMAIL.sub("[email]", text)
    return PHONE.sub("[phone]", text)


class RedactPersonalData(logging.Filter):
    """Masks personal data and secrets in a record's message and in each of its arguments,
    keeping the arguments' shape (uvicorn's access formatter unpacks them); never drops a
    record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        else:
            record.msg = redact(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        return True


def _masked(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))


def protect_handlers(*loggers: logging.Logger) -> None:
    """Put the filter on every handler of these loggers (the root logger by default)."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if not any(isinstance(f, RedactPersonalData) for f in handler.filters):
                handler.addFilter(RedactPersonalData())


def serve_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the filter on every handler, and Escalade's
    own loggers (notifications, the engine) written through the same handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactPersonalData}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    config["loggers"]["escalade"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
