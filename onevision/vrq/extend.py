"""Semantic IDs for items listed after VRQ was fitted, with its codebooks frozen (a catalogue refresh).

Level by level, like the fit:
- level 0 (the category-partitioned visual level): the code its visual neighbours carry (a similarity-weighted
  vote of the `NEIGHBOURS` nearest listed items of its category, by the frozen encoder's item embeddings), which
  is the code a generator trained on them emits for a photo that looks like them; without neighbours (none
  given, or none in its category) the nearest code of its category from its fused multi-view representation;
- the attribute level: the code of the item's brand x price band. A combination no item had before keeps its
  code (it exists, but no SID carries it: recorded as new); a brand or price band beyond the fitted table takes a
  free code (one no attribute used) and `AttributeCodes` records what it means from now on;
- other levels: the nearest code; at the deepest code level the nearest code that no other item (listed, new or
  delisted in this refresh) has under the item's prefix, so SIDs stay unique without a disambiguation token;
- only when every deepest code under the prefix is taken does the item get the next free disambiguation token.
  The generator's last head has `vocab_sizes[-1]` outputs: a token beyond it cannot be emitted, so the refresh
  refuses (`SidSpaceFull`) and the catalogue needs a new VRQ + generator fit.

Delisted items leave the SID table and the trie, so no decoder can return them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from onevision.vrq.aligned import fused_representation
from onevision.vrq.fit import AttributeCodes, VRQArtifact
from onevision.vrq.quantizer import squared_distances
from onevision.vrq.sid import SemanticIds, SidTrie


class SidSpaceFull(ValueError):
    """No SID the generator can emit is left for an item (every code and token under its prefix is taken)."""


@dataclass(frozen=True)
class NewItems:
    """What the frozen VRQ needs to know of new items (rows in `item_ids` order)."""

    item_ids: np.ndarray  # int64 (N,)
    item_emb: np.ndarray  # float32 (N, D): the frozen encoder's item embeddings
    view_emb: np.ndarray  # float32 (M, D): their shop views
    view_item_row: np.ndarray  # int64 (M,)
    category: np.ndarray  # int64 (N,)
    brand: np.ndarray  # int64 (N,)
    price_band: np.ndarray  # int64 (N,)


@dataclass(frozen=True)
class ListedItems:
    """The items VRQ was fitted on, as the frozen encoder embedded them (the catalogue features)."""

    item_ids: np.ndarray  # int64 (K,)
    item_emb: np.ndarray  # float32 (K, D), L2-normalised
    category: np.ndarray  # int64 (K,)


NEIGHBOURS = 5  # listed items whose level-0 codes vote for a new item's


@dataclass(frozen=True)
class Assignment:
    """How one new item got its SID."""

    item_id: int
    sid: tuple[int, ...]
    new_codes: tuple[int, ...]  # levels whose code no listed item carried before (the generator never emitted it)
    new_attribute_code: bool  # the attribute level took a free code for an unseen brand / price band
    disambiguated: bool  # every deepest code under the prefix was taken: the last token is not 0

    def to_json(self) -> dict:
        return {"item_id": self.item_id, "sid": list(self.sid), "new_codes": list(self.new_codes),
                "new_attribute_code": self.new_attribute_code, "disambiguated": self.disambiguated}


@dataclass(frozen=True)
class Extension:
    artifact: VRQArtifact  # the refreshed artifact (same quantiser, new SIDs, trie and attribute table)
    added: list[Assignment]
    removed: list[tuple[int, tuple[int, ...]]]  # (item id, its former SID)


def _attribute_code(codes: AttributeCodes, brand: int, band: int) -> tuple[int, AttributeCodes, bool]:
    """The code of (brand, band), taking a free one (and recording it) when the table has none."""
    hit = np.flatnonzero((codes.brand == brand) & (codes.price_band == band))
    if len(hit):
        return int(hit[0]), codes, False
    free = np.flatnonzero(codes.brand < 0)
    if not len(free):
        raise SidSpaceFull(f"brand {brand} x price band {band} is not in the attribute level's table and none of "
                           f"its {len(codes.brand)} codes is free: refit VRQ with a larger attribute level")
    code = int(free[0])
    brand_t, band_t = codes.brand.copy(), codes.price_band.copy()
    brand_t[code], band_t[code] = brand, band
    return code, replace(codes, brand=brand_t, price_band=band_t), True


def _neighbour_codes(artifact: VRQArtifact, new: NewItems, listed: ListedItems | None) -> np.ndarray:
    """Level-0 code voted by each new item's nearest listed items of its category; -1 where there are none."""
    out = np.full(len(new.item_ids), -1, np.int64)
    if listed is None:
        return out
    codes = artifact.sids_of(listed.item_ids)[:, 0]
    sims = new.item_emb @ listed.item_emb.T
    for row in range(len(new.item_ids)):
        pool = np.flatnonzero((listed.category == new.category[row]) & (codes >= 0))
        if not len(pool):
            continue
        top = pool[np.argsort(-sims[row, pool], kind="stable")[:NEIGHBOURS]]
        votes = np.bincount(codes[top], weights=np.maximum(sims[row, top], 0) + 1e-6)
        out[row] = int(votes.argmax())
    return out


def extend_sids(artifact: VRQArtifact, new: NewItems, delisted: np.ndarray | None = None,
                listed: ListedItems | None = None) -> Extension:
    """The artifact with SIDs for `new` (assigned in item id order) and without `delisted`; `listed`: the
    fitted catalogue's embeddings, whose level-0 codes the new items take."""
    q = artifact.quantizer
    cfg = q.config
    books = q.codebooks
    levels = len(books)
    last = levels - 1
    attribute_level = cfg.attribute_level
    codes_meaning = artifact.attributes
    if attribute_level is not None and codes_meaning is None:
        raise ValueError("the VRQ artifact codes an attribute level but has no attribute table (vrq.json)")
    old = artifact.sids
    vocab = artifact.trie.vocab_sizes
    delisted = np.asarray([] if delisted is None else delisted, np.int64)
    used_paths = {tuple(r) for r in old.sids[:, :levels].tolist()}
    used_full = {tuple(r) for r in old.sids.tolist()}
    keep = ~np.isin(old.item_ids, delisted)
    seen_codes = [set(old.sids[keep, t].tolist()) for t in range(levels)]
    residual = fused_representation(new.item_emb, new.view_emb, new.view_item_row)
    voted = _neighbour_codes(artifact, new, listed)
    order = np.argsort(new.item_ids, kind="stable")
    added: list[Assignment] = []
    for row in order:
        x = residual[row : row + 1].copy()
        path: list[int] = []
        new_attr = False
        for level, cb in enumerate(books):
            rot = q.rotation if level == last else None
            xr = x @ rot if rot is not None else x
            if level == attribute_level:
                code, codes_meaning, new_attr = _attribute_code(codes_meaning, int(new.brand[row]),
                                                                int(new.price_band[row]))
            else:
                d = squared_distances(xr, cb)[0]
                if level == 0 and q.category_mask is not None and new.category[row] < len(q.category_mask):
                    d = np.where(q.category_mask[new.category[row]], d, np.inf)
                if level == 0 and voted[row] >= 0:
                    code = int(voted[row])
                elif level == last:
                    free = [int(c) for c in np.argsort(d, kind="stable")
                            if np.isfinite(d[c]) and (*path, int(c)) not in used_paths]
                    code = free[0] if free else int(d.argmin())
                else:
                    code = int(d.argmin())
            x -= cb[code] @ rot.T if rot is not None else cb[code]
            path.append(code)
        token = 0
        while (*path, token) in used_full:
            token += 1
        if token >= vocab[-1]:
            raise SidSpaceFull(f"item {int(new.item_ids[row])}: every code under its prefix {path[:-1]} and all "
                               f"{vocab[-1]} disambiguation tokens of {tuple(path)} are taken; the generator's "
                               "last head cannot emit another: refit VRQ and the generator")
        sid = (*path, token)
        used_paths.add(tuple(path))
        used_full.add(sid)
        new_codes = tuple(t for t in range(levels) if path[t] not in seen_codes[t])
        for t in range(levels):
            seen_codes[t].add(path[t])
        added.append(Assignment(int(new.item_ids[row]), sid, new_codes, new_attr, token > 0))

    removed = [(int(i), tuple(s)) for i, s in zip(old.item_ids[~keep].tolist(), old.sids[~keep].tolist())]
    ids = np.concatenate([old.item_ids[keep], np.asarray([a.item_id for a in added], np.int64)])
    sids = np.concatenate([old.sids[keep], np.asarray([a.sid for a in added], np.int64).reshape(-1, old.depth)])
    by_id = np.argsort(ids, kind="stable")
    sem = SemanticIds(ids[by_id], sids[by_id], old.collision_rate)
    trie = SidTrie.build(sem, vocab)  # the generator's vocabulary: its heads do not grow
    refreshed = VRQArtifact(q, sem, trie, artifact.report, codes_meaning)
    return Extension(refreshed, added, removed)
