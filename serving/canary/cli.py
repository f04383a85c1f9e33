"""`onevision canary ...`: canary rollout of the model server on KServe.

Registered in onevision/cli.py with `app.add_typer(canary_app, name="canary")`. The KServe SDK and
the kubernetes client are imported on first cluster call only, so `--help` and `--dry-run --current`
stay fast and need no kubeconfig.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from onevision.cli_support import fail
import yaml

from serving.canary.client import IsvcClient, KServeIsvcClient
from serving.canary.errors import CanaryError
from serving.canary.mode import DeploymentMode, detect_mode, parse_cli_mode, resolve_mode
from serving.canary.patches import DeployRequest
from serving.canary.rollout import Action, Target, execute, plan_deploy, plan_promote, plan_rollback
from serving.canary.status import predictor_route_name, read_status, render_status

DEFAULT_NAME = "onevision"
DEFAULT_NAMESPACE = "onevision"

# Tests may swap this for a factory of a fake client.
make_client: Callable[[], IsvcClient] = KServeIsvcClient

canary_app = typer.Typer(
    help=(
        "Canary rollout of the model server on KServe: Knative revisions (canaryTrafficPercent) or "
        "Standard-mode canaries (spec.canary, split by the Gateway API HTTPRoute)."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

NameOpt = Annotated[str, typer.Option("--name", help="InferenceService name.")]
NamespaceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--namespace",
        "-n",
        envvar="ONEVISION_NAMESPACE",
        help=f"Namespace (default: the --current file's, else {DEFAULT_NAMESPACE}).",
    ),
]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        help="serverless (Knative) | raw (Standard/RawDeployment) | auto: read it from the InferenceService.",
    ),
]
CurrentOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--current",
        exists=True,
        dir_okay=False,
        help="Saved InferenceService (`kubectl get isvc NAME -o yaml`) to plan against instead of reading "
        "the cluster; only with --dry-run.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the exact patch or object (YAML) instead of sending it.")]


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except CanaryError as exc:
        fail(str(exc))


def _load_current(path: Path, name: str) -> dict[str, Any]:
    try:
        isvc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CanaryError(f"--current {path} is not YAML: {exc}") from exc
    if not isinstance(isvc, dict) or isvc.get("kind") != "InferenceService":
        raise CanaryError(f"--current {path} must hold one InferenceService object (kubectl get isvc {name} -o yaml)")
    found = (isvc.get("metadata") or {}).get("name")
    if found != name:
        raise CanaryError(f"--current {path} holds InferenceService {found!r}, but --name is {name!r}")
    return isvc


def _target(name: str, namespace: str | None, current: dict[str, Any] | None) -> Target:
    file_namespace = ((current or {}).get("metadata") or {}).get("namespace")
    if namespace and file_namespace and namespace != file_namespace:
        raise CanaryError(f"--namespace {namespace} differs from the --current file's namespace {file_namespace}")
    return Target(name, namespace or file_namespace or DEFAULT_NAMESPACE)


def _state(
    name: str, namespace: str | None, current_file: Path | None, *, file_allowed: bool, needed: bool
) -> tuple[Target, dict[str, Any] | None, IsvcClient]:
    """The target, the current object (from the file, else the cluster when `needed`) and a lazy client."""
    client = make_client()
    if current_file is not None:
        if not file_allowed:
            raise CanaryError("--current plans against a saved object; it is only allowed with --dry-run")
        current = _load_current(current_file, name)
        return _target(name, namespace, current), current, client
    target = _target(name, namespace, None)
    return target, (client.get(target.name, target.namespace) if needed else None), client


def _required(live: dict[str, Any] | None) -> dict[str, Any]:
    if live is None:  # _state(needed=True) always reads one; kept for the type checker
        raise CanaryError("the current InferenceService could not be read")
    return live


def _apply_or_print(action: Action, client: IsvcClient, dry_run: bool) -> None:
    if dry_run:
        typer.echo(action.render(), nl=False)
        return
    result = execute(action, client)
    generation = (result or {}).get("metadata", {}).get("generation")
    typer.echo(f"{action.verb} of InferenceService {action.target.name} sent (generation {generation}): {action.summary}")
    for note in action.notes:
        typer.echo(f"note: {note}")
    typer.echo(
        f"next: onevision canary wait --name {action.target.name} -n {action.target.namespace}, "
        "then `onevision canary status`"
    )


def _require_published(storage_uri: str) -> None:
    from onevision.storage import ArtifactStoreError, open_store

    try:
        open_store(storage_uri).require_published()
    except ArtifactStoreError as exc:
        raise CanaryError(f"deploy of {storage_uri} refused: {exc}") from None


@canary_app.command("deploy")
def deploy(
    storage_uri: Annotated[str, typer.Option("--storage-uri", help="Model to canary, e.g. s3://onevision-models/generator/v4.")],
    percent: Annotated[int, typer.Option("--percent", min=0, max=100, help="Share of traffic for the canary (0 = dark launch).")],
    name: NameOpt = DEFAULT_NAME,
    namespace: NamespaceOpt = None,
    mode: ModeOpt = "auto",
    tag_routing: Annotated[
        bool,
        typer.Option("--tag-routing", help="Knative: add serving.kserve.io/enable-tag-routing for latest-/prev- URLs."),
    ] = False,
    canary_name: Annotated[
        Optional[str], typer.Option("--canary-name", help="Standard mode: predictor.name of the canary (default: from the URI).")
    ] = None,
    canary_replicas: Annotated[
        Optional[int], typer.Option("--canary-replicas", help="Standard mode: canary replicas (default: KServe's share).")
    ] = None,
    current: CurrentOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Start a canary of --storage-uri with --percent of the traffic, or change the percent of the running one."""
    with _refusals():
        requested = parse_cli_mode(mode)
        request = DeployRequest(storage_uri, percent, tag_routing, canary_name, canary_replicas)
        if not dry_run:  # KServe would load whatever is there: refuse a version whose upload did not finish
            _require_published(storage_uri)
        # A Knative deploy patch needs no state, so `--dry-run --mode serverless` works without a cluster.
        needed = not (dry_run and requested is DeploymentMode.KNATIVE)
        target, live, client = _state(name, namespace, current, file_allowed=dry_run, needed=needed)
        resolved = resolve_mode(requested, live)
        route_exists = None
        if resolved is DeploymentMode.STANDARD and percent > 0 and current is None:
            route_exists = client.get_httproute(predictor_route_name(target.name), target.namespace) is not None
        _apply_or_print(plan_deploy(target, request, resolved, live, route_exists), client, dry_run)


@canary_app.command("promote")
def promote(
    parity: Annotated[
        Optional[str],
        typer.Option("--parity", help="Parity report (path or URI); default: parity.json or parity/parity.json under the canary's storage URI."),
    ] = None,
    canary: Annotated[Optional[str], typer.Option("--canary", help="Standard mode: which canary, if several.")] = None,
    name: NameOpt = DEFAULT_NAME,
    namespace: NamespaceOpt = None,
    current: CurrentOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Give the canary all traffic, if a passing parity report exists for its model (replace, not patch)."""
    with _refusals():
        target, live, client = _state(name, namespace, current, file_allowed=dry_run, needed=True)
        live = _required(live)
        action, _ = plan_promote(target, detect_mode(live), live, parity=parity, canary=canary)
        _apply_or_print(action, client, dry_run)


@canary_app.command("rollback")
def rollback(
    name: NameOpt = DEFAULT_NAME,
    namespace: NamespaceOpt = None,
    mode: ModeOpt = "auto",
    current: CurrentOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Send all traffic back to the stable model (Knative: canaryTrafficPercent 0; Standard: spec.canary emptied)."""
    with _refusals():
        requested = parse_cli_mode(mode)
        needed = not (dry_run and requested is not None)  # both rollback patches need no state
        target, live, client = _state(name, namespace, current, file_allowed=dry_run, needed=needed)
        _apply_or_print(plan_rollback(target, resolve_mode(requested, live), live), client, dry_run)


@canary_app.command("status")
def status(
    name: NameOpt = DEFAULT_NAME,
    namespace: NamespaceOpt = None,
    current: CurrentOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text | yaml")] = "text",
) -> None:
    """Revisions, canaries and the traffic split that is actually in effect."""
    with _refusals():
        if output not in ("text", "yaml"):
            raise CanaryError(f"--output must be text or yaml, got {output!r}")
        target, live, client = _state(name, namespace, current, file_allowed=True, needed=True)
        live = _required(live)
        mode = detect_mode(live)
        route, route_known = None, current is None
        if mode is DeploymentMode.STANDARD and route_known:
            route = client.get_httproute(predictor_route_name(target.name), target.namespace)
        state = read_status(live, mode, route, route_known)
        typer.echo(render_status(state) if output == "text" else yaml.safe_dump(state.to_dict(), sort_keys=False))


@canary_app.command("wait")
def wait(
    name: NameOpt = DEFAULT_NAME,
    namespace: NamespaceOpt = None,
    timeout: Annotated[int, typer.Option("--timeout", min=1, help="Seconds to wait.")] = 600,
    poll: Annotated[int, typer.Option("--poll", min=1, help="Seconds between checks.")] = 10,
) -> None:
    """Wait until the controller has observed the current generation and the InferenceService is Ready."""
    with _refusals():
        target, live, client = _state(name, namespace, None, file_allowed=False, needed=True)
        generation = (_required(live).get("metadata") or {}).get("generation")
        client.wait_ready(target.name, target.namespace, timeout_s=timeout, poll_s=poll, expected_generation=generation)
        typer.echo(f"InferenceService {target.name} is ready at generation {generation}")
