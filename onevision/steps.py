"""One library call per pipeline step. KFP components, the CLI and tests call these and nothing deeper.

Every step reads and writes local directories (components stage s3:// artifacts through
`onevision.storage`), takes a typed config whose defaults run the local demo, and returns a small
result with `to_dict()`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from onevision.cascade.config import CascadeConfig
from onevision.catalogue.config import ListingEvalConfig, RefreshConfig
from onevision.evaluation.config import EvalConfig
from onevision.generator.finetune import FinetuneConfig
from onevision.generator.options import DecodeOptions
from onevision.generator.staging import GeneratorTrainingConfig
from onevision.vision.config import EncoderConfig, EncoderTrainConfig
from onevision.vrq.config import VRQConfig
from onevision.world.config import WorldConfig

if TYPE_CHECKING:
    from onevision.distributed import ProcessGroup

log = logging.getLogger(__name__)


class _Result:
    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


# ------------------------------------------------------------------ configs
@dataclass(frozen=True)
class EncoderStepConfig:
    model: EncoderConfig = field(default_factory=EncoderConfig)  # model.image_size is the world's
    train: EncoderTrainConfig = field(default_factory=EncoderTrainConfig)


def _demo_vrq() -> VRQConfig:
    return VRQConfig(attribute_level=1)  # level 1 coded by brand x price band, what the user term acts on


@dataclass(frozen=True)
class VRQStepConfig:
    quantizer: VRQConfig = field(default_factory=_demo_vrq)  # attribute_level None: a purely visual SID
    compare_baselines: bool = True  # also fit RQ-KMeans and plain RQ-VAE for the report
    baselines_max_items: int = 20_000  # above it the baselines are skipped (they take 50 s at 10k items, linear in N)

    def baselines_for(self, n_items: int) -> bool:
        return self.compare_baselines and n_items <= self.baselines_max_items


def _gated_decode() -> DecodeOptions:
    return DecodeOptions(beam_width=50)  # what the parity gate judges: unpruned beam 50 (serving prunes)


@dataclass(frozen=True)
class EvalStepConfig:
    harness: EvalConfig = field(default_factory=EvalConfig)
    decode: DecodeOptions = field(default_factory=_gated_decode)  # generators only


@dataclass(frozen=True)
class StepConfigs:
    world: WorldConfig = field(default_factory=WorldConfig)
    encoder: EncoderStepConfig = field(default_factory=EncoderStepConfig)
    vrq: VRQStepConfig = field(default_factory=VRQStepConfig)
    cascade: CascadeConfig = field(default_factory=CascadeConfig)
    generator: GeneratorTrainingConfig = field(default_factory=GeneratorTrainingConfig)
    eval: EvalStepConfig = field(default_factory=EvalStepConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)
    listing: ListingEvalConfig = field(default_factory=ListingEvalConfig)


def tiny_configs(seed: int = 7) -> StepConfigs:
    """Small enough that the whole chain runs in well under a minute on a tiny world (tests, smoke runs)."""
    return StepConfigs(
        world=WorldConfig(seed=seed, items=64, users=24, days=6, queries_per_day=40, train_days=3, val_days=1, brands=8),
        encoder=EncoderStepConfig(EncoderConfig(widths=(16, 32, 48, 64), embed_dim=64),
                                  EncoderTrainConfig(epochs=3, items_per_batch=32)),
        vrq=VRQStepConfig(VRQConfig(codebook_sizes=(16, 40, 8), attribute_level=1), compare_baselines=False),
        cascade=CascadeConfig(),
        generator=GeneratorTrainingConfig(d_model=32, heads=2, encoder_layers=1, decoder_layers=1, stage1_epochs=2,
                                      stage2_epochs=1, stage3_epochs=1, batch_size=64, augmented_copies=0),
        eval=EvalStepConfig(EvalConfig(ks=(1, 10), latency_samples=5), DecodeOptions(beam_width=10)),
        refresh=RefreshConfig(FinetuneConfig(epochs=2, augmented_copies=1)),
    )


# ------------------------------------------------------------------ results
@dataclass
class WorldStepResult(_Result):
    world_dir: str
    items: int
    queries: int
    seconds: float


@dataclass
class ValidationStepResult(_Result):
    success: bool
    expectations: int
    failed: int
    report_path: str
    seconds: float
    summary: str  # the per-table table `onevision data validate` prints


@dataclass
class EncoderStepResult(_Result):
    encoder_dir: str
    losses: list[float]
    seconds: float


@dataclass
class VRQStepResult(_Result):
    vrq_dir: str
    report: dict
    seconds: float


@dataclass
class CascadeStepResult(_Result):
    cascade_dir: str
    seconds: float


@dataclass
class GeneratorStepResult(_Result):
    generator_dir: str
    stage: int
    losses: list[float]
    seconds: float


# ------------------------------------------------------------------ steps
def generate_world_step(out_dir: Path, config: WorldConfig = WorldConfig(), show_progress: bool = False) -> WorldStepResult:
    from tqdm import tqdm

    from onevision.world import generate_world

    start = time.perf_counter()
    generate_world(config, Path(out_dir),
                   progress=lambda it: tqdm(it, desc="world", unit="step", leave=False, disable=not show_progress))
    return WorldStepResult(str(out_dir), config.items, config.days * config.queries_per_day, round(time.perf_counter() - start, 2))


def validate_step(world_dir: Path, report_dir: Path | None = None) -> ValidationStepResult:
    from onevision.validation import validate_world

    start = time.perf_counter()
    report = validate_world(world_dir, report_dir=report_dir)  # raises DataValidationError naming each failure
    total = sum(t.expectations for t in report.tables.values())
    failed = sum(t.failed for t in report.tables.values())
    return ValidationStepResult(report.success, total, failed, str(report.report_path), round(time.perf_counter() - start, 2),
                                report.summary())


def train_encoder_step(world_dir: Path, out_dir: Path, config: EncoderStepConfig = EncoderStepConfig(),
                       show_progress: bool = True, group: ProcessGroup | None = None) -> EncoderStepResult:
    """With a distributed `group` (torchrun), every rank trains and rank 0 alone writes the artifacts."""
    from onevision.distributed import SINGLE
    from onevision.vision.features import compute_features
    from onevision.vision.images import ItemImages
    from onevision.vision.train import train_encoder
    from onevision.world import load_world

    start = time.perf_counter()
    group = group or SINGLE
    world = load_world(world_dir).for_training()
    data = ItemImages.from_world(world)
    family = dict(zip(world.items.item_id.tolist(), world.items.family_id.tolist()))
    image_size = world.config.image_size if world.config else data.image_size
    encoder, losses = train_encoder(data, family, dataclasses.replace(config.model, image_size=image_size), config.train,
                                    show_progress=show_progress, group=group)
    out_dir = Path(out_dir)

    def save() -> None:
        encoder.save(out_dir)
        compute_features(encoder, world).save(out_dir)
        (out_dir / "train_log.json").write_text(json.dumps({"losses": losses}, indent=2) + "\n")

    group.main_only(save)
    return EncoderStepResult(str(out_dir), [round(x, 5) for x in losses], round(time.perf_counter() - start, 2))


def train_vrq_step(world_dir: Path, encoder_dir: Path, out_dir: Path, config: VRQStepConfig = VRQStepConfig(),
                   show_progress: bool = True) -> VRQStepResult:
    import numpy as np

    from onevision.vision.features import CatalogueFeatures
    from onevision.vrq.attributes import ItemAttributes
    from onevision.vrq.fit import fit_vrq
    from onevision.world import load_world

    start = time.perf_counter()
    feats = CatalogueFeatures.load(encoder_dir)
    vrq_config = config.quantizer
    attributes = None
    if vrq_config.attribute_level is not None:
        world = load_world(world_dir).for_training()
        items = world.items.set_index("item_id").loc[feats.item_ids]
        brand, band = items["brand"].to_numpy(np.int64), items["price_band"].to_numpy(np.int64)
        attributes = ItemAttributes(brand, band, world.config.brands if world.config else int(brand.max()) + 1,
                                    world.config.price_bands if world.config else int(band.max()) + 1)
    baselines = config.baselines_for(len(feats.item_ids))
    if config.compare_baselines and not baselines:
        log.info("VRQ baselines skipped: %d items > baselines_max_items %d", len(feats.item_ids), config.baselines_max_items)
    artifact = fit_vrq(feats, vrq_config, compare_baselines=baselines, show_progress=show_progress,
                       attributes=attributes)
    artifact.save(out_dir)
    (Path(out_dir) / "vrq_report.md").write_text("# VRQ code quality\n\n" + artifact.report["table"] + "\n")
    return VRQStepResult(str(out_dir), artifact.report, round(time.perf_counter() - start, 2))


def train_cascade_step(world_dir: Path, encoder_dir: Path, out_dir: Path, config: CascadeConfig | None = None,
                       show_progress: bool = True) -> CascadeStepResult:
    from onevision.cascade import Cascade
    from onevision.world import load_world

    start = time.perf_counter()
    cascade = Cascade.fit(load_world(world_dir).for_training(), encoder_dir, config or CascadeConfig(), show_progress)
    cascade.save(out_dir)
    return CascadeStepResult(str(out_dir), round(time.perf_counter() - start, 2))


def train_generator_step(world_dir: Path, encoder_dir: Path, vrq_dir: Path, out_dir: Path, stage: int,
                         init_dir: Path | None = None, config: GeneratorTrainingConfig = GeneratorTrainingConfig(),
                         show_progress: bool = True, stop_after: int | None = None,
                         group: ProcessGroup | None = None, reward_dir: Path | None = None) -> GeneratorStepResult:
    """Stage 1 starts from scratch; stages 2 and 3 start from `init_dir` (the previous stage's output); stage 3
    ranks its own beam lists with the ranker of the cascade in `reward_dir` (unless config.preferences is "logged").
    A checkpoint in `out_dir` from an interrupted run of the same stage is resumed. With a distributed
    `group` (torchrun), every rank trains its shard of each batch and rank 0 alone writes."""
    from onevision.distributed import SINGLE
    from onevision.generator.staging import train_stage

    start = time.perf_counter()
    out_dir = Path(out_dir)
    group = group or SINGLE
    losses, users = train_stage(world_dir, encoder_dir, vrq_dir, out_dir, stage, init_dir, config, show_progress,
                                stop_after, group, reward_dir)
    if users is not None:
        group.main_only(lambda: users.save(out_dir / "userfeatures"))
    return GeneratorStepResult(str(out_dir), stage, [round(x, 5) for x in losses], round(time.perf_counter() - start, 2))


def make_bundle_step(kind: Literal["generator", "cascade"], out_dir: Path, *, encoder_dir: Path, vrq_dir: Path | None = None,
                     generator_dir: Path | None = None, cascade_dir: Path | None = None,
                     userfeatures_dir: Path | None = None, version: str | None = None) -> Path:
    from onevision.bundle import write_bundle

    return write_bundle(kind, out_dir, encoder_dir=encoder_dir, vrq_dir=vrq_dir, generator_dir=generator_dir,
                        cascade_dir=cascade_dir, userfeatures_dir=userfeatures_dir, version=version)


def evaluate_step(bundle_dir: Path, world_dir: Path, out_dir: Path, config: EvalStepConfig = EvalStepConfig(),
                  show_progress: bool = True) -> dict:
    from onevision.bundle import bundle_identity, load_retriever
    from onevision.evaluation import evaluate

    result = evaluate(load_retriever(bundle_dir, config.decode), world_dir, config.harness, progress=show_progress)
    result.bundle = bundle_identity(bundle_dir)
    result.save(out_dir)
    return json.loads((Path(out_dir) / "metrics.json").read_text())


def parity_step(generator_metrics_dir: Path, cascade_metrics_dir: Path, out_dir: Path, epsilon: float | None = None):
    """`epsilon`: the allowed relative shortfall (default: `ParityGate`'s)."""
    from onevision.evaluation import ParityGate

    gate = ParityGate() if epsilon is None else ParityGate(epsilon=epsilon)
    report = gate.check_files(generator_metrics_dir, cascade_metrics_dir)
    report.save(out_dir)
    return report



def refresh_step(bundle_dir: Path, items_path: Path, views_path: Path, out_dir: Path, *,
                 delisted: list[int] | None = None, replay_views_path: Path | None = None,
                 config: RefreshConfig | None = None, show_progress: bool = False) -> dict:
    """A new version of a bundle (either kind) with the new items of `items_path`/`views_path` (world schema)
    and without `delisted` (onevision.catalogue.refresh)."""
    import pyarrow.parquet as pq

    from onevision.catalogue.refresh import refresh_bundle
    from onevision.catalogue.tables import read_new_rows

    rows = read_new_rows(items_path, views_path)
    replay = None if replay_views_path is None else pq.read_table(replay_views_path).to_pandas()
    return refresh_bundle(bundle_dir, rows, out_dir, delisted=delisted, replay_views=replay,
                          config=config or RefreshConfig(), show_progress=show_progress).to_dict()


def listing_eval_step(bundle_dir: Path, world_dir: Path, out_dir: Path | None = None,
                      config: ListingEvalConfig = ListingEvalConfig(), decode: DecodeOptions = _gated_decode(),
                      listed_by: int | None = None) -> dict:
    """Recall@k on the split's queries for new vs old items (onevision.catalogue.evaluate)."""
    from onevision.bundle import load_retriever
    from onevision.catalogue.evaluate import listing_recall

    result = listing_recall(load_retriever(bundle_dir, decode), world_dir, config, listed_by)
    if out_dir is not None:
        result.save(out_dir)
    return result.to_json()


def refresh_gate_step(before_dir: Path, after_dir: Path, out_dir: Path, new_within: float | None = None,
                      old_tolerance: float | None = None) -> dict:
    """The refresh gate on two listing evaluations (onevision.catalogue.gate); thresholds default to the gate's."""
    from onevision.catalogue.evaluate import ListingRecall
    from onevision.catalogue.gate import RefreshGate

    gate = RefreshGate(**{k: v for k, v in (("new_within", new_within), ("old_tolerance", old_tolerance))
                          if v is not None})
    report = gate.check(ListingRecall.load(before_dir), ListingRecall.load(after_dir))
    report.save(out_dir)
    return {"passed": report.passed, "reasons": report.reasons, "markdown": report.markdown()}
