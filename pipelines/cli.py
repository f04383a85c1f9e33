"""`onevision pipeline ...`: run the KFP pipelines locally, compile them, submit or schedule them on a cluster.

Registered in onevision/cli.py with `app.add_typer(pipeline_app, name="pipeline")`. kfp is imported inside
the commands, so `onevision --help` stays fast.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from onevision.cli_support import fail

from pipelines.submit import DEFAULT_DRIFT_CRON

TRAIN, DRIFT = "onevision-train", "onevision-drift"

pipeline_app = typer.Typer(
    help="Kubeflow Pipelines: `run --local` (kfp.local, this machine), `compile` (IR YAML), `submit`, `schedule`.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ParamOpt = Annotated[
    Optional[list[str]],
    typer.Option("--param", "-p", help="Pipeline argument KEY=VALUE (VALUE parsed as JSON when it is JSON); repeatable."),
]
PipelineOpt = Annotated[str, typer.Option("--pipeline", help=f"{TRAIN}, {DRIFT} or onevision-refresh (its "
                                                             "arguments as --param KEY=VALUE).")]




def _json_dict(flag: str, text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{flag} must be a JSON object such as '{{\"epochs\": 2}}': {exc}", 2)
    if not isinstance(value, dict):
        fail(f"{flag} must be a JSON object such as '{{\"epochs\": 2}}', got {text!r}", 2)
    return value


def parse_params(params: list[str] | None) -> dict[str, Any]:
    """KEY=VALUE pairs; VALUE is JSON when it parses (numbers, booleans, objects), else a string."""
    out: dict[str, Any] = {}
    for item in params or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--param {item!r} must look like KEY=VALUE", 2)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def train_arguments(
    data_uri: str | None = None, world_seed: int | None = None, world_config: str | None = None,
    preset: str | None = None, encoder_config: str | None = None, vrq_config: str | None = None,
    cascade_config: str | None = None, generator_config: str | None = None, eval_config: str | None = None,
    epsilon: float | None = None, canary_percent: int | None = None, storage_uri: str | None = None,
) -> dict[str, Any]:
    """The train pipeline's arguments from CLI flags; unset flags keep the pipeline's defaults."""
    values: dict[str, Any] = {
        "data_uri": data_uri, "world_seed": world_seed, "preset": preset, "epsilon": epsilon,
        "canary_percent": canary_percent, "storage_uri": storage_uri,
    }
    for name, text in (("world_config", world_config), ("encoder_config", encoder_config),
                       ("vrq_config", vrq_config), ("cascade_config", cascade_config),
                       ("generator_config", generator_config), ("eval_config", eval_config)):
        values[name] = _json_dict(f"--{name.replace('_', '-')}", text)
    return {k: v for k, v in values.items() if v is not None}


def _arguments(pipeline: str, train: dict[str, Any], params: list[str] | None) -> dict[str, Any]:
    if pipeline not in (TRAIN, DRIFT):
        fail(f"unknown pipeline {pipeline!r}; expected {TRAIN} or {DRIFT}", 2)
    if pipeline != TRAIN and train:
        fail(f"{', '.join('--' + k.replace('_', '-') for k in train)} only apply to {TRAIN}; use --param", 2)
    return {**train, **parse_params(params)}


DataUriOpt = Annotated[Optional[str], typer.Option("--data-uri", help="World to train on (path or s3://); default: generate one.")]
WorldSeedOpt = Annotated[Optional[int], typer.Option("--world-seed", help="Seed of the generated world.")]
WorldConfigOpt = Annotated[Optional[str], typer.Option("--world-config", help="JSON: WorldConfig fields, e.g. '{\"items\": 500}'.")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="Step configs: default | tiny (seconds, for smoke tests).")]
EncoderOpt = Annotated[Optional[str], typer.Option("--encoder-config", help="JSON: EncoderStepConfig overrides.")]
VrqOpt = Annotated[Optional[str], typer.Option("--vrq-config", help="JSON: VRQStepConfig overrides.")]
CascadeOpt = Annotated[Optional[str], typer.Option("--cascade-config", help="JSON: CascadeConfig overrides.")]
GeneratorOpt = Annotated[Optional[str], typer.Option("--generator-config", help="JSON: GeneratorTrainingConfig overrides.")]
EvalOpt = Annotated[Optional[str], typer.Option("--eval-config", help="JSON: EvalStepConfig overrides.")]
EpsilonOpt = Annotated[Optional[float], typer.Option("--epsilon", help="Parity gate: allowed relative shortfall (< 0: must win).")]
CanaryOpt = Annotated[Optional[int], typer.Option("--canary-percent", help="Traffic share of the new model (0-100).")]
StorageOpt = Annotated[Optional[str], typer.Option("--storage-uri", help="Model store prefix (local run: <out>/model-store).")]


@pipeline_app.command("run")
def run(
    local: Annotated[bool, typer.Option("--local", help="Run on this machine with kfp.local (SubprocessRunner).")] = False,
    out: Annotated[Path, typer.Option("--out", help="Run directory: every artifact, logs and summary.json.")] = Path("runs/local"),
    pipeline: PipelineOpt = TRAIN,
    data_uri: DataUriOpt = None,
    world_seed: WorldSeedOpt = None,
    world_config: WorldConfigOpt = None,
    preset: PresetOpt = None,
    encoder_config: EncoderOpt = None,
    vrq_config: VrqOpt = None,
    cascade_config: CascadeOpt = None,
    generator_config: GeneratorOpt = None,
    eval_config: EvalOpt = None,
    epsilon: EpsilonOpt = None,
    canary_percent: CanaryOpt = None,
    storage_uri: StorageOpt = None,
    param: ParamOpt = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse unchanged steps of earlier runs in --out.")] = True,
) -> None:
    """Run a pipeline end to end; locally the deploy step writes the InferenceService manifest and model store."""
    if not local:
        fail("only --local runs here; to run on a cluster use `onevision pipeline submit --host URL`", 2)
    from rich.console import Console

    from pipelines.compile import pipeline_graph
    from pipelines.display import ConsoleProgress, render_run
    from pipelines.local import run_local

    args = _arguments(pipeline, train_arguments(
        data_uri, world_seed, world_config, preset, encoder_config, vrq_config, cascade_config, generator_config,
        eval_config, epsilon, canary_percent, storage_uri), param)
    console = Console(file=sys.stdout)  # bound now: the run redirects sys.stdout into its log
    console.print(f"[bold]{pipeline}[/] with kfp.local → {out.absolute()}")
    result = run_local(out, args, pipeline=pipeline, listener=ConsoleProgress(console, pipeline_graph(pipeline)),
                       caching=cache)
    render_run(result, console)
    if not result.succeeded:
        fail(f"{pipeline} failed at {', '.join(result.failed_tasks) or 'an unknown task'} "
              f"(logs: {result.run_dir / 'logs'})")


@pipeline_app.command("compile")
def compile_(
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for the IR YAML (default: pipelines/compiled/).")] = None,
) -> None:
    """Compile every pipeline to KFP IR YAML (commit the files under pipelines/compiled/)."""
    from pipelines.compile import COMPILED_DIR, compile_all

    for path in compile_all(out or COMPILED_DIR):
        typer.echo(f"wrote {path}")


HostOpt = Annotated[str, typer.Option("--host", envvar="KF_PIPELINES_ENDPOINT", help="KFP API endpoint, e.g. http://localhost:8080.")]
NamespaceOpt = Annotated[Optional[str], typer.Option("--namespace", help="KFP profile namespace (multi-user installs).")]


@pipeline_app.command("submit")
def submit(
    host: HostOpt,
    experiment: Annotated[str, typer.Option("--experiment", help="Experiment to file the run under.")] = "onevision",
    run_name: Annotated[Optional[str], typer.Option("--run-name", help="Run name shown in the UI.")] = None,
    pipeline: PipelineOpt = TRAIN,
    data_uri: DataUriOpt = None,
    world_seed: WorldSeedOpt = None,
    world_config: WorldConfigOpt = None,
    preset: PresetOpt = None,
    encoder_config: EncoderOpt = None,
    vrq_config: VrqOpt = None,
    cascade_config: CascadeOpt = None,
    generator_config: GeneratorOpt = None,
    eval_config: EvalOpt = None,
    epsilon: EpsilonOpt = None,
    canary_percent: CanaryOpt = None,
    storage_uri: StorageOpt = None,
    param: ParamOpt = None,
    namespace: NamespaceOpt = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Let KFP reuse cached steps.")] = True,
) -> None:
    """Compile the pipeline from the current code and start a run on a KFP server."""
    from pipelines import submit as kfp_submit

    args = _arguments(pipeline, train_arguments(
        data_uri, world_seed, world_config, preset, encoder_config, vrq_config, cascade_config, generator_config,
        eval_config, epsilon, canary_percent, storage_uri), param)
    client = kfp_submit.make_client(host, namespace)
    done = kfp_submit.submit_run(client, pipeline, args, experiment=experiment, run_name=run_name,
                                 enable_caching=None if cache else False, namespace=namespace)
    typer.echo(f"submitted {pipeline} run {done.id} in experiment {experiment} at {host}")


@pipeline_app.command("schedule")
def schedule(
    host: HostOpt,
    cron: Annotated[str, typer.Option("--cron", help="KFP cron, 6 fields with seconds first.")] = DEFAULT_DRIFT_CRON,
    experiment: Annotated[str, typer.Option("--experiment", help="Experiment of the recurring run.")] = "onevision-monitoring",
    name: Annotated[str, typer.Option("--name", help="Recurring run name.")] = "onevision-drift",
    pipeline: PipelineOpt = DRIFT,
    param: ParamOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Create a recurring run (default: the drift report, hourly)."""
    from pipelines import submit as kfp_submit

    args = _arguments(pipeline, {}, param)
    client = kfp_submit.make_client(host, namespace)
    try:
        done = kfp_submit.schedule_run(client, pipeline, args, experiment=experiment, job_name=name, cron=cron,
                                       namespace=namespace)
    except ValueError as exc:
        fail(str(exc), 2)
    typer.echo(f"scheduled {pipeline} as recurring run {done.id} ({cron}) in experiment {experiment} at {host}")
