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
from onevision.vrq.quantizer import mean_squared_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RQVAETrainConfig:
    warmup_epochs: int = 20
    epochs: int = 80
    batch_size: int = 256
    lr: float = 2e-3
    restart_dead_until: float = 0.9  # restart unused codes during this share of training
    seed: int = 0


@torch.no_grad()
def _init_codebooks(model: RQAutoencoder, z: torch.Tensor, seed: int) -> None:
    """k-means on the residual each level sees."""
    q = model.quantizer
    residual = z.clone()
    for level in range(q.levels):
        q.codebooks[level].copy_(torch.from_numpy(kmeans(residual.numpy(), q.codebooks[level].shape[0], seed=seed + level)))
        residual = residual - q.codebooks[level][q.nearest(level, residual)]


@torch.no_grad()
def _restart_dead_codes(model: RQAutoencoder, z: torch.Tensor, gen: torch.Generator) -> int:
    """Codes no item uses move onto random item residuals of their level."""
    q = model.quantizer
    residuals, codes = q.residuals(z)
    restarted = 0
    for level in range(q.levels):
        used = torch.bincount(codes[:, level], minlength=q.codebooks[level].shape[0]) > 0
        dead = torch.nonzero(~used).flatten()
        if len(dead):
            x = residuals[level]
            picks = torch.randint(len(x), (len(dead),), generator=gen)
            q.codebooks[level][dead] = x[picks] + 0.01 * torch.randn(len(dead), x.shape[1], generator=gen)
            restarted += len(dead)
    return restarted


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
        _init_codebooks(model, model.encode(x), train.seed)
    for epoch in range(train.epochs):
        losses = []
        for idx in np.array_split(rng.permutation(n), max(1, n // train.batch_size)):
            idx_t = torch.from_numpy(idx)
            z = model.encode(x[idx_t])
            zq, _, quantizer_loss = model.quantizer(z)
            z_st = z + (zq - z).detach()
            loss = mean_squared_error(model.decode(z_st), x[idx_t]) + quantizer_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if epoch < train.restart_dead_until * train.epochs:
            with torch.no_grad():
                _restart_dead_codes(model, model.encode(x), gen)
        bar.update()
        bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        if (epoch + 1) % 20 == 0:
            log.info("%s epoch %d/%d loss %.4f", name, epoch + 1, train.epochs, np.mean(losses))
    bar.close()
    return model.eval()
