"""The catalogue attributes that VRQ's attribute level codes: brand x price band."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ItemAttributes:
    """The catalogue attributes preferences act on, one row per item (in the features' item order)."""

    brand: np.ndarray  # int64 (N,)
    price_band: np.ndarray  # int64 (N,)
    n_brands: int
    n_price_bands: int

    def __post_init__(self) -> None:
        b, p = np.asarray(self.brand), np.asarray(self.price_band)
        if b.shape != p.shape or (len(b) and (b.min() < 0 or b.max() >= self.n_brands or p.min() < 0
                                             or p.max() >= self.n_price_bands)):
            raise ValueError(f"brand must lie in [0, {self.n_brands}) and price_band in [0, {self.n_price_bands}), "
                             f"one of each per item; got shapes {b.shape}, {p.shape}")

    @property
    def n_codes(self) -> int:
        return self.n_brands * self.n_price_bands

    def codes(self) -> np.ndarray:
        """The attribute code of each item: brand x price band."""
        return np.asarray(self.brand, np.int64) * self.n_price_bands + np.asarray(self.price_band, np.int64)

    def code_table(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(brand (k,), price_band (k,)) of each code of a k-code level; -1 for codes no attribute uses."""
        if self.n_codes > k:
            raise ValueError(f"{self.n_brands} brands x {self.n_price_bands} price bands = {self.n_codes} attribute "
                             f"codes do not fit the attribute level's {k} codes: raise its codebook size")
        code = np.arange(k)
        used = code < self.n_codes
        return np.where(used, code // self.n_price_bands, -1), np.where(used, code % self.n_price_bands, -1)
