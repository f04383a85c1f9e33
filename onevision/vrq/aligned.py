"""VRQ — vision-aligned residual quantisation.

On top of an encoder already aligned on multi-view pairs (contrastive + circle loss), VRQ quantises
each product's *fused* multi-view representation (its shop views and user photos) level by level:

- category injection: level-0 codes are partitioned by category, so codes stay consistent inside one;
- vision alignment (shallow levels): codebooks are refined so that every view of a product falls into
  its product's code (a cross-entropy over views, learning-vector-quantisation style), and each product
  takes the code its views vote for; an anchor term keeps codes on the products they encode;
- deep levels separate products (plain residual k-means), and the deepest residual is rotated first
  (OPQ-style refinement, alternating k-means and orthogonal Procrustes);
- attribute injection (`attribute_level`): one level's code is the item's catalogue attribute code
  (brand x price band), the thing user preferences act on. Near-duplicates differ mostly by brand, so this
  level separates them, and a generator's user tokens can choose among visually equal items with one
  shared output head instead of memorising which code means which brand under every prefix. Its
  codebook is the mean residual of the items with each code, so `encode` and `reconstruct` still work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onevision.vrq.kmeans import kmeans
from onevision.vrq.config import VRQConfig
from onevision.vrq.quantizer import (
    Quantized, TrainingSet, mean_squared_error, residual_quantize, residual_reconstruction, squared_distances,
)


def category_code_mask(categories: np.ndarray, n_codes: int) -> np.ndarray:
    """bool (n_categories, n_codes): contiguous code ranges per category, sized by item count."""
    n_cat = int(categories.max()) + 1
    counts = np.bincount(categories, minlength=n_cat).astype(float)
    present = counts > 0
    if n_codes < present.sum():
        raise ValueError(f"{n_codes} level-0 codes cannot cover {int(present.sum())} categories")
    share = np.where(present, np.maximum(1, np.floor(counts / counts.sum() * n_codes)), 0).astype(int)
    while share.sum() > n_codes:
        share[np.argmax(share)] -= 1
    share[np.argmax(counts)] += n_codes - share.sum()
    bounds = np.concatenate([[0], np.cumsum(share)])
    mask = np.zeros((n_cat, n_codes), dtype=bool)
    for c in range(n_cat):
        mask[c, bounds[c] : bounds[c + 1]] = True
    return mask


def fused_representation(item_emb: np.ndarray, view_emb: np.ndarray, view_item_row: np.ndarray) -> np.ndarray:
    """float32 (N, D): what VRQ quantises for each item, the mean of its embedding and its views' embeddings."""
    counts = np.bincount(view_item_row, minlength=len(item_emb))[:, None]
    sums = item_emb.astype(np.float32).copy()
    np.add.at(sums, view_item_row, view_emb)
    return (sums / (1 + counts)).astype(np.float32)


def _masked_argmin(d: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return (np.where(mask, d, np.inf) if mask is not None else d).argmin(1)


def _distinct_within_prefix(d: np.ndarray, prefix: np.ndarray | None) -> np.ndarray:
    """Deepest level: items sharing a prefix take distinct codes (greedy, nearest pairs first), so
    different products keep different paths whenever a prefix group is not larger than the codebook."""
    codes = d.argmin(1)
    if prefix is None:
        return codes
    _, group = np.unique(prefix, axis=0, return_inverse=True)
    group = group.ravel()
    for g in np.flatnonzero(np.bincount(group) > 1):
        members = np.flatnonzero(group == g)
        sub = d[members]
        order = np.dstack(np.unravel_index(np.argsort(sub, axis=None), sub.shape))[0]
        taken_items, taken_codes = set(), set()
        for i, c in order:
            if i in taken_items or c in taken_codes:
                continue
            codes[members[i]] = c
            taken_items.add(i)
            taken_codes.add(c)
            if len(taken_items) == len(members) or len(taken_codes) == d.shape[1]:
                break
    return codes


def _code_means(x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    sums = np.zeros((k, x.shape[1]), np.float64)
    np.add.at(sums, codes, x)
    return (sums / np.maximum(np.bincount(codes, minlength=k), 1)[:, None]).astype(np.float32)


def _opq_rotation(x: np.ndarray, k: int, seed: int, iters: int = 4) -> np.ndarray:
    rotation = np.eye(x.shape[1], dtype=np.float32)
    for it in range(iters):
        xr = x @ rotation
        centroids = kmeans(xr, k, seed=seed + it, niter=10)
        target = centroids[squared_distances(xr, centroids).argmin(1)]
        u, _, vt = np.linalg.svd(x.T @ target)
        rotation = (u @ vt).astype(np.float32)
    return rotation


# The alignment scale subtracts every item from every code (N x K x D values); above this many at once it is
# summed a chunk of items at a time (a 100k-item catalogue would need 13 GB in one piece).
DIRECT_DISTANCE_LIMIT = 2**29


def _mean_squared_distance(items, codebook):
    """Mean squared distance of every item to every code, without the expanded form's cancellation error."""
    import torch

    n, (k, d) = len(items), codebook.shape
    if n * k * d <= DIRECT_DISTANCE_LIMIT:
        return squared_distances(items, codebook, expanded=False).mean()
    rows = max(1, DIRECT_DISTANCE_LIMIT // (k * d))
    total = sum(squared_distances(items[i : i + rows], codebook, expanded=False).double().sum()
                for i in range(0, n, rows))
    return (total / (n * k)).to(torch.float32)


def _refine_sampler(n_items: int, view_item: np.ndarray, cfg: VRQConfig):
    """None (every gradient step sees every row) up to `refine_max_items` items; above, a callable drawing each step's
    (item rows, view rows): a fresh seeded sample of that many items with their views, so every item is seen over
    the steps."""
    if cfg.refine_max_items is None or n_items <= cfg.refine_max_items:
        return None
    rng = np.random.default_rng([cfg.seed, 11])

    def sample() -> tuple[np.ndarray, np.ndarray]:
        items = np.sort(rng.choice(n_items, cfg.refine_max_items, replace=False))
        return items, np.flatnonzero(np.isin(view_item, items))
    return sample


def _refine_aligned(
    centroids: np.ndarray, item_x: np.ndarray, view_x: np.ndarray, view_item: np.ndarray,
    item_mask: np.ndarray | None, cfg: VRQConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Codebook refinement so views land in their item's code; items take the code their views vote for. On a
    large catalogue each gradient step sees a sample of the items (`VRQConfig.refine_max_items`) with their views;
    the votes always code every item."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(cfg.seed)
    c = torch.nn.Parameter(torch.from_numpy(centroids.copy()))
    items = torch.from_numpy(item_x)
    views = torch.from_numpy(view_x)
    owner = torch.from_numpy(view_item)
    mask = torch.from_numpy(item_mask) if item_mask is not None else None
    opt = torch.optim.Adam([c], lr=cfg.lr)
    sample = _refine_sampler(len(item_x), view_item, cfg)

    def vote(logits_v: torch.Tensor, logits_i: torch.Tensor) -> torch.Tensor:
        votes = torch.softmax(logits_i, 1).clone()
        votes.index_add_(0, owner, torch.softmax(logits_v, 1))
        if mask is not None:
            votes = votes.masked_fill(~mask, -1.0)
        return votes.argmax(1)

    def logits(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return -squared_distances(x, c) / (cfg.temperature * scale)

    with torch.no_grad():
        scale = _mean_squared_distance(items, c)
        codes = vote(logits(views, scale), logits(items, scale))
    for step in range(cfg.refine_steps):
        if sample is None:
            lv, li = logits(views, scale), logits(items, scale)
            loss = F.cross_entropy(lv, codes[owner]) + F.cross_entropy(li, codes)
            loss = loss + cfg.anchor_weight * mean_squared_error(items, c[codes]) / scale
        else:
            rows, view_rows = (torch.from_numpy(b) for b in sample())
            step_items, step_codes = items[rows], codes[rows]
            lv, li = logits(views[view_rows], scale), logits(step_items, scale)
            loss = F.cross_entropy(lv, codes[owner[view_rows]]) + F.cross_entropy(li, step_codes)
            loss = loss + cfg.anchor_weight * mean_squared_error(step_items, c[step_codes]) / scale
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9:
            with torch.no_grad():
                codes = vote(logits(views, scale), logits(items, scale))
    with torch.no_grad():
        codes = vote(logits(views, scale), logits(items, scale))
    return c.detach().numpy().astype(np.float32), codes.numpy().astype(np.int64)


@dataclass
class VisionAlignedRQ:
    """A `Quantizer`: `VisionAlignedRQ(config).fit(data)`, or `load` a fitted one."""

    config: VRQConfig = VRQConfig()
    codebooks: list[np.ndarray] = field(default_factory=list)
    rotation: np.ndarray | None = None
    category_mask: np.ndarray | None = None

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return self.config.codebook_sizes

    def fit(self, data: TrainingSet) -> Quantized:
        """The items' codes follow their views (`data.views`, `data.view_item_row`), categories (`data.category`)
        and, with `config.attribute_level`, attributes (`data.attributes`, then required)."""
        config = self.config
        item_emb, item_category, view_emb, view_item_row = data.items, data.category, data.views, data.view_item_row
        if item_category is None or view_emb is None or view_item_row is None:
            raise ValueError("VRQ needs the items' categories and their views (view_item_row: the item of each view)")
        n = len(item_emb)
        item_attribute = None
        if config.attribute_level is not None:
            attributes = data.attributes
            if attributes is None or np.shape(attributes.brand) != (n,):
                raise ValueError(f"attribute_level={config.attribute_level} needs the attributes of all {n} items")
            attributes.code_table(config.codebook_sizes[config.attribute_level])  # raises when they do not fit
            item_attribute = attributes.codes()
        item_res = fused_representation(item_emb, view_emb, view_item_row)
        view_res = view_emb.astype(np.float32).copy()
        cat_mask = category_code_mask(item_category, config.codebook_sizes[0]) if config.category_partition else None
        codebooks, codes, rotation = [], [], None
        last = len(config.codebook_sizes) - 1
        for level, k in enumerate(config.codebook_sizes):
            seed = config.seed + level
            if level == config.attribute_level:
                level_codes = np.asarray(item_attribute, np.int64)
                centroids = _code_means(item_res, level_codes, k)
                item_res -= centroids[level_codes]
                view_res -= centroids[level_codes][view_item_row]
                codebooks.append(centroids)
                codes.append(level_codes)
                continue
            rotate = level == last and config.rotate_last and level > 0 and config.attribute_level != last
            rot = _opq_rotation(item_res, k, seed) if rotate else None
            ix = item_res @ rot if rot is not None else item_res
            vx = view_res @ rot if rot is not None else view_res
            mask = cat_mask[item_category] if level == 0 and cat_mask is not None else None
            if mask is not None:
                centroids = np.zeros((k, ix.shape[1]), np.float32)
                for cat in np.unique(item_category):
                    members = item_category == cat
                    slots = np.flatnonzero(cat_mask[cat])
                    centroids[slots] = kmeans(ix[members], len(slots), seed=seed)
            else:
                centroids = kmeans(ix, k, seed=seed)
            if level < config.aligned_levels:
                centroids, level_codes = _refine_aligned(centroids, ix, vx, view_item_row, mask, config)
            elif level == last:
                prefix = np.stack(codes, 1) if codes else None
                level_codes = _distinct_within_prefix(squared_distances(ix, centroids), prefix)
            else:
                level_codes = _masked_argmin(squared_distances(ix, centroids), mask)
            step = centroids[level_codes] @ rot.T if rot is not None else centroids[level_codes]
            item_res -= step
            view_res -= step[view_item_row]
            codebooks.append(centroids)
            codes.append(level_codes)
            rotation = rot if rot is not None else rotation
        self.codebooks, self.rotation, self.category_mask = codebooks, rotation, cat_mask
        indices = np.stack(codes, 1)
        return Quantized.of(item_emb, self.get_output_from_indices(indices), indices)

    def quantize(self, x: np.ndarray) -> Quantized:
        """Greedy codes (N, L) of new embeddings (no category known) and their reconstruction."""
        if not self.codebooks:
            raise ValueError("VisionAlignedRQ has no codebooks: fit or load it first")
        return residual_quantize(x, self.codebooks, self.rotation)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.quantize(x).indices

    def get_output_from_indices(self, indices: np.ndarray) -> np.ndarray:
        return residual_reconstruction(indices, self.codebooks, self.rotation)

    def save(self, directory: Path) -> None:
        arrays = {f"codebook_{i}": cb for i, cb in enumerate(self.codebooks)}
        if self.rotation is not None:
            arrays["rotation"] = self.rotation
        if self.category_mask is not None:
            arrays["category_mask"] = self.category_mask
        np.savez(Path(directory) / "codebooks.npz", **arrays)

    @classmethod
    def load(cls, directory: Path, config: VRQConfig) -> "VisionAlignedRQ":
        with np.load(Path(directory) / "codebooks.npz") as z:
            books = [z[f"codebook_{i}"] for i in range(len(config.codebook_sizes))]
            return cls(config, books, z["rotation"] if "rotation" in z else None,
                       z["category_mask"] if "category_mask" in z else None)
