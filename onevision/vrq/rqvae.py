"""The plain RQ-VAE baseline as a `Quantizer` on item embeddings: embedding → latent → residual codes →
reconstructed embedding (modules in model.py, training loop in train.py)."""
from __future__ import annotations

import numpy as np
import torch

from onevision.vrq.model import RQAutoencoder, RQVAEConfig
from onevision.vrq.quantizer import Quantized, TrainingSet
from onevision.vrq.train import RQVAETrainConfig, train_rq


class RQVAE:
    def __init__(self, config: RQVAEConfig = RQVAEConfig(), train: RQVAETrainConfig = RQVAETrainConfig(),
                 show_progress: bool = True):
        self.config = config
        self.train = train
        self.show_progress = show_progress
        self.model: RQAutoencoder | None = None

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return self.config.codebook_sizes

    def fit(self, data: TrainingSet) -> Quantized:
        self.model = train_rq(data.items, self.config, self.train, self.show_progress)
        return self.quantize(data.items)

    def _fitted(self) -> RQAutoencoder:
        if self.model is None:
            raise ValueError("RQVAE has no model: fit it first")
        return self.model

    @torch.no_grad()
    def quantize(self, x: np.ndarray) -> Quantized:
        model = self._fitted()
        zq, codes, _ = model.quantizer(model.encode(torch.from_numpy(x)))
        return Quantized.of(x, model.decode(zq).numpy(), codes.numpy())

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self._fitted().codes(torch.from_numpy(x)).numpy()

    @torch.no_grad()
    def get_output_from_indices(self, indices: np.ndarray) -> np.ndarray:
        model = self._fitted()
        return model.decode(model.quantizer.get_output_from_indices(torch.from_numpy(indices))).numpy()
