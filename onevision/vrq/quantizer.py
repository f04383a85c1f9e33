"""The one protocol VRQ and its two baselines (RQ-KMeans, plain RQ-VAE) implement, and the distances they share.

Like lucidrains/vector-quantize-pytorch: quantising a batch gives `(quantized, indices, loss)`, and
`get_output_from_indices` turns codes back into vectors. `fit` learns the codebooks and returns the training
items' own quantisation, which for VRQ is not what greedy `quantize` would give (its codes follow the items'
views, categories and attributes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

import numpy as np

from onevision.vrq.attributes import ItemAttributes

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")


def squared_distances(x: Array, codebook: Array, expanded: bool = True) -> Array:
    """(N, K) squared Euclidean distance of every row of `x` (N, D) to every code (K, D), numpy or torch.
    Expanded, |x|² - 2 x·c + |c|²: one matrix product. Not expanded, the difference of every pair: N x K x D
    memory, without the expanded form's cancellation error (VRQ's alignment scale is computed so)."""
    if not expanded:
        return ((x[:, None] - codebook[None]) ** 2).sum(-1)
    return (x * x).sum(-1)[:, None] - 2 * x @ codebook.T + (codebook * codebook).sum(-1)[None]


def mean_squared_error(a: Array, b: Array) -> Array:
    """Squared distance between paired rows, summed over the vector and averaged over the rows."""
    return ((a - b) ** 2).sum(-1).mean()


class Quantized(NamedTuple):
    quantized: np.ndarray  # float32 (N, D): each vector's reconstruction from its codes
    indices: np.ndarray  # int64 (N, L): one code per level
    loss: float  # mean squared quantisation error

    @classmethod
    def of(cls, x: np.ndarray, reconstruction: np.ndarray, indices: np.ndarray) -> "Quantized":
        return cls(reconstruction, indices, float(mean_squared_error(reconstruction, x)))


@dataclass(frozen=True)
class TrainingSet:
    """What a quantiser learns from. The baselines use `items` only; VRQ also the items' categories, other views
    of them (shop views, user photos) and, with an attribute level, their catalogue attributes."""

    items: np.ndarray  # float32 (N, D)
    category: np.ndarray | None = None  # int64 (N,)
    views: np.ndarray | None = None  # float32 (M, D)
    view_item_row: np.ndarray | None = None  # int64 (M,): row in `items` of each view
    attributes: ItemAttributes | None = None  # rows in `items` order


class Quantizer(Protocol):
    @property
    def codebook_sizes(self) -> tuple[int, ...]: ...

    def fit(self, data: TrainingSet) -> Quantized:
        """Learn the codebooks (in place) and return the quantisation of `data.items`."""

    def quantize(self, x: np.ndarray) -> Quantized:
        """Greedy codes of new vectors, their reconstruction and its error."""

    def encode(self, x: np.ndarray) -> np.ndarray:
        """`quantize(x).indices`."""

    def get_output_from_indices(self, indices: np.ndarray) -> np.ndarray:
        """Reconstruction (N, D) of codes (N, L)."""


def residual_quantize(x: np.ndarray, codebooks: list[np.ndarray], last_rotation: np.ndarray | None = None) -> Quantized:
    """Greedy residual codes (N, L) of `x` and their reconstruction; with `last_rotation`, the deepest level
    codes the rotated residual (OPQ-style)."""
    residual = x.astype(np.float32).copy()
    codes = []
    last = len(codebooks) - 1
    for level, cb in enumerate(codebooks):
        rot = last_rotation if level == last else None
        xr = residual @ rot if rot is not None else residual
        c = squared_distances(xr, cb).argmin(1)
        residual -= cb[c] @ rot.T if rot is not None else cb[c]
        codes.append(c)
    return Quantized.of(x, x - residual, np.stack(codes, 1))


def residual_reconstruction(indices: np.ndarray, codebooks: list[np.ndarray],
                            last_rotation: np.ndarray | None = None) -> np.ndarray:
    """The sum of each level's code vector (the deepest rotated back when `last_rotation` is given)."""
    out = np.zeros((len(indices), codebooks[0].shape[1]), np.float32)
    last = len(codebooks) - 1
    for level, cb in enumerate(codebooks):
        v = cb[indices[:, level]]
        out += v @ last_rotation.T if level == last and last_rotation is not None else v
    return out
