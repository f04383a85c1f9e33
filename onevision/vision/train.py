"""Train the image encoder with a multi-view contrastive objective: shop views and user photos of the
same product are positives; whole near-duplicate families share a batch, so the hard negatives
(same shape and pattern, other colour or brand) are always in view.

Data parallel (`onevision.distributed`): the contrastive loss is over a whole batch of families, so a batch is
never split. Every rank draws the same epoch of batches; rank r trains batches r, r+W, ... in lockstep and DDP
averages their gradients, so one step sees W batches (an epoch has len // W steps, the leftover batches skipped).
W ranks therefore train with a W-times larger batch than one rank, not the same run."""
from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm import tqdm

from onevision.distributed import SINGLE, ProcessGroup
from onevision.vision.augment import augment
from onevision.vision.config import EncoderConfig, EncoderTrainConfig
from onevision.vision.encoder import ImageEncoder, to_pixels
from onevision.vision.images import ItemImages
from onevision.vision.losses import circle_loss, multi_positive_info_nce

log = logging.getLogger(__name__)


def _batches(item_ids: np.ndarray, family_of: dict[int, int], items_per_batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle families and cut them into batches of about items_per_batch items."""
    families: dict[int, list[int]] = {}
    for item in item_ids.tolist():
        families.setdefault(family_of.get(item, item), []).append(item)
    order = rng.permutation(sorted(families))
    batches, current = [], []
    for fam in order:
        current.extend(families[int(fam)])
        if len(current) >= items_per_batch:
            batches.append(np.array(current))
            current = []
    if len(current) >= 2:
        batches.append(np.array(current))
    return batches


def train_encoder(
    data: ItemImages,
    family_of: dict[int, int],
    encoder_config: EncoderConfig = EncoderConfig(),
    config: EncoderTrainConfig = EncoderTrainConfig(),
    show_progress: bool = True,
    group: ProcessGroup = SINGLE,
) -> tuple[ImageEncoder, list[float]]:
    """Returns the trained encoder (eval mode) and the mean loss per epoch (over every rank's batches)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = ImageEncoder(encoder_config)
    if group.device.type != "cpu":
        model.to(group.device)
    net = group.wrap(model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    items = np.unique(data.item_ids)
    images_of: dict[int, np.ndarray] = {}
    shop_of: dict[int, np.ndarray] = {}
    by_item = np.argsort(data.item_ids, kind="stable")  # each item's rows in ascending order, in one sort
    bounds = np.searchsorted(data.item_ids[by_item], items, side="right")
    for item, start, stop in zip(items.tolist(), np.r_[0, bounds[:-1]].tolist(), bounds.tolist()):
        idx = by_item[start:stop]
        images_of[item] = idx
        shop_of[item] = idx[~data.is_user_photo[idx]]
    steps_per_epoch = config.batches_per_epoch(
        len(_batches(items, family_of, config.items_per_batch, np.random.default_rng(0))) // group.world_size)
    if group.distributed and not steps_per_epoch:
        raise ValueError(f"{group.world_size} ranks need at least {group.world_size} batches of "
                         f"{config.items_per_batch} items per epoch; lower items_per_batch or use fewer ranks")
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=max(1, config.epochs * steps_per_epoch + config.epochs), pct_start=0.15
    )
    losses: list[float] = []
    bar = tqdm(range(config.epochs), desc="encoder", unit="epoch", disable=not (show_progress and group.is_main))
    model.train()
    for epoch in bar:
        epoch_losses = []
        batches = _batches(items, family_of, config.items_per_batch, rng)[: steps_per_epoch * group.world_size]
        for i, batch_items in enumerate(batches):
            anchors, positives = [], []
            for item in batch_items.tolist():
                pool = images_of[item]
                shop = shop_of[item] if len(shop_of[item]) else pool
                a = rng.choice(pool)
                p = rng.choice(shop[shop != a]) if (shop != a).any() else rng.choice(pool)
                anchors.append(a)
                positives.append(p)
            if group.distributed and (i % group.world_size != group.rank
                                      or i >= len(batches) // group.world_size * group.world_size):
                continue  # another rank's batch (drawn here too, so every rank's generator stays in step)
            idx = np.array(anchors + positives)
            labels = torch.from_numpy(np.concatenate([batch_items, batch_items]))
            pixels = augment(to_pixels(data.decoded(idx)), gen, config.augment_strength)
            if group.device.type != "cpu":
                pixels, labels = pixels.to(group.device), labels.to(group.device)
            z = net(pixels)
            loss = multi_positive_info_nce(z, labels, config.temperature) + config.circle_weight * circle_loss(z, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(group.mean(epoch_losses))))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        log.info("encoder epoch %d/%d loss %.4f", epoch + 1, config.epochs, losses[-1])
    return model.cpu().eval(), losses
