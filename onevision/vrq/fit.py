"""Fit VRQ on catalogue features, compare it with RQ-KMeans and plain RQ-VAE, and save the artifact
(model, SIDs, SID→item map, trie, report)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from onevision.vision.features import CatalogueFeatures
from onevision.vrq.kmeans import ResidualKMeans
from onevision.vrq.model import RQAutoencoder, VRQConfig
from onevision.vrq.report import CodeQuality, code_quality, quality_table
from onevision.vrq.sid import SemanticIds, SidTrie, assign_sids
from onevision.vrq.train import VRQTrainConfig, train_rq


@dataclass
class VRQArtifact:
    model: RQAutoencoder
    category_mask: np.ndarray | None
    sids: SemanticIds
    trie: SidTrie
    report: dict

    @property
    def config(self) -> VRQConfig:
        return self.model.config

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), directory / "codebooks.pt")
        meta = {"config": dataclasses.asdict(self.config), "vocab_sizes": list(self.trie.vocab_sizes)}
        (directory / "vrq.json").write_text(json.dumps(meta, indent=2) + "\n")
        if self.category_mask is not None:
            np.save(directory / "category_mask.npy", self.category_mask)
        table = pa.table(
            {"item_id": pa.array(self.sids.item_ids, pa.int64()), "sid": pa.array(self.sids.sids.tolist(), pa.list_(pa.int64()))}
        )
        pq.write_table(table, directory / "sids.parquet")
        self.trie.save(directory / "trie.npz")
        (directory / "vrq_report.json").write_text(json.dumps(self.report, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path) -> "VRQArtifact":
        directory = Path(directory)
        for name in ("vrq.json", "codebooks.pt", "sids.parquet", "trie.npz"):
            if not (directory / name).exists():
                raise FileNotFoundError(f"VRQ artifact is missing {directory / name}")
        meta = json.loads((directory / "vrq.json").read_text())
        cfg = meta["config"]
        cfg["codebook_sizes"] = tuple(cfg["codebook_sizes"])
        model = RQAutoencoder(VRQConfig(**cfg))
        model.load_state_dict(torch.load(directory / "codebooks.pt", map_location="cpu", weights_only=True))
        mask_path = directory / "category_mask.npy"
        table = pq.read_table(directory / "sids.parquet")
        sids = np.array(table.column("sid").to_pylist(), dtype=np.int64)
        report_path = directory / "vrq_report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        sem = SemanticIds(table.column("item_id").to_numpy(), sids, float(report.get("vrq", {}).get("collision_rate", 0.0)))
        return cls(model.eval(), np.load(mask_path) if mask_path.exists() else None, sem, SidTrie.load(directory / "trie.npz"), report)


def _rq_quality(name: str, model: RQAutoencoder, feats: CatalogueFeatures, mask: np.ndarray | None) -> tuple[CodeQuality, np.ndarray]:
    with torch.no_grad():
        x = torch.from_numpy(feats.item_emb)
        item_mask = torch.from_numpy(mask[feats.item_category]) if mask is not None else None
        z = model.encode(x)
        zq, codes, _ = model.quantizer(z, item_mask)
        mse = float(((model.decode(zq) - x) ** 2).sum(-1).mean())
        view_codes = model.codes(torch.from_numpy(feats.view_emb)).numpy()
        photo_codes = model.codes(torch.from_numpy(feats.test_photo_emb)).numpy() if len(feats.test_photo_emb) else np.zeros((0, codes.shape[1]), np.int64)
    codes = codes.numpy()
    quality = code_quality(
        name, codes, view_codes, feats.view_item_row, photo_codes, feats.test_photo_item_row,
        model.config.codebook_sizes, mse,
    )
    return quality, codes


def _kmeans_quality(feats: CatalogueFeatures, sizes: tuple[int, ...], seed: int) -> CodeQuality:
    rq = ResidualKMeans(sizes, seed).fit(feats.item_emb)
    codes, recon = rq.encode(feats.item_emb)
    view_codes, _ = rq.encode(feats.view_emb)
    photo_codes, _ = rq.encode(feats.test_photo_emb) if len(feats.test_photo_emb) else (np.zeros((0, len(sizes)), np.int64), None)
    mse = float(((recon - feats.item_emb) ** 2).sum(1).mean())
    return code_quality("rq-kmeans", codes, view_codes, feats.view_item_row, photo_codes, feats.test_photo_item_row, sizes, mse)


def fit_vrq(
    feats: CatalogueFeatures,
    config: VRQConfig,
    train: VRQTrainConfig = VRQTrainConfig(),
    compare_baselines: bool = True,
    show_progress: bool = True,
) -> VRQArtifact:
    # Alignment sees shop views and train-split user photos; test photos stay held out for the report.
    align_emb = np.concatenate([feats.view_emb, feats.train_photo_emb])
    align_rows = np.concatenate([feats.view_item_row, feats.train_photo_item_row])
    model, mask = train_rq(feats.item_emb, feats.item_category, align_emb, align_rows, config, train, show_progress, "vrq")
    quality, codes = _rq_quality("vrq", model, feats, mask)
    rows = [quality]
    if compare_baselines:
        rows.append(_kmeans_quality(feats, config.codebook_sizes, train.seed))
        plain_cfg = dataclasses.replace(config, aligned=False, category_partition=False, rotate_last=False)
        plain, _ = train_rq(feats.item_emb, feats.item_category, align_emb, align_rows, plain_cfg, train, show_progress, "rq-vae")
        rows.append(_rq_quality("rq-vae", plain, feats, None)[0])
    sem = assign_sids(feats.item_ids, codes)
    trie = SidTrie.build(sem, sem.vocab_sizes(config.codebook_sizes))
    report = {row.method: row.to_dict() for row in rows}
    report["vrq"]["unique_sids"] = bool(len(np.unique(sem.sids, axis=0)) == len(sem.sids))
    report["vrq"]["sid_length"] = sem.depth
    report["table"] = quality_table(rows)
    return VRQArtifact(model, mask, sem, trie, report)
