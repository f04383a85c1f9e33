"""Stage 1: ANN recall, a faiss inner-product index over item embeddings."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from onevision.cascade.candidates import Candidates
from onevision.cascade.config import RecallConfig

INDEX_FILE = "index.faiss"
IDS_FILE = "item_ids.npy"
CONFIG_FILE = "recall.json"


class AnnRecall:
    def __init__(self, index, item_ids: np.ndarray, config: RecallConfig):  # index: faiss.Index
        if index.ntotal != len(item_ids):
            raise ValueError(f"faiss index holds {index.ntotal} vectors but {len(item_ids)} item ids were given")
        self.index = index
        self.item_ids = np.asarray(item_ids, np.int64)
        self.config = config
        if self.kind == "hnsw":
            index.hnsw.efSearch = config.hnsw_ef_search

    @property
    def kind(self) -> str:
        """The index actually built: 'hnsw' (graph) or 'flat' (exact)."""
        return "hnsw" if hasattr(self.index, "hnsw") else "flat"

    @classmethod
    def fit(cls, item_ids: np.ndarray, item_emb: np.ndarray, config: RecallConfig = RecallConfig()) -> AnnRecall:
        import faiss

        emb = np.ascontiguousarray(item_emb, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(item_ids) or len(emb) == 0:
            raise ValueError(f"expected item embeddings (N, D) with N = {len(item_ids)} > 0, got {emb.shape}")
        d = emb.shape[1]
        if config.index_for(len(emb)) == "hnsw":
            index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexFlatIP(d)
        index.add(emb)
        return cls(index, item_ids, config)

    def updated(self, add_ids: np.ndarray, add_emb: np.ndarray, remove_ids: np.ndarray | None = None) -> AnnRecall:
        """A new index over this one's items without `remove_ids`, plus `add_ids` with their embeddings (a
        catalogue refresh). The stored vectors are read back and the index is rebuilt with the same config, so
        flat and HNSW indexes behave alike (HNSW cannot delete in place)."""
        add_ids = np.asarray(add_ids, np.int64)
        remove = np.asarray([] if remove_ids is None else remove_ids, np.int64)
        clash = np.intersect1d(add_ids, self.item_ids)
        if len(clash):
            raise ValueError(f"items already in the ANN index: {clash[:5].tolist()}")
        keep = ~np.isin(self.item_ids, remove)
        stored = self.index.reconstruct_n(0, self.index.ntotal)
        add = np.asarray(add_emb, np.float32).reshape(len(add_ids), self.dim)
        return AnnRecall.fit(np.concatenate([self.item_ids[keep], add_ids]),
                             np.concatenate([stored[keep], add]), self.config)

    @property
    def dim(self) -> int:
        return self.index.d

    def __call__(self, query_emb: np.ndarray, n: int | None = None) -> Candidates:
        """Top-n (default config.n, at most the catalogue) items per query embedding (B, D)."""
        q = np.ascontiguousarray(query_emb, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"expected query embeddings of shape (B, {self.dim}), got {q.shape}")
        n = min(self.config.n if n is None else n, self.index.ntotal)
        sims, rows = self.index.search(q, n)
        valid = rows >= 0
        ids = np.where(valid, self.item_ids[np.where(valid, rows, 0)], -1)
        sims = np.where(valid, sims, -np.inf).astype(np.float32)
        return Candidates(item_ids=ids, scores=sims, sim=np.where(valid, sims, 0.0).astype(np.float32), query_emb=q)

    def save(self, directory: str | Path) -> Path:
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        np.save(directory / IDS_FILE, self.item_ids)
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> AnnRecall:
        import faiss

        directory = Path(directory)
        for name in (INDEX_FILE, IDS_FILE, CONFIG_FILE):
            if not (directory / name).exists():
                raise FileNotFoundError(f"ANN recall artifact missing: {directory / name}")
        config = RecallConfig(**json.loads((directory / CONFIG_FILE).read_text()))
        return cls(faiss.read_index(str(directory / INDEX_FILE)), np.load(directory / IDS_FILE), config)
