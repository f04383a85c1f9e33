"""Event times as the sink stores them: timezone-aware UTC datetimes (timestamp[us, UTC] columns)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from monitoring.events.errors import EventRejected


def now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: Any, field: str) -> datetime:
    """RFC 3339 text (CloudEvents `time`; a trailing Z is accepted) or epoch seconds (a number)."""
    if isinstance(value, bool):
        raise EventRejected("bad_time", f"{field} must be an RFC 3339 time or epoch seconds, got a boolean")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise EventRejected("bad_time", f"{field}={value!r} is out of range for epoch seconds") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise EventRejected("bad_time", f"{field}={value!r} is not an RFC 3339 time (e.g. 2024-05-01T12:00:00Z)") from None
        if parsed.tzinfo is None:
            raise EventRejected("bad_time", f"{field}={value!r} has no UTC offset; expected e.g. 2024-05-01T12:00:00Z")
        return parsed.astimezone(timezone.utc)
    raise EventRejected("bad_time", f"{field} must be an RFC 3339 time or epoch seconds, got {type(value).__name__}")
