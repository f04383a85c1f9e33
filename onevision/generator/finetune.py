"""A short fine-tune that teaches a trained generator the SIDs of newly listed items (a catalogue refresh).

Every batch holds new items' views (their shop views plus photo-like augmented copies) and replayed views of
already listed items:
- new views: the stage-1 loss (teacher-forced cross-entropy to the item's SID), so the model emits the new SIDs;
- replayed views: distillation, the KL divergence of every level's distribution from the frozen model's on the
  same input, to hold the old catalogue's scores. A plain cross-entropy replay (stage 1 on both) taught the new
  SIDs as well but moved old items' scores with them (tiny world: new items' recall 0 -> 0.82, old items'
  0.33 -> 0.13): the model learns "the new SIDs are likely" where it should learn "this photo is the new item".
  Distillation only partly prevents that (docs/catalogue.md: old items still lose 5-15 pts on the default world).
The user tower and affinity scorer get no gradient (no user inputs), so personalisation is left as it was.

Only dataclasses at import time (the CLI reads `FinetuneConfig` for its defaults without torch).
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from onevision.generator.data import VisualExamples
    from onevision.generator.model import SidGenerator
    from onevision.vision.encoder import ImageEncoder
    from onevision.vrq.fit import VRQArtifact


@dataclass(frozen=True)
class FinetuneConfig:
    # On the default world (bench/catalogue_refresh.py, docs/catalogue.md) 10 epochs at lr 1e-3 and distill 1
    # lifted new items' recall@10 from 0 to 0.88 but cut old items' from 0.783 to 0.638; these gentler settings
    # gave 0.72 and 0.734. Neither keeps old items within the refresh gate's 1 pt yet.
    epochs: int = 3  # passes over the new items' examples
    lr: float = 3e-4
    batch_size: int = 64  # new + replayed examples per step
    augmented_copies: int = 2  # photo-like copies of every view (new and replayed)
    replay: float = 1.0  # replayed old views per new view, in the sample and in every batch
    distill: float = 3.0  # weight of the replayed views' KL to the frozen model
    replay_ce: float = 0.0  # weight of the replayed views' own stage-1 cross-entropy to their SIDs
    trainable: str = "all"  # "all" or "deep-heads": only the output heads of the deepest code and the token
    seed: int = 0
    # WiSE-FT (Wortsman et al., 2022): the saved weights are (1 - w) x the parent's + w x the fine-tuned ones;
    # 1.0 keeps the fine-tuned model. The stronger fine-tune above at 0.5 kept old items at 0.761 and found new
    # ones at 0.618 (docs/catalogue.md): another point on the default's trade-off, not past it.
    weight_interpolation: float = 1.0

    def __post_init__(self) -> None:
        if self.trainable not in TRAINABLE:
            raise ValueError(f"FinetuneConfig.trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.replay_ce < 0 or self.distill < 0:
            raise ValueError(f"FinetuneConfig.replay_ce and distill must be >= 0, got {self.replay_ce!r}, {self.distill!r}")
        if not 0.0 < self.weight_interpolation <= 1.0:
            raise ValueError(f"FinetuneConfig.weight_interpolation must be in (0, 1], got {self.weight_interpolation!r}")


TRAINABLE = ("all", "deep-heads")


def replay_rows(old_item_ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` rows of old views (all of them when there are fewer), drawn with the seed, in row order."""
    import numpy as np

    rng = np.random.default_rng([seed, 18])
    take = min(n, len(old_item_ids))
    return np.sort(rng.choice(len(old_item_ids), size=take, replace=False)) if take else np.zeros(0, np.int64)


def finetune_examples(encoder: ImageEncoder, vrq: VRQArtifact, images: np.ndarray, item_ids: np.ndarray,
                      augmented_copies: int, seed: int) -> VisualExamples:
    """Stage-1 examples of uint8 view images (N, H, W, 3) of items with SIDs in `vrq`."""
    import numpy as np
    import torch

    from onevision.generator.data import VisualExamples, encode_bank
    from onevision.vision.augment import augment
    from onevision.vision.encoder import to_pixels

    px = to_pixels(images)
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.cat([px] + [augment(px, gen) for _ in range(augmented_copies)])
    sids = vrq.sids_of(np.tile(np.asarray(item_ids, np.int64), 1 + augmented_copies))
    if (sids < 0).any():
        raise ValueError("fine-tune examples of items without a SID")
    return VisualExamples(encode_bank(encoder, pixels), torch.from_numpy(sids))


def distillation(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Σ over levels of KL(teacher ‖ student), averaged over the batch."""
    from torch.nn import functional as F

    return sum(F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
               for s, t in zip(student, teacher))


def finetune_batches(model: SidGenerator, reference: SidGenerator, new: VisualExamples, old: VisualExamples | None,
                     config: FinetuneConfig) -> Callable[[int], Iterator[Callable[[SidGenerator], torch.Tensor]]]:
    import numpy as np
    import torch

    from onevision.generator.data import make_input
    from onevision.generator.train import sid_loss

    n_old = 0 if old is None else len(old.sids)
    share_new = 1.0 if not n_old else 1.0 / (1.0 + config.replay)
    per_new = max(1, int(round(config.batch_size * share_new)))
    per_old = config.batch_size - per_new if n_old else 0

    def step(new_rows: np.ndarray, old_rows: np.ndarray | None) -> Callable[[SidGenerator], torch.Tensor]:
        def loss(m: SidGenerator) -> torch.Tensor:  # one optimiser step's loss (StageTrainer's `Step`)
            value = sid_loss(m(make_input(new.bank, new_rows), new.sids[new_rows]), new.sids[new_rows])
            if old_rows is not None:
                inp, sids = make_input(old.bank, old_rows), old.sids[old_rows]
                with torch.no_grad():
                    teacher = reference(inp, sids)
                student = m(inp, sids)
                value = value + config.distill * distillation(student, teacher)
                if config.replay_ce:
                    value = value + config.replay_ce * sid_loss(student, sids)
            return value
        return loss

    def batches(epoch: int) -> Iterator[Callable[[SidGenerator], torch.Tensor]]:
        rng = np.random.default_rng([config.seed, 18, epoch])
        new_order = rng.permutation(len(new.sids))
        steps = math.ceil(len(new_order) / per_new)
        old_order = rng.permutation(np.resize(np.arange(n_old), steps * per_old)) if per_old else None
        for i in range(steps):
            old_rows = old_order[i * per_old : (i + 1) * per_old] if per_old else None
            yield step(new_order[i * per_new : (i + 1) * per_new], old_rows)
    return batches


def finetune_generator(model: SidGenerator, new: VisualExamples, old: VisualExamples | None,
                       config: FinetuneConfig = FinetuneConfig(), show_progress: bool = True) -> list[float]:
    """Fine-tune `model` in place on the new items' examples, distilling itself on `old` (replayed views); the
    loss of every epoch."""
    import torch

    from onevision.generator.train import StageConfig, StageTrainer, clone_reference

    torch.manual_seed(config.seed)
    reference = clone_reference(model)
    for p in reference.parameters():
        p.requires_grad_(False)
    if config.trainable == "deep-heads":  # the last code level's head and the disambiguation token's
        deep = {id(p) for head in model.heads[-2:] for p in head.parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in deep)
    stage_cfg = StageConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed)
    with tempfile.TemporaryDirectory(prefix="onevision-finetune-") as scratch:  # the trainer's checkpoints
        trainer = StageTrainer(model, stage_cfg, Path(scratch), stage=1)
        losses = trainer.run(finetune_batches(model, reference, new, old, config), show_progress)
    for p in model.parameters():
        p.requires_grad_(True)
    if config.weight_interpolation < 1.0:
        interpolate_weights(model, reference, config.weight_interpolation)
    model.eval()
    return losses


def interpolate_weights(model: SidGenerator, parent: SidGenerator, share: float) -> None:
    """`model`'s floating-point weights and buffers, in place: (1 - share) x `parent`'s + share x its own."""
    import torch

    parent_state = parent.state_dict()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.lerp(parent_state[name], value, share))
