"""`onevision serve ...`: package a bundle for KServe/TorchServe and run the model servers locally.

Registered in onevision/cli.py with ``app.add_typer(serve_app, name="serve")``. torch, TorchServe and
kserve are imported inside the commands.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from onevision.cli_support import fail

from onevision.service.limits import ServiceLimits

LIMITS = ServiceLimits()  # the kserve command's defaults
serve_app = typer.Typer(
    help="Package a model bundle as a TorchServe archive in KServe's layout; serve it locally (TorchServe or kserve.Model).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

STATE_FILE = "server.json"




@serve_app.command("build")
def build(
    bundle: Annotated[Path, typer.Option("--bundle", help="Model bundle directory (bundle.json inside).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write config/ + model-store/ (+ parity.json).")],
    upload_to: Annotated[Optional[str], typer.Option("--upload-to", help="Also upload the layout to this s3:// URI or directory (the storageUri).")] = None,
    parity: Annotated[Optional[Path], typer.Option("--parity", help="The parity report this model passed; copied to OUT/parity.json.")] = None,
    model_name: Annotated[str, typer.Option("--model-name", help="Name the model is served under.")] = "onevision",
    version: Annotated[str, typer.Option("--version", help="Model version in the archive.")] = "1.0",
    envelope: Annotated[str, typer.Option("--envelope", help="Default service envelope: kservev2 | kserve | body (KServe overrides it with TS_SERVICE_ENVELOPE).")] = "kservev2",
    allow_failed_parity: Annotated[bool, typer.Option("--allow-failed-parity", help="Package even though the parity report failed; the manifest records the override.")] = False,
) -> None:
    """Build <model-name>.mar (handler + bundle) and KServe's PyTorch-runtime layout.

    With --parity, the report must have judged this very bundle (its content digest) and passed."""
    from serving.archive import ArchiveError, build_archive

    try:
        result = build_archive(bundle, out, model_name=model_name, version=version, parity_path=parity,
                               envelope=envelope, upload_to=upload_to, allow_failed_parity=allow_failed_parity)
    except (ArchiveError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    kind = result.manifest["bundle"]["kind"]
    typer.echo(f"{kind} bundle packaged: {result.mar_path}\nconfig: {result.config_path}")
    if result.parity_path:
        verdict = result.manifest["parity"]
        typer.echo(f"parity: {result.parity_path} (passed={verdict['passed']}"
                   + (", packaged by --allow-failed-parity" if verdict["override"] else "") + ")")
    if result.uploaded_to:
        typer.echo(f"uploaded to {result.uploaded_to}")


def _combined_store(stores: list[Path], workdir: Path) -> Path:
    """One model store with the .mar files of every given store (or layout dir) linked side by side."""
    from serving.ts_config import read_mar_model

    combined = workdir / "model-store"
    combined.mkdir(parents=True, exist_ok=True)
    names: dict[str, Path] = {}
    for store in stores:
        store = store / "model-store" if (store / "model-store").is_dir() else store
        mars = sorted(store.glob("*.mar"))
        if not mars:
            fail(f"no .mar file in {store}")
        for mar in mars:
            name = read_mar_model(mar).name
            if name in names:
                fail(f"two archives register as model {name!r} ({names[name]} and {mar}); build one of them with "
                      "`onevision serve build --model-name ...` to serve them side by side")
            names[name] = mar
            (combined / mar.name).symlink_to(mar.resolve())
    return combined


def _feature_env(repo: Path | None, timeout_ms: int | None) -> dict[str, str]:
    """The handler's environment for Feast user features (onevision.featurestore.live.FeastFeatures.from_env)."""
    from onevision.featurestore.live import FEATURE_REPO_ENV, FEATURE_TIMEOUT_ENV
    from onevision.featurestore.repo import FeatureRepoConfig

    if repo is None:
        return {}
    try:
        FeatureRepoConfig.load(repo)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"--feature-repo: {exc}")
    env = {FEATURE_REPO_ENV: str(repo.resolve())}
    if timeout_ms is not None:
        env[FEATURE_TIMEOUT_ENV] = str(timeout_ms)
    return env


@serve_app.command("local")
def local(
    model_store: Annotated[list[Path], typer.Option("--model-store", help="Model store or layout dir; repeat to serve two models side by side (A/B).")],
    port: Annotated[int, typer.Option("--port", help="Inference port on 127.0.0.1 (management/metrics: free ports).")] = 8085,
    envelope: Annotated[str, typer.Option("--envelope", help="kservev2 (v2 /infer) | kserve (v1 :predict) | body (raw images on /predictions).")] = "kservev2",
    workers: Annotated[int, typer.Option("--workers", help="Workers per model.")] = 1,
    foreground: Annotated[bool, typer.Option("--foreground", help="Stay attached; Ctrl-C stops the server.")] = False,
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="Logs, config and state (default: a new temp dir).")] = None,
    feature_repo: Annotated[Optional[Path], typer.Option("--feature-repo", help="Feast repo to read user features from (`onevision features materialize`); default: each bundle's frozen snapshot.")] = None,
    feature_timeout_ms: Annotated[Optional[int], typer.Option("--feature-timeout-ms", help="Deadline of one online feature read (default: the repo config's).")] = None,
) -> None:
    """Start TorchServe on 127.0.0.1 with the given archives and print their URLs."""
    from serving.processes import ServerStartError, start_torchserve

    workdir = (workdir or Path(tempfile.mkdtemp(prefix="onevision-serve-"))).resolve()  # TorchServe needs absolute paths
    try:
        store = _combined_store(model_store, workdir)  # reads every .mar's manifest: a truncated one is named here
        server = start_torchserve(store, envelope=envelope, port=port, workdir=workdir, workers=workers,
                                  extra_env=_feature_env(feature_repo, feature_timeout_ms))
    except (ServerStartError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    state = {"pgid": server.server.process.pid, "ports": list(server.server.ports), "models": server.model_names,
             "inference": server.inference_url, "management": server.management_url, "metrics": server.metrics_url}
    (workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    typer.echo(f"TorchServe ready (envelope {envelope}); logs in {workdir / 'logs'}")
    for name in server.model_names:
        for protocol, url in server.urls(name).items():
            typer.echo(f"  {name:>16} {protocol:>3}: {url}")
    typer.echo(f"  management: {server.management_url}   metrics: {server.metrics_url}/metrics")
    if not foreground:
        typer.echo(f"stop with: onevision serve stop --workdir {workdir}")
        return
    try:
        while server.server.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        typer.echo("stopping TorchServe ...")
    finally:
        server.stop()


@serve_app.command("stop")
def stop(workdir: Annotated[Path, typer.Option("--workdir", help="The --workdir of `onevision serve local`.")]) -> None:
    """Stop a server started by `onevision serve local` (its whole process group) and wait for its ports."""
    from serving.processes import port_open

    state_path = workdir / STATE_FILE
    if not state_path.exists():
        fail(f"no server state in {state_path}")
    state = json.loads(state_path.read_text())
    try:
        os.killpg(int(state["pgid"]), signal.SIGTERM)
    except ProcessLookupError:
        typer.echo("server already stopped")
    deadline = time.monotonic() + 30
    while any(port_open(p) for p in state["ports"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    state_path.unlink()
    typer.echo("stopped")


@serve_app.command("kserve")
def kserve_server(
    model_dir: Annotated[str, typer.Option("--model-dir", help="Bundle dir, layout dir (model-store/*.mar) or s3:// URI.")],
    model_name: Annotated[str, typer.Option("--model-name", help="Name on the endpoint path.")] = "onevision",
    port: Annotated[int, typer.Option("--port", help="HTTP port (KServe binds all interfaces).")] = 8080,
    max_image_bytes: Annotated[int, typer.Option(help="Largest encoded image accepted (413 above).")] = LIMITS.max_image_bytes,
    max_batch: Annotated[int, typer.Option(help="Most instances per request (413 above).")] = LIMITS.max_batch,
    max_top_k: Annotated[int, typer.Option(help="Largest top_k accepted (400 above).")] = LIMITS.max_top_k,
    feature_repo: Annotated[Optional[Path], typer.Option("--feature-repo", help="Feast repo to read user features from; default: the bundle's frozen snapshot.")] = None,
    feature_timeout_ms: Annotated[Optional[int], typer.Option("--feature-timeout-ms", help="Deadline of one online feature read (default: the repo config's).")] = None,
) -> None:
    """Serve the bundle with the kserve.Model predictor (v1 and v2 on one port) in the foreground."""
    from serving.kserve_main import main

    features = [] if feature_repo is None else ["--feature_repo", str(feature_repo)]
    if feature_repo is not None and feature_timeout_ms is not None:
        features += ["--feature_timeout_ms", str(feature_timeout_ms)]
    main(["--model_name", model_name, "--model_dir", model_dir, "--http_port", str(port), "--enable_grpc", "false",
          "--max_image_bytes", str(max_image_bytes), "--max_batch", str(max_batch), "--max_top_k", str(max_top_k),
          *features])
