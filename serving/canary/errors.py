"""Errors of the canary tool. Each message says what is wrong and what to do instead."""
from __future__ import annotations


class CanaryError(Exception):
    """A rollout step was refused or failed."""


class TrafficSplitUnavailableError(CanaryError):
    """The requested traffic split would not happen on this InferenceService."""


class ParityGateError(CanaryError):
    """Promotion refused: no passing parity report for the model being promoted."""
