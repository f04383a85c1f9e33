"""VRQ and both baselines honour one `Quantizer` protocol, and share one squared distance."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from onevision.vision.features import CatalogueFeatures
from onevision.vrq.aligned import VisionAlignedRQ, VRQConfig
from onevision.vrq.model import RQVAEConfig, ResidualQuantizer
from onevision.vrq.quantizer import Quantized, Quantizer, TrainingSet, mean_squared_error, squared_distances
from onevision.vrq.rq_kmeans import ResidualKMeans
from onevision.vrq.rqvae import RQVAE
from onevision.vrq.train import RQVAETrainConfig

SIZES = (16, 8, 8)
METHODS = ("vrq", "rq-kmeans", "rq-vae")


def _quantizer(method: str, dim: int) -> Quantizer:
    if method == "vrq":
        return VisionAlignedRQ(VRQConfig(codebook_sizes=SIZES, refine_steps=20))
    if method == "rq-kmeans":
        return ResidualKMeans(SIZES)
    return RQVAE(RQVAEConfig(input_dim=dim, codebook_sizes=SIZES), RQVAETrainConfig(warmup_epochs=5, epochs=10),
                 show_progress=False)


@pytest.fixture(scope="module")
def data(features: CatalogueFeatures) -> TrainingSet:
    return TrainingSet(features.item_emb, features.item_category, features.view_emb, features.view_item_row)


@pytest.fixture(scope="module")
def fitted(data: TrainingSet) -> dict[str, tuple[Quantizer, Quantized]]:
    out = {}
    for method in METHODS:
        q = _quantizer(method, data.items.shape[1])
        out[method] = q, q.fit(data)
    return out


@pytest.mark.parametrize("method", METHODS)
def test_fit_returns_the_training_items_codes_reconstruction_and_error(fitted, data: TrainingSet, method: str) -> None:
    q, fit = fitted[method]
    assert fit.indices.shape == (len(data.items), len(SIZES)) and fit.indices.dtype == np.int64
    for level, k in enumerate(q.codebook_sizes):
        assert 0 <= fit.indices[:, level].min() and fit.indices[:, level].max() < k
    assert np.allclose(q.get_output_from_indices(fit.indices), fit.quantized, atol=1e-5)
    assert fit.loss == pytest.approx(float(((fit.quantized - data.items) ** 2).sum(1).mean()))


@pytest.mark.parametrize("method", METHODS)
def test_encode_is_quantize_and_decodes_back(fitted, features: CatalogueFeatures, method: str) -> None:
    q, _ = fitted[method]
    out = q.quantize(features.view_emb)
    assert (q.encode(features.view_emb) == out.indices).all()
    assert np.allclose(q.get_output_from_indices(out.indices), out.quantized, atol=1e-5)
    assert out.loss == pytest.approx(float(((out.quantized - features.view_emb) ** 2).sum(1).mean()))


@pytest.mark.parametrize("method", METHODS)
def test_an_unfitted_quantizer_says_so(features: CatalogueFeatures, method: str) -> None:
    with pytest.raises(ValueError, match="fit"):
        _quantizer(method, features.item_emb.shape[1]).encode(features.view_emb)


def test_vrq_refuses_items_without_their_views(data: TrainingSet) -> None:
    with pytest.raises(ValueError, match="views"):
        VisionAlignedRQ(VRQConfig(codebook_sizes=SIZES)).fit(TrainingSet(data.items))


def test_squared_distances_agree_for_numpy_and_torch_expanded_or_not() -> None:
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    truth = np.array([[float(((a - b) ** 2).sum()) for b in c] for a in x])
    for expanded in (True, False):
        assert np.allclose(squared_distances(x, c, expanded=expanded), truth, atol=1e-5)
        assert np.allclose(squared_distances(torch.from_numpy(x), torch.from_numpy(c), expanded=expanded).numpy(),
                           truth, atol=1e-5)
    assert float(mean_squared_error(x[:4], c)) == pytest.approx(float(np.trace(truth[:4])) / 4)


def test_the_latent_quantizer_returns_quantized_indices_and_a_loss_that_trains_the_codes() -> None:
    torch.manual_seed(0)
    q = ResidualQuantizer(latent_dim=6, codebook_sizes=(5, 3), commitment_weight=0.5)
    z = torch.randn(10, 6, requires_grad=True)
    quantized, indices, loss = q(z)
    assert indices.shape == (10, 2) and torch.equal(quantized, q.get_output_from_indices(indices))
    loss.backward()
    used = torch.zeros(5, dtype=torch.bool)
    used[indices[:, 0]] = True
    grad = q.codebooks[0].grad.abs().sum(1)
    assert (grad[used] > 0).all() and (grad[~used] == 0).all()  # only chosen codes move (codebook loss)
    assert z.grad.abs().sum() > 0  # the latent is pulled towards its quantisation (commitment loss)
