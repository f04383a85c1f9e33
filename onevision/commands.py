"""`onevision train …` and `onevision evaluate …`: each reads and writes artifacts through the
artifact store (a local path or s3://bucket/prefix)."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from onevision.cli_support import fail, input_path, output_path
from onevision.evaluation.parity import ParityGate
from onevision.generator.options import DecodeOptions
from onevision.steps import StepConfigs
from onevision.trainjob.config import TRAINERS, TrainJobConfig

if TYPE_CHECKING:
    from onevision.distributed import ProcessGroup

DEFAULTS = StepConfigs()  # every option's default is its config's (onevision.steps)
JOB = TrainJobConfig()  # the defaults of the TrainJob options
train_app = typer.Typer(help="Train the encoder, VRQ, the cascade baseline and the generator stages.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate model bundles and run the parity gate.", no_args_is_help=True,
                           invoke_without_command=False)


def _echo_json(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# Where a training command runs, shared by `train encoder` and `train generator`.
NPROC = typer.Option(1, "--nproc", min=1, help="Ranks: local torchrun ranks (--trainer local), or processes per node "
                     "(--trainer kubeflow). Data parallel with torch.distributed (gloo on CPU, nccl on GPU).")
TRAINER = typer.Option("local", help="local: this machine (under torchrun when --nproc > 1); kubeflow: a Kubeflow "
                       "Trainer TrainJob on the cluster, artifacts as s3:// URIs.")
NODES = typer.Option(JOB.nodes, min=1, help="TrainJob nodes (--trainer kubeflow).")
CPU = typer.Option(JOB.cpu, help="TrainJob CPU per node (requests = limits).")
MEMORY = typer.Option(JOB.memory, help="TrainJob memory per node.")
GPU = typer.Option(JOB.gpu, min=0, help="TrainJob GPUs per node (nvidia.com/gpu); use --nproc GPUS.")
IMAGE = typer.Option(None, help="TrainJob image (default: $ONEVISION_IMAGE, else the release image).")
RUNTIME = typer.Option(JOB.runtime, help="ClusterTrainingRuntime of the TrainJob (docs/training.md).")
NAMESPACE = typer.Option(JOB.namespace, help="TrainJob namespace (default: the kube-config context's).")
S3_ENDPOINT = typer.Option(JOB.s3_endpoint, help="S3 endpoint of the TrainJob's nodes (MinIO); empty for AWS.")
S3_SECRET = typer.Option(JOB.s3_secret, help="Secret with the nodes' S3 credentials (awsAccessKeyID, awsSecretAccessKey).")
JOB_TIMEOUT = typer.Option(JOB.timeout_s, help="Seconds to wait for the TrainJob.")
DRY_RUN = typer.Option(False, "--dry-run", help="With --trainer kubeflow: print the TrainJob as YAML, submit nothing.")
CONFIG_JSON = typer.Option(None, "--config", help="JSON object of the step's config fields (nested configs as objects), "
                           "laid over the other options: how a pipeline task passes its whole config to a TrainJob.")
LAUNCH_OPTIONS = {"nproc", "trainer", "nodes", "cpu", "memory", "gpu", "image", "runtime", "namespace", "s3_endpoint",
                  "s3_secret", "job_timeout", "dry_run"}


def _command_args(ctx: typer.Context) -> list[str]:
    """This command's arguments as given, without the options that say where it runs: what each rank or
    TrainJob node runs."""
    names, c = [], ctx
    while c.parent is not None:
        names.append(c.info_name)
        c = c.parent
    args = names[::-1]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in LAUNCH_OPTIONS or value is None or param.param_type_name != "option":
            continue
        if param.is_flag and param.secondary_opts:
            args.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            args += [param.opts[0]] if value else []
        else:
            args += [param.opts[0], str(value)]
    return args


def _launched(ctx: typer.Context, artifacts: dict[str, Optional[str]], nproc: int, trainer: str, dry_run: bool,
              job: dict) -> bool:
    """Start the command elsewhere when asked: as a TrainJob (--trainer kubeflow), or under torchrun on
    `nproc` local ranks. False: run it in this process (alone, or as one rank torchrun started)."""
    from onevision.distributed import launched_by_torchrun

    if trainer not in TRAINERS:
        fail(f"--trainer must be one of {'|'.join(TRAINERS)}, got {trainer!r}", 2)
    if trainer == "kubeflow":
        _trainjob(_command_args(ctx), artifacts, dry_run, dataclasses.replace(JOB.replace(**job), procs_per_node=nproc))
        return True
    if dry_run:
        fail("--dry-run prints a TrainJob: it needs --trainer kubeflow", 2)
    if nproc > 1 and not launched_by_torchrun():
        from onevision.torchrun import RankFailure, run_local

        try:
            run_local(nproc, _command_args(ctx))
        except RankFailure as exc:
            fail(f"{nproc}-rank run failed: {exc}", exc.exit_code if exc.exit_code > 0 else 1)
        return True
    return False


def _trainjob(args: list[str], artifacts: dict[str, Optional[str]], dry_run: bool, config: TrainJobConfig) -> None:
    from onevision.trainjob.build import NotInObjectStoreError, build_trainjob, require_store_uri, to_yaml

    try:
        for what, uri in artifacts.items():
            if uri is not None:
                require_store_uri(uri, what)
    except NotInObjectStoreError as exc:
        fail(str(exc), 2)
    if dry_run:
        typer.echo(to_yaml(build_trainjob(args, config)), nl=False)
        return
    from onevision.trainjob.submit import TrainJobFailed, run_trainjob

    try:
        name = run_trainjob(args, config, echo=typer.echo)
    except (TrainJobFailed, TimeoutError, RuntimeError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"TrainJob {name} completed")


def _with_json(config, text: Optional[str], flag: str = "--config"):
    """`config` with the fields of the JSON object `text`; unknown keys are a usage error naming the valid ones."""
    if not text:
        return config
    try:
        return _replaced(config, json.loads(text), flag)
    except json.JSONDecodeError as exc:
        fail(f"{flag} must be a JSON object: {exc}", 2)
    except (TypeError, ValueError) as exc:
        fail(str(exc), 2)


def _replaced(config, values, what: str):
    if not isinstance(values, dict):
        raise ValueError(f"{what} must be a JSON object, got {values!r}")
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; expected some of {sorted(fields)}")
    changes = {}
    for key, value in values.items():
        current = getattr(config, key)
        changes[key] = (_replaced(current, value, f"{what}.{key}") if dataclasses.is_dataclass(current)
                        else tuple(value) if isinstance(value, list) else value)
    return dataclasses.replace(config, **changes)


@contextlib.contextmanager
def _rank_output(out: str, group: ProcessGroup) -> Iterator[Path]:
    """Rank 0 writes `out`; the other ranks write nothing, so they get a scratch directory."""
    if group.is_main:
        with output_path(out) as out_dir:
            yield out_dir
        return
    with tempfile.TemporaryDirectory(prefix=f"onevision-rank{group.rank}-") as tmp:
        yield Path(tmp)


def _job_options(nodes: int, cpu: str, memory: str, gpu: int, image: Optional[str], runtime: str,
                 namespace: Optional[str], s3_endpoint: str, s3_secret: str, job_timeout: int) -> dict:
    return {"nodes": nodes, "cpu": cpu, "memory": memory, "gpu": gpu, "image": image, "runtime": runtime,
            "namespace": namespace, "s3_endpoint": s3_endpoint, "s3_secret": s3_secret, "timeout_s": job_timeout}


@train_app.command("encoder")
def train_encoder(
    ctx: typer.Context,
    world: str = typer.Option(..., help="World directory or URI."),
    out: str = typer.Option(..., help="Output directory or URI for the encoder."),
    epochs: int = typer.Option(DEFAULTS.encoder.train.epochs, help="Training epochs."),
    embed_dim: int = typer.Option(DEFAULTS.encoder.model.embed_dim, help="Embedding width."),
    items_per_batch: int = typer.Option(DEFAULTS.encoder.train.items_per_batch, help="Products per batch (whole near-duplicate families)."),
    lr: float = typer.Option(DEFAULTS.encoder.train.lr, help="Peak learning rate."),
    seed: int = typer.Option(DEFAULTS.encoder.train.seed, help="Random seed."),
    nproc: int = NPROC, trainer: str = TRAINER, nodes: int = NODES, cpu: str = CPU, memory: str = MEMORY,
    gpu: int = GPU, image: Optional[str] = IMAGE, runtime: str = RUNTIME, namespace: Optional[str] = NAMESPACE,
    s3_endpoint: str = S3_ENDPOINT, s3_secret: str = S3_SECRET, job_timeout: int = JOB_TIMEOUT, dry_run: bool = DRY_RUN,
    config: Optional[str] = CONFIG_JSON,
) -> None:
    """Train the image encoder with a multi-view contrastive + circle loss; writes catalogue features too.
    With --nproc N each of N ranks trains its own family batches and DDP averages them (an N-times larger batch)."""
    from onevision import steps
    from onevision.distributed import process_group

    cfg = steps.EncoderStepConfig(
        dataclasses.replace(DEFAULTS.encoder.model, embed_dim=embed_dim),
        dataclasses.replace(DEFAULTS.encoder.train, epochs=epochs, items_per_batch=items_per_batch, lr=lr, seed=seed))
    cfg = _with_json(cfg, config)  # checked here, before a launch elsewhere
    job = _job_options(nodes, cpu, memory, gpu, image, runtime, namespace, s3_endpoint, s3_secret, job_timeout)
    if _launched(ctx, {"world": world, "output": out}, nproc, trainer, dry_run, job):
        return
    with process_group() as group, _rank_output(out, group) as out_dir:
        result = steps.train_encoder_step(input_path(world), out_dir, cfg, group=group)
    if group.is_main:
        typer.echo(f"encoder written to {out} in {result.seconds:.0f}s; loss per epoch: {result.losses}")


@train_app.command("vrq")
def train_vrq(
    world: str = typer.Option(..., help="World directory or URI."),
    encoder: str = typer.Option(..., help="Encoder directory or URI."),
    out: str = typer.Option(..., help="Output directory or URI for the VRQ artifact."),
    codebook_sizes: str = typer.Option(",".join(map(str, DEFAULTS.vrq.quantizer.codebook_sizes)), help="Codes per level, comma separated."),
    aligned_levels: int = typer.Option(DEFAULTS.vrq.quantizer.aligned_levels, help="Shallow levels aligned across views."),
    category_partition: bool = typer.Option(DEFAULTS.vrq.quantizer.category_partition, help="Partition level-0 codes by category."),
    rotate_last: bool = typer.Option(DEFAULTS.vrq.quantizer.rotate_last, help="OPQ-style rotation of the deepest residual."),
    attribute_level: int = typer.Option(
        -1 if DEFAULTS.vrq.quantizer.attribute_level is None else DEFAULTS.vrq.quantizer.attribute_level, help="Level coded by the item's brand x price band, what preferences act on (-1: a purely visual SID)."),
    baselines: bool = typer.Option(DEFAULTS.vrq.compare_baselines, help="Also fit RQ-KMeans and plain RQ-VAE for the report."),
    seed: int = typer.Option(DEFAULTS.vrq.quantizer.seed, help="Random seed."),
) -> None:
    """Quantise items into semantic IDs with VRQ; report view consistency, collisions, utilisation."""
    from onevision import steps

    try:
        sizes = tuple(int(s) for s in codebook_sizes.split(","))
    except ValueError:
        fail(f"--codebook-sizes must be comma-separated integers, got {codebook_sizes!r}", 2)
    try:
        quantizer = dataclasses.replace(DEFAULTS.vrq.quantizer, codebook_sizes=sizes, aligned_levels=aligned_levels,
                                        category_partition=category_partition, rotate_last=rotate_last,
                                        attribute_level=None if attribute_level < 0 else attribute_level, seed=seed)
    except ValueError as exc:
        fail(str(exc), 2)
    cfg = steps.VRQStepConfig(quantizer, compare_baselines=baselines)
    with output_path(out) as out_dir:
        result = steps.train_vrq_step(input_path(world), input_path(encoder), out_dir, cfg)
    typer.echo(result.report["table"])
    typer.echo(f"VRQ written to {out} in {result.seconds:.0f}s")


@train_app.command("cascade")
def train_cascade(
    world: str = typer.Option(..., help="World directory or URI."),
    encoder: str = typer.Option(..., help="Encoder directory or URI."),
    out: str = typer.Option(..., help="Output directory or URI for the cascade."),
    recall_n: Optional[int] = typer.Option(None, help="ANN recall candidates (default: CascadeConfig.recall_n)."),
    prerank_m: Optional[int] = typer.Option(None, help="Candidates kept by the pre-ranker (default: CascadeConfig.prerank_m)."),
    seed: int = typer.Option(DEFAULTS.cascade.seed, help="Random seed."),
) -> None:
    """Train the cascade baseline: ANN recall → pre-rank → personalised rank."""
    from onevision import steps
    from onevision.cascade import CascadeConfig

    given = {"recall_n": recall_n, "prerank_m": prerank_m}
    cfg = CascadeConfig(seed=seed, **{k: v for k, v in given.items() if v is not None})
    with output_path(out) as out_dir:
        result = steps.train_cascade_step(input_path(world), input_path(encoder), out_dir, cfg)
    typer.echo(f"cascade written to {out} in {result.seconds:.0f}s")


@train_app.command("generator")
def train_generator(
    ctx: typer.Context,
    world: str = typer.Option(..., help="World directory or URI."),
    encoder: str = typer.Option(..., help="Encoder directory or URI."),
    vrq: str = typer.Option(..., help="VRQ directory or URI."),
    out: str = typer.Option(..., help="Output directory or URI for this stage."),
    stage: int = typer.Option(1, min=1, max=3, help="1 visual alignment, 2 personalisation, 3 preference (DPO)."),
    init: Optional[str] = typer.Option(None, help="Previous stage's directory (stages 2 and 3)."),
    reward: Optional[str] = typer.Option(
        None, help="Stage 3: a trained cascade (directory or URI) whose ranker scores the model's own beam lists "
                   "(needed unless --preferences logged)."),
    preferences: Optional[str] = typer.Option(
        None, help="Stage 3's preference lists: reward | logged (default: GeneratorTrainingConfig.preferences)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs for this stage (default per stage)."),
    lr: float = typer.Option(DEFAULTS.generator.lr, help="Learning rate (stages 1-2)."),
    user_tokens: Optional[bool] = typer.Option(
        None, help="Free user tokens in the encoder from stage 2 (default: GeneratorTrainingConfig.user_tokens)."),
    affinity_scorer: Optional[bool] = typer.Option(
        None, help="User x attribute term at the SID's attribute level (default: GeneratorTrainingConfig.affinity_scorer)."),
    category_scorer: Optional[bool] = typer.Option(
        None, help="User x category term at SID level 0 (default: GeneratorTrainingConfig.category_scorer)."),
    dpo_beta: Optional[float] = typer.Option(None, help="Stage-3 DPO beta (default: GeneratorTrainingConfig.dpo_beta)."),
    dropout: float = typer.Option(DEFAULTS.generator.dropout, help="Dropout of a new (stage-1) model."),
    seed: int = typer.Option(DEFAULTS.generator.seed, help="Random seed."),
    nproc: int = NPROC, trainer: str = TRAINER, nodes: int = NODES, cpu: str = CPU, memory: str = MEMORY,
    gpu: int = GPU, image: Optional[str] = IMAGE, runtime: str = RUNTIME, namespace: Optional[str] = NAMESPACE,
    s3_endpoint: str = S3_ENDPOINT, s3_secret: str = S3_SECRET, job_timeout: int = JOB_TIMEOUT, dry_run: bool = DRY_RUN,
    config: Optional[str] = CONFIG_JSON,
) -> None:
    """Train one generator stage; an interrupted stage resumes from its checkpoint in --out. With --nproc N, N
    ranks share each batch (the same run as one rank, up to float rounding and dropout)."""
    from onevision import steps
    from onevision.distributed import process_group
    from onevision.generator.staging import GeneratorTrainingConfig

    given = {"user_tokens": user_tokens, "affinity_scorer": affinity_scorer, "category_scorer": category_scorer,
             "dpo_beta": dpo_beta, "preferences": preferences}
    try:
        cfg = GeneratorTrainingConfig(lr=lr, seed=seed, dropout=dropout, **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        fail(str(exc), 2)
    if epochs is not None:
        cfg = cfg.with_epochs(stage, epochs)
    cfg = _with_json(cfg, config)  # checked here, before a launch elsewhere
    job = _job_options(nodes, cpu, memory, gpu, image, runtime, namespace, s3_endpoint, s3_secret, job_timeout)
    artifacts = {"world": world, "encoder": encoder, "VRQ": vrq, "previous stage": init, "reward model": reward,
                 "output": out}
    if _launched(ctx, artifacts, nproc, trainer, dry_run, job):
        return
    with process_group() as group:
        try:
            with _rank_output(out, group) as out_dir:
                result = steps.train_generator_step(input_path(world), input_path(encoder), input_path(vrq), out_dir,
                                                    stage, input_path(init) if init else None, cfg, group=group,
                                                    reward_dir=input_path(reward) if reward else None)
        except ValueError as exc:
            fail(str(exc), 2)
    if group.is_main:
        typer.echo(f"generator stage {stage} written to {out} in {result.seconds:.0f}s; loss per epoch: {result.losses}")


@train_app.command("bundle")
def make_bundle(
    kind: str = typer.Argument(..., help="generator | cascade"),
    out: str = typer.Option(..., help="Output directory or URI for the bundle."),
    encoder: str = typer.Option(..., help="Encoder directory or URI."),
    vrq: Optional[str] = typer.Option(None, help="VRQ directory (generator)."),
    generator: Optional[str] = typer.Option(None, help="Generator stage directory (generator)."),
    cascade: Optional[str] = typer.Option(None, help="Cascade directory (cascade)."),
) -> None:
    """Assemble a self-contained model bundle (what evaluation and serving load)."""
    from onevision import steps

    try:
        with output_path(out) as out_dir:
            steps.make_bundle_step(kind, out_dir, encoder_dir=input_path(encoder), vrq_dir=input_path(vrq) if vrq else None,
                                   generator_dir=input_path(generator) if generator else None,
                                   cascade_dir=input_path(cascade) if cascade else None)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc), 2)
    typer.echo(f"{kind} bundle written to {out}")


@evaluate_app.command("model")
def evaluate_model(
    bundle: str = typer.Argument(..., help="Model bundle directory or URI."),
    world: str = typer.Option(..., help="World directory or URI."),
    out: str = typer.Option(..., help="Where to write metrics.json."),
    split: str = typer.Option(DEFAULTS.eval.harness.split, help="train | val | test."),
    max_queries: Optional[int] = typer.Option(None, help="Evaluate only the first N queries."),
    beam_width: int = typer.Option(DEFAULTS.eval.decode.beam_width, help="Generator beam width."),
    keep_tokens: Optional[int] = typer.Option(None, help="Dynamic token pruning: image tokens kept."),
    beam_margin: Optional[float] = typer.Option(None, help="Dynamic beam pruning: log-prob margin."),
    confidence_mass: float = typer.Option(DEFAULTS.eval.decode.pruning.confidence_mass, help="Shrink beams once they hold this probability mass."),
    forced_paths: bool = typer.Option(DEFAULTS.eval.decode.pruning.forced_paths,
                                      help="Finish beams whose prefix names one item without the decoder (log p 0)."),
) -> None:
    """Recall/NDCG/MRR@K, HitRate@K, CTR/CVR proxies and latency of one bundle → metrics.json."""
    from onevision import steps

    pruning = dataclasses.replace(DEFAULTS.eval.decode.pruning, keep_tokens=keep_tokens, confidence_mass=confidence_mass,
                                  forced_paths=forced_paths, **({} if beam_margin is None else {"beam_margin": beam_margin}))
    cfg = steps.EvalStepConfig(dataclasses.replace(DEFAULTS.eval.harness, split=split, max_queries=max_queries),
                               DecodeOptions(beam_width, pruning))
    try:
        with output_path(out) as out_dir:
            metrics = steps.evaluate_step(input_path(bundle), input_path(world), out_dir, cfg)
    except FileNotFoundError as exc:
        fail(str(exc))
    _echo_json(metrics)


@evaluate_app.command("parity")
def evaluate_parity(
    generator: str = typer.Option(..., help="Generator metrics.json or its directory."),
    cascade: str = typer.Option(..., help="Cascade metrics.json or its directory."),
    out: str = typer.Option(..., help="Where to write parity.json, parity.md and parity.html."),
    epsilon: float = typer.Option(ParityGate.epsilon, help="Allowed relative shortfall against the cascade."),
) -> None:
    """The promotion gate: exit 1 with the reasons when the generator is worse than the cascade by more than ε."""
    from onevision import steps
    from onevision.evaluation import ParityInputError

    try:
        with output_path(out) as out_dir:
            report = steps.parity_step(Path(generator), Path(cascade), out_dir, epsilon)
    except (ParityInputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    typer.echo(report.summary())
    if not report.passed:
        fail("parity gate failed:\n  " + "\n  ".join(report.reasons))
