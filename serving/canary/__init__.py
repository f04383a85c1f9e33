"""Canary rollout of the OneVision model server on KServe 0.21 (see patches.py for the semantics)."""
from serving.canary.errors import CanaryError, ParityGateError, TrafficSplitUnavailableError
from serving.canary.mode import DeploymentMode, detect_mode, resolve_mode
from serving.canary.parity import ParityVerdict, read_parity, require_passing_parity
from serving.canary.patches import (
    DeployRequest,
    canary_name_for,
    deploy_patch,
    promote_object,
    promoted_storage_uri,
    rollback_patch,
)
from serving.canary.rollout import Action, Target, execute, plan_deploy, plan_promote, plan_rollback
from serving.canary.status import RolloutStatus, read_status, render_status

__all__ = [
    "Action", "CanaryError", "DeployRequest", "DeploymentMode", "ParityGateError", "ParityVerdict", "RolloutStatus",
    "Target", "TrafficSplitUnavailableError", "canary_name_for", "deploy_patch", "detect_mode", "execute",
    "plan_deploy", "plan_promote", "plan_rollback", "promote_object", "promoted_storage_uri", "read_parity",
    "read_status", "render_status", "require_passing_parity", "resolve_mode", "rollback_patch",
]
