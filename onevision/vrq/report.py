"""Quality of a semantic-ID code assignment: view consistency, collisions, codebook use, reconstruction."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class CodeQuality:
    method: str
    view_consistency: list[float]  # per level: share of shop views whose code prefix up to l equals the item's
    photo_consistency: list[float]  # the same for held-out user photos
    collision_rate: float  # share of items whose full path is shared with another item
    utilisation: list[float]  # per level: share of codes used by at least one item
    perplexity: list[float]  # per level: exp(entropy) of the item code distribution
    reconstruction_mse: float

    def to_dict(self) -> dict:
        return asdict(self)


def prefix_consistency(view_codes: np.ndarray, item_codes_of_view: np.ndarray) -> list[float]:
    if len(view_codes) == 0:
        return [float("nan")] * item_codes_of_view.shape[1]
    equal = np.cumprod(view_codes == item_codes_of_view, axis=1).astype(bool)
    return [round(float(v), 6) for v in equal.mean(0)]


def collision_rate(codes: np.ndarray) -> float:
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return round(float((counts[inverse.ravel()] > 1).mean()), 6)


def code_usage(codes: np.ndarray, codebook_sizes: tuple[int, ...]) -> tuple[list[float], list[float]]:
    util, perp = [], []
    for level, k in enumerate(codebook_sizes):
        counts = np.bincount(codes[:, level], minlength=k).astype(float)
        p = counts[counts > 0] / counts.sum()
        util.append(round(float((counts > 0).mean()), 6))
        perp.append(round(float(np.exp(-(p * np.log(p)).sum())), 4))
    return util, perp


def code_quality(
    method: str,
    item_codes: np.ndarray,
    view_codes: np.ndarray,
    view_item_row: np.ndarray,
    photo_codes: np.ndarray,
    photo_item_row: np.ndarray,
    codebook_sizes: tuple[int, ...],
    reconstruction_mse: float,
) -> CodeQuality:
    util, perp = code_usage(item_codes, codebook_sizes)
    return CodeQuality(
        method=method,
        view_consistency=prefix_consistency(view_codes, item_codes[view_item_row]),
        photo_consistency=prefix_consistency(photo_codes, item_codes[photo_item_row]),
        collision_rate=collision_rate(item_codes),
        utilisation=util,
        perplexity=perp,
        reconstruction_mse=round(float(reconstruction_mse), 6),
    )


def quality_table(rows: list[CodeQuality]) -> str:
    """A Markdown table comparing methods."""
    levels = len(rows[0].view_consistency) if rows else 0
    head = ["method"] + [f"view cons. L{l + 1}" for l in range(levels)] + [f"photo cons. L{l + 1}" for l in range(levels)]
    head += ["collisions", "utilisation", "perplexity", "recon. MSE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.method] + [f"{v:.3f}" for v in r.view_consistency] + [f"{v:.3f}" for v in r.photo_consistency]
        cells += [f"{r.collision_rate:.3f}", "/".join(f"{u:.2f}" for u in r.utilisation),
                  "/".join(f"{p:.0f}" for p in r.perplexity), f"{r.reconstruction_mse:.5f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
