"""Train RQ-VAE / VRQ codebooks on item embeddings.

Plain RQ-VAE: reconstruction + commitment + codebook losses, k-means initialisation, dead-code restart.
VRQ adds the vision alignment: every view (shop view or user photo) of an item is encoded and pushed
onto its item's code path (a cross-entropy per level, strongest at the shallow levels), an InfoNCE term
keeps different items apart in the latent space, level-0 codes are partitioned by category (category
injection), and the deepest residual is rotated (OPQ-style refinement).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from onevision.vrq.kmeans import kmeans
from onevision.vrq.model import RQAutoencoder, VRQConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VRQTrainConfig:
    warmup_epochs: int = 20
    epochs: int = 80
    batch_size: int = 256
    lr: float = 2e-3
    commitment: float = 0.25
    align_weight: float = 1.0
    align_level_weights: tuple[float, ...] = (1.0, 0.5)  # shallow levels only: deep codes separate products
    align_temperature: float = 0.1
    contrastive_weight: float = 0.2
    restart_dead_until: float = 0.9  # restart unused codes during this share of training
    seed: int = 0


def category_code_mask(categories: np.ndarray, n_codes: int) -> np.ndarray:
    """bool (n_categories, n_codes): contiguous code ranges per category, sized by item count."""
    n_cat = int(categories.max()) + 1
    counts = np.bincount(categories, minlength=n_cat).astype(float)
    present = counts > 0
    if n_codes < present.sum():
        raise ValueError(f"{n_codes} level-0 codes cannot cover {int(present.sum())} categories")
    share = np.where(present, np.maximum(1, np.floor(counts / counts.sum() * n_codes)), 0).astype(int)
    while share.sum() > n_codes:
        share[share.argmax()] -= 1
    share[np.argmax(counts)] += n_codes - share.sum()
    bounds = np.concatenate([[0], np.cumsum(share)])
    mask = np.zeros((n_cat, n_codes), dtype=bool)
    for c in range(n_cat):
        mask[c, bounds[c] : bounds[c + 1]] = True
    return mask


@torch.no_grad()
def _init_codebooks(model: RQAutoencoder, z: torch.Tensor, level0_mask: torch.Tensor | None, seed: int) -> None:
    q = model.quantizer
    residual = z.clone()
    for level in range(q.levels):
        k = q.codebooks[level].shape[0]
        x = q.level_input(level, residual).numpy()
        centroids = np.zeros((k, z.shape[1]), dtype=np.float32)
        if level == 0 and level0_mask is not None:
            allowed_for_item = level0_mask.numpy()
            cat_of_item = allowed_for_item.argmax(1)  # any allowed code identifies the category range
            for c in np.unique(cat_of_item):
                codes = np.flatnonzero(allowed_for_item[np.flatnonzero(cat_of_item == c)[0]])
                members = x[cat_of_item == c]
                centroids[codes] = kmeans(members, len(codes), seed=seed + level)
        else:
            centroids = kmeans(x, k, seed=seed + level)
        q.codebooks[level].copy_(torch.from_numpy(centroids))
        mask = level0_mask if level == 0 else None
        d = q.distances(level, residual)
        if mask is not None:
            d = d.masked_fill(~mask, float("inf"))
        residual = residual - q.level_output(level, q.codebooks[level][d.argmin(-1)])


@torch.no_grad()
def _restart_dead_codes(model: RQAutoencoder, z: torch.Tensor, level0_mask: torch.Tensor | None, gen: torch.Generator) -> int:
    q = model.quantizer
    _, codes, residuals = q(z, level0_mask)
    restarted = 0
    for level in range(q.levels):
        used = torch.bincount(codes[:, level], minlength=q.codebooks[level].shape[0]) > 0
        dead = torch.nonzero(~used).flatten()
        if len(dead) == 0:
            continue
        x = q.level_input(level, residuals[level])
        if level == 0 and level0_mask is not None:
            for code in dead.tolist():  # a dead level-0 code may only take an item of its own category
                candidates = torch.nonzero(level0_mask[:, code]).flatten()
                if len(candidates):
                    pick = candidates[torch.randint(len(candidates), (1,), generator=gen)]
                    q.codebooks[level][code] = x[pick][0] + 0.01 * torch.randn(x.shape[1], generator=gen)
        else:
            picks = torch.randint(len(x), (len(dead),), generator=gen)
            q.codebooks[level][dead] = x[picks] + 0.01 * torch.randn(len(dead), x.shape[1], generator=gen)
        restarted += len(dead)
    return restarted


def _sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared error summed over the vector, averaged over the batch (scale comparable to a CE)."""
    return ((a - b) ** 2).sum(-1).mean()


def _detached_distances(model: RQAutoencoder, level: int, residual: torch.Tensor) -> torch.Tensor:
    q = model.quantizer
    x = q.level_input(level, residual)
    cb = q.codebooks[level].detach()
    return (x * x).sum(-1, keepdim=True) - 2 * x @ cb.T + (cb * cb).sum(-1)[None, :]


def train_rq(
    item_emb: np.ndarray,
    item_category: np.ndarray,
    view_emb: np.ndarray,
    view_item_row: np.ndarray,
    config: VRQConfig,
    train: VRQTrainConfig = VRQTrainConfig(),
    show_progress: bool = True,
    name: str = "vrq",
) -> tuple[RQAutoencoder, np.ndarray | None]:
    """Returns the trained model and, for VRQ with category partition, the level-0 mask per category."""
    torch.manual_seed(train.seed)
    gen = torch.Generator().manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    model = RQAutoencoder(config)
    x = torch.from_numpy(item_emb.astype(np.float32))
    views = torch.from_numpy(view_emb.astype(np.float32))
    view_rows = torch.from_numpy(view_item_row.astype(np.int64))
    cat_mask_np = None
    item_mask = None
    if config.aligned and config.category_partition:
        cat_mask_np = category_code_mask(item_category.astype(np.int64), config.codebook_sizes[0])
        item_mask = torch.from_numpy(cat_mask_np[item_category])
    opt = torch.optim.Adam(model.parameters(), lr=train.lr)
    n = len(x)
    bar = tqdm(total=train.warmup_epochs + train.epochs, desc=name, unit="epoch", disable=not show_progress)
    for _ in range(train.warmup_epochs):  # autoencoder warm-up, so k-means sees a meaningful latent
        for idx in np.array_split(rng.permutation(n), max(1, n // train.batch_size)):
            loss = F.mse_loss(model.decode(model.encode(x[idx])), x[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.update()
    with torch.no_grad():
        _init_codebooks(model, model.encode(x), item_mask, train.seed)
    views_of: list[np.ndarray] = [np.flatnonzero(view_item_row == i) for i in range(n)]
    for epoch in range(train.epochs):
        losses = []
        for idx in np.array_split(rng.permutation(n), max(1, n // train.batch_size)):
            idx_t = torch.from_numpy(idx)
            mask = item_mask[idx_t] if item_mask is not None else None
            z = model.encode(x[idx_t])
            zq, codes, residuals = model.quantizer(z, mask)
            z_st = z + (zq - z).detach()
            loss = _sq(model.decode(z_st), x[idx_t]) + train.commitment * _sq(z, zq.detach())
            # codebook loss: each chosen code moves towards the residual that picked it
            for level, r in enumerate(residuals):
                chosen = model.quantizer.level_output(level, model.quantizer.codebooks[level][codes[:, level]])
                loss = loss + _sq(chosen, r.detach())
            if config.aligned and train.align_weight > 0:
                picks = [rng.choice(views_of[i]) for i in idx if len(views_of[i])]
                owners = [j for j, i in enumerate(idx) if len(views_of[i])]
                if picks:
                    zv = model.encode(views[torch.tensor(picks)])
                    item_codes = codes[torch.tensor(owners)].detach()
                    _, _, view_res = model.quantizer(zv, forced_codes=item_codes)
                    for level, r in enumerate(view_res[: len(train.align_level_weights)]):
                        # Codebooks are held fixed here: alignment moves the views onto their item's path
                        # rather than dragging (and killing) codes. Distances are scaled to be unit-free.
                        d = _detached_distances(model, level, r)
                        logits = -d / (train.align_temperature * d.mean().detach().clamp_min(1e-6))
                        loss = loss + train.align_weight * train.align_level_weights[level] * F.cross_entropy(logits, item_codes[:, level])
                    za = F.normalize(zv, dim=-1)
                    zi = F.normalize(z[torch.tensor(owners)], dim=-1)
                    sim = za @ zi.T / 0.1
                    target = torch.arange(len(owners))
                    loss = loss + train.contrastive_weight * F.cross_entropy(sim, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if epoch < train.restart_dead_until * train.epochs:
            with torch.no_grad():
                _restart_dead_codes(model, model.encode(x), item_mask, gen)
        bar.update()
        bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        if (epoch + 1) % 20 == 0:
            log.info("%s epoch %d/%d loss %.4f", name, epoch + 1, train.epochs, np.mean(losses))
    bar.close()
    return model.eval(), cat_mask_np
