"""The RQ-VAE baseline: encode an item embedding into a latent, quantise it greedily level by level,
decode it back. (VRQ, the vision-aligned quantiser, is in aligned.py.)"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import orthogonal


@dataclass(frozen=True)
class RQVAEConfig:
    input_dim: int = 128
    latent_dim: int = 64
    hidden_dim: int = 256
    codebook_sizes: tuple[int, ...] = (256, 256, 256)


class ResidualQuantizer(nn.Module):
    def __init__(self, latent_dim: int, codebook_sizes: tuple[int, ...], rotate_last: bool):
        super().__init__()
        self.codebooks = nn.ParameterList([nn.Parameter(torch.randn(k, latent_dim) * 0.1) for k in codebook_sizes])
        self.rotation = orthogonal(nn.Linear(latent_dim, latent_dim, bias=False)) if rotate_last else None

    @property
    def levels(self) -> int:
        return len(self.codebooks)

    def level_input(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        if self.rotation is not None and level == self.levels - 1:
            return self.rotation(residual)
        return residual

    def level_output(self, level: int, code_vectors: torch.Tensor) -> torch.Tensor:
        if self.rotation is not None and level == self.levels - 1:
            return code_vectors @ self.rotation.weight  # inverse of an orthogonal map is its transpose
        return code_vectors

    def distances(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        x = self.level_input(level, residual)
        cb = self.codebooks[level]
        return (x * x).sum(-1, keepdim=True) - 2 * x @ cb.T + (cb * cb).sum(-1)[None, :]

    def forward(
        self, z: torch.Tensor, first_level_mask: torch.Tensor | None = None, forced_codes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Greedy residual quantisation. Returns (quantised latent, codes (B, L), residual entering each level).

        first_level_mask (B, K0) restricts level-0 choices (category injection); forced_codes follows a given
        path instead of the greedy one (used to align views on their item's path)."""
        residual = z
        quantised = torch.zeros_like(z)
        codes, residuals = [], []
        for level in range(self.levels):
            residuals.append(residual)
            if forced_codes is not None:
                code = forced_codes[:, level]
            else:
                d = self.distances(level, residual)
                if level == 0 and first_level_mask is not None:
                    d = d.masked_fill(~first_level_mask, float("inf"))
                code = d.argmin(-1)
            q = self.level_output(level, self.codebooks[level][code])
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
        self.quantizer = ResidualQuantizer(config.latent_dim, config.codebook_sizes, rotate_last=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.decoder(z), dim=-1)

    @torch.no_grad()
    def codes(self, x: torch.Tensor, first_level_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.quantizer(self.encode(x), first_level_mask)[1]
