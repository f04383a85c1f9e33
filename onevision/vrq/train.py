"""Train the plain RQ-VAE baseline: an MLP autoencoder with residual quantisation of its latent.

Reconstruction + commitment + codebook losses, k-means initialisation, dead-code restart. No alignment
terms: this is the baseline VRQ is compared with (VRQ itself lives in aligned.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from onevision.vrq.kmeans import kmeans
from onevision.vrq.model import RQAutoencoder, RQVAEConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RQVAETrainConfig:
    warmup_epochs: int = 20
    epochs: int = 80
    batch_size: int = 256
    lr: float = 2e-3
    commitment: float = 0.25
    restart_dead_until: float = 0.9  # restart unused codes during this share of training
    seed: int = 0


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


def train_rq(
    item_emb: np.ndarray,
    config: RQVAEConfig = RQVAEConfig(),
    train: RQVAETrainConfig = RQVAETrainConfig(),
    show_progress: bool = True,
    name: str = "rq-vae",
) -> RQAutoencoder:
    torch.manual_seed(train.seed)
    gen = torch.Generator().manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    model = RQAutoencoder(config)
    x = torch.from_numpy(item_emb.astype(np.float32))
    item_mask = None
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
    return model.eval()
