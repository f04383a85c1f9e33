"""The generator's staged training policy: the architecture of a new model, how the stage-2 model grows a user
tower on the stage-1 one, and each stage's epochs, learning rates and seed. `train_stage` runs one stage.

Only dataclasses at import time: `onevision.steps` (and the CLI's defaults) read `GeneratorTrainingConfig`
without loading torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onevision.distributed import ProcessGroup
    from onevision.generator.model import SidGenerator
    from onevision.generator.train import StageConfig
    from onevision.userfeatures import UserFeatureTable
    from onevision.vision.encoder import ImageEncoder
    from onevision.vrq.fit import VRQArtifact

STAGES = (1, 2, 3)
PREFERENCE_SOURCES: tuple[str, ...] = ("reward", "logged")


@dataclass(frozen=True)
class GeneratorTrainingConfig:
    d_model: int = 96
    heads: int = 4
    encoder_layers: int = 1
    decoder_layers: int = 2
    dropout: float = 0.1  # of the new (stage-1) model; later stages keep their init's
    stage1_epochs: int = 20
    stage2_epochs: int = 6
    stage3_epochs: int = 2
    batch_size: int = 256
    lr: float = 1e-3
    stage3_lr: float = 2e-4
    augmented_copies: int = 2  # photo-like augmented copies of every shop view in stage 1
    # Stage 1's step budget (optimiser steps over all its epochs); the default world trains 1,260, a 100k-item
    # catalogue would take 94k. Its examples are capped at what the budget reads (steps x batch_size).
    stage1_max_steps: int | None = 1500
    history_len: int = 8
    # Free user tokens (profile / hashed id / history) in the encoder from stage 2 on. Off: on the default
    # world they learned per-user noise (lift 1.00) and the affinity scorer carries the personalisation.
    user_tokens: bool = False
    affinity_scorer: bool = True  # user x attribute scorer at the SID's attribute level (needs VRQ attribute_level)
    category_scorer: bool = True  # user x category scorer at level 0 (needs VRQ's category-partitioned level 0)
    affinity_lr: float = 0.05  # the scorer's learning rate in stage 2
    stage3_affinity_lr: float = 0.05
    dpo_beta: float = 2.0  # stage 3; 0.5 let DPO trade NDCG@10 for CTR (0.473 vs 0.498 on the default world)
    # Stage 3's preference lists (onevision.generator.preferences): "reward" ranks the stage-2 model's own beam lists
    # by log-score + reward_weight x a reward model of the logged impressions (a trained cascade's ranker, given
    # to the stage); "logged" takes the clicked/ordered slot of the logged slates over the skipped ones.
    preferences: str = "reward"
    reward_beam: int = 20
    reward_weight: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.preferences not in PREFERENCE_SOURCES:
            raise ValueError(f"preferences must be one of {PREFERENCE_SOURCES}, got {self.preferences!r}")
        if self.reward_beam < 2:
            raise ValueError(f"reward_beam must be at least 2 (a preferred item and one passed over), got {self.reward_beam}")
        if self.reward_weight < 0:
            raise ValueError(f"reward_weight must be >= 0, got {self.reward_weight}")

    def epochs(self, stage: int) -> int:
        return {1: self.stage1_epochs, 2: self.stage2_epochs, 3: self.stage3_epochs}[check_stage(stage)]

    def with_epochs(self, stage: int, epochs: int) -> GeneratorTrainingConfig:
        return dataclasses.replace(self, **{f"stage{check_stage(stage)}_epochs": epochs})

    def stage_config(self, stage: int) -> StageConfig:
        from onevision.generator.train import StageConfig

        late = check_stage(stage) == 3
        return StageConfig(epochs=self.epochs(stage), batch_size=self.batch_size, lr=self.stage3_lr if late else self.lr,
                           affinity_lr=self.stage3_affinity_lr if late else self.affinity_lr, dpo_beta=self.dpo_beta,
                           max_steps=self.stage1_max_steps if stage == 1 else None, seed=self.seed + stage)


def check_stage(stage: int) -> int:
    if stage not in STAGES:
        raise ValueError(f"generator stage must be 1, 2 or 3, got {stage}")
    return stage


def stage_model(stage: int, config: GeneratorTrainingConfig, encoder: ImageEncoder, vrq: VRQArtifact,
                users: UserFeatureTable | None, init_dir: Path | None) -> SidGenerator:
    """Stage 1: a new model; stage 2: the stage-1 model with a user tower grown on it (unless it has one);
    stage 3: the stage-2 model."""
    from onevision.generator.model import GeneratorConfig, SidGenerator

    if stage == 1:
        return SidGenerator(GeneratorConfig(
            token_dim=encoder.config.token_dim, embed_dim=encoder.config.embed_dim, user_feature_dim=0,
            vocab_sizes=vrq.trie.vocab_sizes, d_model=config.d_model, heads=config.heads,
            encoder_layers=config.encoder_layers, decoder_layers=config.decoder_layers, dropout=config.dropout,
            history_len=config.history_len))
    if init_dir is None:
        raise ValueError(f"generator stage {stage} needs init_dir: the stage-{stage - 1} model directory")
    previous = SidGenerator.load(init_dir)
    if stage == 3 or previous.config.user_feature_dim:
        return previous
    from onevision.generator.data import AFFINITY_FEATURES, CATEGORY_FEATURES

    scorer = config.affinity_scorer and vrq.attributes is not None
    by_category = config.category_scorer and vrq.code_categories() is not None
    model = SidGenerator(dataclasses.replace(
        previous.config, user_feature_dim=users.n_features, user_tokens=config.user_tokens,
        attribute_level=vrq.attributes.level if scorer else None,
        affinity_features=len(AFFINITY_FEATURES) if scorer else 0,
        category_features=len(CATEGORY_FEATURES) if by_category else 0))
    missing = model.load_state_dict(previous.state_dict(), strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    return model


def train_stage(world_dir: Path, encoder_dir: Path, vrq_dir: Path, out_dir: Path, stage: int, init_dir: Path | None,
                config: GeneratorTrainingConfig, show_progress: bool = True,
                stop_after: int | None = None,
                group: ProcessGroup | None = None,
                reward_dir: Path | None = None) -> tuple[list[float], UserFeatureTable | None]:
    """Train one stage into `out_dir` (resuming its checkpoint there); the losses per epoch and, from stage 2,
    the user-feature table the stage was trained with. The seed is set before anything is built: loading the
    encoder constructs (then overwrites) a module, which draws from torch's generator too. With a distributed
    `group`, every rank builds the same model and data and trains on its shard of each batch; rank 0 writes.
    `reward_dir`: the trained cascade whose ranker scores stage 3's beam lists (config.preferences "reward")."""
    import torch

    from onevision.distributed import SINGLE
    from onevision.generator import train as gt
    from onevision.generator.data import query_log, visual_examples
    from onevision.generator.model import SidGenerator
    from onevision.userfeatures import UserFeatureTable
    from onevision.vision.encoder import ImageEncoder
    from onevision.vrq.fit import VRQArtifact
    from onevision.world import load_world

    check_stage(stage)
    if stage > 1 and init_dir is None:
        raise ValueError(f"generator stage {stage} needs init_dir: the stage-{stage - 1} model directory")
    if stage == 3 and config.preferences == "reward" and reward_dir is None:
        raise ValueError("generator stage 3 ranks its own beam lists with a reward model: give it a trained cascade "
                         "(reward_dir, `--reward`), or set preferences='logged' to learn from the logged slates")
    torch.manual_seed(config.seed)
    world = load_world(world_dir).for_training()  # the catalogue as listed by the last training day
    encoder = ImageEncoder.load(encoder_dir)
    vrq = VRQArtifact.load(vrq_dir)
    users = UserFeatureTable.fit(world, "train") if stage > 1 else None
    model = stage_model(stage, config, encoder, vrq, users, init_dir)
    stage_cfg = config.stage_config(stage)
    group = group or SINGLE
    trainer = gt.StageTrainer(model, stage_cfg, Path(out_dir), stage, group)
    trainer.try_resume()
    if stage == 1:
        visual = visual_examples(world, encoder, vrq, config.augmented_copies, config.seed, stage_cfg.examples_read())
        batches = gt.stage1_batches(model, visual, stage_cfg, group)
    else:
        logq = query_log(world, encoder)
        if stage == 2:
            visual = visual_examples(world, encoder, vrq, config.augmented_copies, config.seed,
                                     gt.stage2_visual_reads(logq, stage_cfg))
            batches = gt.stage2_batches(model, visual, logq, users, vrq, stage_cfg, group)
        else:
            reference = gt.clone_reference(SidGenerator.load(init_dir))
            if config.preferences == "reward":
                from onevision.cascade.cascade import Cascade
                from onevision.generator.preferences import reward_preferences

                reward = Cascade.load(reward_dir, encoder_dir)
                preferences = reward_preferences(reference, logq, users, vrq, reward, config.reward_beam,
                                                 config.reward_weight, progress=show_progress)
            else:
                from onevision.generator.preferences import logged_preferences

                preferences = logged_preferences(logq)
            batches = gt.stage3_batches(model, reference.to(group.device), logq, users, vrq, stage_cfg, preferences,
                                        group)
    return trainer.run(batches, show_progress, stop_after), users
