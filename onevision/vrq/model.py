"""The RQ-VAE baseline: encode an item embedding into a latent, quantise it greedily level by level,
decode it back. (VRQ, the vision-aligned quantiser, is in aligned.py.)"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class RQVAEConfig:
    input_dim: int = 128
    latent_dim: int = 64
    hidden_dim: int = 256
    codebook_sizes: tuple[int, ...] = (256, 256, 256)


class ResidualQuantizer(nn.Module):
    def __init__(self, latent_dim: int, codebook_sizes: tuple[int, ...]):
        super().__init__()
        self.codebooks = nn.ParameterList([nn.Parameter(torch.randn(k, latent_dim) * 0.1) for k in codebook_sizes])

    @property
    def levels(self) -> int:
        return len(self.codebooks)

    def distances(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        cb = self.codebooks[level]
        return (residual * residual).sum(-1, keepdim=True) - 2 * residual @ cb.T + (cb * cb).sum(-1)[None, :]

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Greedy residual quantisation. Returns (quantised latent, codes (B, L), residual entering each level)."""
        residual = z
        quantised = torch.zeros_like(z)
        codes, residuals = [], []
        for level in range(self.levels):
            residuals.append(residual)
            code = self.distances(level, residual).argmin(-1)
            q = self.codebooks[level][code]
            quantised = quantised + q
            residual = residual - q
            codes.append(code)
        return quantised, torch.stack(codes, 1), residuals


class RQAutoencoder(nn.Module):
    def __init__(self, config: RQVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(
            nn.Linear(config.input_dim, config.hidden_dim), nn.GELU(), nn.Linear(config.hidden_dim, config.latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden_dim), nn.GELU(), nn.Linear(config.hidden_dim, config.input_dim)
        )
        self.quantizer = ResidualQuantizer(config.latent_dim, config.codebook_sizes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.decoder(z), dim=-1)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.encode(x))[1]
