"""The RQ-VAE baseline's modules: encode an item embedding into a latent, quantise it greedily level by level,
decode it back. (VRQ, the vision-aligned quantiser, is in aligned.py; `rqvae.RQVAE` is the baseline as a
`Quantizer`.)"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from onevision.vrq.quantizer import mean_squared_error, squared_distances


@dataclass(frozen=True)
class RQVAEConfig:
    input_dim: int = 128
    latent_dim: int = 64
    hidden_dim: int = 256
    codebook_sizes: tuple[int, ...] = (256, 256, 256)
    commitment_weight: float = 0.25


class ResidualQuantizer(nn.Module):
    def __init__(self, latent_dim: int, codebook_sizes: tuple[int, ...], commitment_weight: float = 0.25):
        super().__init__()
        self.codebooks = nn.ParameterList([nn.Parameter(torch.randn(k, latent_dim) * 0.1) for k in codebook_sizes])
        self.commitment_weight = commitment_weight

    @property
    def levels(self) -> int:
        return len(self.codebooks)

    def nearest(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        return squared_distances(residual, self.codebooks[level]).argmin(-1)

    def residuals(self, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Greedy descent: the residual entering each level, and the codes (B, L)."""
        residual = z
        residuals, codes = [], []
        for level in range(self.levels):
            residuals.append(residual)
            code = self.nearest(level, residual)
            residual = residual - self.codebooks[level][code]
            codes.append(code)
        return residuals, torch.stack(codes, 1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantised latent, codes (B, L), loss). The loss moves each chosen code towards the residual that
        picked it (codebook loss) and the latent towards its quantisation (commitment loss, weighted)."""
        residuals, codes = self.residuals(z)
        quantised = torch.zeros_like(z)
        codebook_loss = torch.zeros(())
        for level, residual in enumerate(residuals):
            chosen = self.codebooks[level][codes[:, level]]
            quantised = quantised + chosen
            codebook_loss = codebook_loss + mean_squared_error(chosen, residual.detach())
        return quantised, codes, codebook_loss + self.commitment_weight * mean_squared_error(z, quantised.detach())

    def get_output_from_indices(self, codes: torch.Tensor) -> torch.Tensor:
        quantised = torch.zeros(len(codes), self.codebooks[0].shape[1], dtype=self.codebooks[0].dtype)
        for level in range(self.levels):
            quantised = quantised + self.codebooks[level][codes[:, level]]
        return quantised


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
        self.quantizer = ResidualQuantizer(config.latent_dim, config.codebook_sizes, config.commitment_weight)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.decoder(z), dim=-1)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.encode(x))[1]
