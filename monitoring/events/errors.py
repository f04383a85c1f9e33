"""The one error a bad event raises: a stable `reason` (the metric label) and a message naming the problem."""
from __future__ import annotations


class EventRejected(ValueError):
    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(message)
        self.reason = reason
        self.status = status
