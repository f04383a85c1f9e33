"""Semantic IDs: collision handling (a final disambiguation token) and the prefix trie of valid SIDs.

The trie is stored flat, level by level (CSR): node n at depth t has children
`child_token[t][start[t][n]:start[t][n+1]]` leading to nodes `child_node[t][...]` at depth t+1. A batch of
beams (node ids) turns into a dense mask of allowed next tokens with one scatter, no Python loop per beam.

For decoding, `transitions(t)` is the level as one dense table (n_nodes_t, V_t) of child node ids (-1: not
a valid continuation), built once per level and kept, while it fits `DENSE_LIMIT` cells: a beam step is then
one gather for the mask and one for the next nodes. Deeper, larger levels stay CSR (`allowed_mask`/`step`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DENSE_LIMIT = 1 << 25  # cells of a dense transition table (int64: 256 MiB at the limit)


@dataclass(frozen=True)
class SemanticIds:
    item_ids: np.ndarray  # int64 (N,)
    sids: np.ndarray  # int64 (N, L + 1): L codes + the disambiguation token
    collision_rate: float  # share of items whose L-code path was shared before disambiguation

    @property
    def depth(self) -> int:
        return self.sids.shape[1]

    def vocab_sizes(self, codebook_sizes: tuple[int, ...]) -> tuple[int, ...]:
        return (*codebook_sizes, int(self.sids[:, -1].max()) + 1)


def assign_sids(item_ids: np.ndarray, codes: np.ndarray) -> SemanticIds:
    """Append a disambiguation token: the rank of each item (by id) among items with the same path."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    order = np.lexsort((item_ids, *codes.T[::-1]))
    sorted_codes = codes[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = (sorted_codes[1:] != sorted_codes[:-1]).any(1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    token = np.empty(len(order), dtype=np.int64)
    token[order] = np.arange(len(order)) - group_start
    group_id = np.cumsum(new_group) - 1
    sizes = np.bincount(group_id)
    collided = np.empty(len(order), dtype=bool)
    collided[order] = sizes[group_id] > 1
    return SemanticIds(item_ids, np.concatenate([codes, token[:, None]], 1), float(collided.mean()) if len(order) else 0.0)


@dataclass
class SidTrie:
    vocab_sizes: tuple[int, ...]
    start: list[np.ndarray]  # per depth t: (n_nodes_t + 1,) CSR offsets
    child_token: list[np.ndarray]  # per depth t: tokens of the children, grouped by parent
    child_node: list[np.ndarray]  # per depth t: node ids (at depth t + 1) of those children
    leaf_item: np.ndarray  # item id of every leaf node

    def __post_init__(self) -> None:
        self._dense: dict[int, torch.Tensor | None] = {}
        self._penalty: dict[int, torch.Tensor | None] = {}
        self._single_leaf: list[np.ndarray] | None = None
        self._dense_tables: tuple | None | bool = False  # False: not built yet

    @property
    def depth(self) -> int:
        return len(self.vocab_sizes)

    def transitions(self, depth: int) -> torch.Tensor | None:
        """Dense (n_nodes, V) child node ids of a level (-1 where the token is invalid), or None when the
        level is larger than `DENSE_LIMIT` cells."""
        if depth not in self._dense:
            n_nodes, v = len(self.start[depth]) - 1, self.vocab_sizes[depth]
            table = None
            if n_nodes * v <= DENSE_LIMIT:
                counts = np.diff(self.start[depth])
                parents = np.repeat(np.arange(n_nodes), counts)
                dense = np.full((n_nodes, v), -1, np.int64)
                dense[parents, self.child_token[depth]] = self.child_node[depth]
                table = torch.from_numpy(dense)
            self._dense[depth] = table
        return self._dense[depth]

    def penalty(self, depth: int, nodes: torch.Tensor) -> torch.Tensor:
        """float32 (len(nodes), V): 0 where the token continues the prefix to a valid SID, -inf where not.
        Adding it to scores masks invalid tokens (x + 0 = x exactly) with one gather of a table kept per level."""
        if depth not in self._penalty:
            table = self.transitions(depth)
            self._penalty[depth] = None if table is None else torch.where(table < 0, -torch.inf, 0.0).float()
        table = self._penalty[depth]
        if table is None:
            return torch.where(self.next_nodes(depth, nodes) < 0, -torch.inf, 0.0).float()
        return table.index_select(0, nodes)

    def penalty_table(self, depth: int) -> np.ndarray | None:
        """`penalty`'s per-node table of a level as a NumPy view (nodes, V); None where the level has no dense
        transition table (a large catalogue's deep levels)."""
        if depth not in self._penalty:
            self.penalty(depth, torch.zeros(0, dtype=torch.long))  # builds the table once
        table = self._penalty[depth]
        return None if table is None else table.numpy()

    def dense_tables(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None:
        """Every level's (penalty, transition, single-leaf) tables as NumPy arrays, three tuples indexed by level
        (what a compiled search reads), or None when a level has no dense table. Built once."""
        if self._dense_tables is False:
            levels = range(self.depth)
            if any(self.penalty_table(t) is None for t in levels):
                self._dense_tables = None
            else:
                self._dense_tables = (tuple(self.penalty_table(t) for t in levels),
                                      tuple(self.transitions(t).numpy() for t in levels),
                                      tuple(self.single_leaf(t) for t in levels))
        return self._dense_tables

    def single_leaf(self, depth: int) -> np.ndarray:
        """bool (n_nodes_depth,): whether a prefix node leads to exactly one SID, so every token after it is forced."""
        if self._single_leaf is None:
            leaves = np.ones(len(self.leaf_item), np.int64)
            single = [leaves == 1]
            for t in range(self.depth - 1, -1, -1):  # every node has a child, so reduceat never sees an empty run
                leaves = np.add.reduceat(leaves[self.child_node[t]], self.start[t][:-1]) if len(self.child_node[t]) \
                    else np.zeros(len(self.start[t]) - 1, np.int64)
                single.append(leaves == 1)
            self._single_leaf = single[::-1]
        return self._single_leaf[depth]

    def child(self, depth: int, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Child node ids of valid (node, token) pairs, (N,)."""
        table = self.transitions(depth)
        if table is not None:
            return table[nodes, tokens]
        return torch.from_numpy(np.asarray(self.step(depth, nodes.numpy(), tokens.numpy()), np.int64))

    def next_nodes(self, depth: int, nodes: torch.Tensor) -> torch.Tensor:
        """(len(nodes), V) child node ids of each prefix's every next token; -1 where invalid."""
        table = self.transitions(depth)
        if table is not None:
            return table.index_select(0, nodes)
        n = nodes.numpy()
        out = np.full((len(n), self.vocab_sizes[depth]), -1, np.int64)
        mask = self.allowed_mask(depth, n)
        rows, toks = np.nonzero(mask)
        out[rows, toks] = self.step(depth, n[rows], toks)
        return torch.from_numpy(out)

    @classmethod
    def build(cls, sem: SemanticIds, vocab_sizes: tuple[int, ...]) -> "SidTrie":
        sids = sem.sids
        if sids.shape[1] != len(vocab_sizes):
            raise ValueError(f"SIDs have {sids.shape[1]} tokens but {len(vocab_sizes)} vocab sizes were given")
        for t, v in enumerate(vocab_sizes):
            if sids.shape[0] and (sids[:, t].min() < 0 or sids[:, t].max() >= v):
                raise ValueError(f"SID token at level {t} outside [0, {v})")
        order = np.lexsort(sids.T[::-1])
        sids = sids[order]
        items = sem.item_ids[order]
        if len(sids) > 1 and not (sids[1:] != sids[:-1]).any(1).all():
            raise ValueError("SIDs are not unique; run assign_sids first")
        starts, tokens, nodes = [], [], []
        parent = np.zeros(len(sids), dtype=np.int64)  # node id of each SID's prefix at the current depth
        n_nodes = 1
        for t in range(sids.shape[1]):
            prefix_new = np.ones(len(sids), dtype=bool)
            if len(sids) > 1:
                prefix_new[1:] = (sids[1:, : t + 1] != sids[:-1, : t + 1]).any(1)
            child = np.cumsum(prefix_new) - 1
            firsts = np.flatnonzero(prefix_new)
            counts = np.bincount(parent[firsts], minlength=n_nodes)
            starts.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
            tokens.append(sids[firsts, t].astype(np.int64))
            nodes.append(child[firsts].astype(np.int64))
            parent = child
            n_nodes = len(firsts)
        return cls(tuple(int(v) for v in vocab_sizes), starts, tokens, nodes, items.astype(np.int64))

    def allowed_mask(self, depth: int, nodes: np.ndarray) -> np.ndarray:
        """bool (len(nodes), vocab_sizes[depth]): which next tokens keep each prefix valid."""
        start, end = self.start[depth][nodes], self.start[depth][nodes + 1]
        counts = end - start
        rows = np.repeat(np.arange(len(nodes)), counts)
        flat = np.repeat(start - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        mask = np.zeros((len(nodes), self.vocab_sizes[depth]), dtype=bool)
        mask[rows, self.child_token[depth][flat]] = True
        return mask

    def step(self, depth: int, nodes: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Node ids after appending `tokens` to the prefixes `nodes`; -1 where the SID is invalid."""
        start, end = self.start[depth][nodes], self.start[depth][nodes + 1]
        out = np.full(len(nodes), -1, dtype=np.int64)
        toks = self.child_token[depth]
        for_search = np.arange(len(nodes))
        # children are sorted by token inside each parent: binary search per row, vectorised
        lo, hi = start.copy(), end.copy()
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            go_right = active & (toks[np.minimum(mid, len(toks) - 1)] < tokens)
            lo = np.where(go_right, mid + 1, lo)
            hi = np.where(active & ~go_right, mid, hi)
        found = (lo < end) & (toks[np.minimum(lo, len(toks) - 1)] == tokens)
        out[for_search[found]] = self.child_node[depth][lo[found]]
        return out

    def lookup(self, sids: np.ndarray) -> np.ndarray:
        """Item id of each full SID row; -1 where the SID is not in the catalogue."""
        sids = np.asarray(sids, dtype=np.int64)
        nodes = np.zeros(len(sids), dtype=np.int64)
        valid = np.ones(len(sids), dtype=bool)
        for t in range(self.depth):
            tok = sids[:, t]
            ok = valid & (tok >= 0) & (tok < self.vocab_sizes[t])
            nxt = np.full(len(sids), -1, dtype=np.int64)
            if ok.any():
                nxt[ok] = self.step(t, nodes[ok], tok[ok])
            valid = ok & (nxt >= 0)
            nodes = np.where(valid, nxt, 0)
        return np.where(valid, self.leaf_item[nodes], -1)

    def save(self, path: Path) -> None:
        arrays = {"vocab_sizes": np.array(self.vocab_sizes), "leaf_item": self.leaf_item}
        for t in range(self.depth):
            arrays[f"start_{t}"] = self.start[t]
            arrays[f"child_token_{t}"] = self.child_token[t]
            arrays[f"child_node_{t}"] = self.child_node[t]
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "SidTrie":
        with np.load(path) as z:
            depth = len(z["vocab_sizes"])
            return cls(
                tuple(int(v) for v in z["vocab_sizes"]),
                [z[f"start_{t}"] for t in range(depth)],
                [z[f"child_token_{t}"] for t in range(depth)],
                [z[f"child_node_{t}"] for t in range(depth)],
                z["leaf_item"],
            )
