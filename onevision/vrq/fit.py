"""Fit VRQ on catalogue features, compare it with RQ-KMeans and plain RQ-VAE, and save the artifact
(quantiser, SIDs, SID→item map, trie, report)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from onevision.threads import single_torch_thread
from onevision.vision.features import CatalogueFeatures
from onevision.vrq.aligned import VisionAlignedRQ, VRQConfig
from onevision.vrq.attributes import ItemAttributes
from onevision.vrq.model import RQVAEConfig
from onevision.vrq.quantizer import Quantized, Quantizer, TrainingSet
from onevision.vrq.report import CodeQuality, code_quality, quality_table
from onevision.vrq.rq_kmeans import ResidualKMeans
from onevision.vrq.rqvae import RQVAE
from onevision.vrq.sid import SemanticIds, SidTrie, assign_sids
from onevision.vrq.train import RQVAETrainConfig


@dataclass(frozen=True)
class AttributeCodes:
    """What each code of the attribute level means: its brand and price band (-1: unused code)."""

    level: int
    brand: np.ndarray
    price_band: np.ndarray

    def to_json(self) -> dict:
        return {"level": self.level, "brand": self.brand.tolist(), "price_band": self.price_band.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "AttributeCodes":
        return cls(int(data["level"]), np.asarray(data["brand"], np.int64), np.asarray(data["price_band"], np.int64))


@dataclass
class VRQArtifact:
    quantizer: VisionAlignedRQ
    sids: SemanticIds
    trie: SidTrie
    report: dict
    attributes: AttributeCodes | None = None

    def sids_of(self, item_ids: np.ndarray) -> np.ndarray:
        """SIDs (B, depth) of item ids; -1 rows for unknown or padding ids."""
        order = np.argsort(self.sids.item_ids)
        pos = np.clip(np.searchsorted(self.sids.item_ids[order], item_ids), 0, len(order) - 1)
        rows = order[pos]
        known = self.sids.item_ids[rows] == item_ids
        return np.where(known[..., None], self.sids.sids[rows], -1)

    def code_categories(self) -> np.ndarray | None:
        """The category of every level-0 code (int64 (V_0,), -1: a code of no category); None when level 0 is not
        partitioned by category."""
        mask = self.quantizer.category_mask
        if mask is None:
            return None
        return np.where(mask.any(0), mask.argmax(0), -1).astype(np.int64)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.quantizer.save(directory)
        meta = {"config": dataclasses.asdict(self.quantizer.config), "vocab_sizes": list(self.trie.vocab_sizes),
                "attribute_codes": None if self.attributes is None else self.attributes.to_json()}
        (directory / "vrq.json").write_text(json.dumps(meta, indent=2) + "\n")
        table = pa.table({"item_id": pa.array(self.sids.item_ids, pa.int64()),
                          "sid": pa.array(self.sids.sids.tolist(), pa.list_(pa.int64()))})
        pq.write_table(table, directory / "sids.parquet")
        self.trie.save(directory / "trie.npz")
        (directory / "vrq_report.json").write_text(json.dumps(self.report, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path) -> "VRQArtifact":
        directory = Path(directory)
        for name in ("vrq.json", "codebooks.npz", "sids.parquet", "trie.npz"):
            if not (directory / name).exists():
                raise FileNotFoundError(f"VRQ artifact is missing {directory / name}")
        meta = json.loads((directory / "vrq.json").read_text())
        cfg = meta["config"]
        cfg["codebook_sizes"] = tuple(cfg["codebook_sizes"])
        quantizer = VisionAlignedRQ.load(directory, VRQConfig(**cfg))
        table = pq.read_table(directory / "sids.parquet")
        report_path = directory / "vrq_report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        sem = SemanticIds(table.column("item_id").to_numpy(), np.array(table.column("sid").to_pylist(), dtype=np.int64),
                          float(report.get("vrq", {}).get("collision_rate", 0.0)))
        attrs = meta.get("attribute_codes")
        return cls(quantizer, sem, SidTrie.load(directory / "trie.npz"), report,
                   None if attrs is None else AttributeCodes.from_json(attrs))


def _quality(name: str, quantizer: Quantizer, fitted: Quantized, feats: CatalogueFeatures) -> CodeQuality:
    """How the fitted item codes hold up on the items' shop views and held-out user photos."""
    sizes = quantizer.codebook_sizes
    view_codes = quantizer.encode(feats.view_emb)
    photo_codes = (quantizer.encode(feats.test_photo_emb) if len(feats.test_photo_emb)
                   else np.zeros((0, len(sizes)), np.int64))
    return code_quality(name, fitted.indices, view_codes, feats.view_item_row, photo_codes, feats.test_photo_item_row,
                        sizes, fitted.loss)


def fit_vrq(feats: CatalogueFeatures, config: VRQConfig = VRQConfig(), compare_baselines: bool = True,
            show_progress: bool = True, attributes: ItemAttributes | None = None) -> VRQArtifact:
    """`attributes` (rows in `feats.item_ids` order) feed `config.attribute_level`. Runs on one torch thread
    (and one faiss thread, see `kmeans`): multi-threaded reductions gave other SIDs from the same seed."""
    with single_torch_thread():
        return _fit_vrq(feats, config, compare_baselines, show_progress, attributes)


def _fit_vrq(feats: CatalogueFeatures, config: VRQConfig, compare_baselines: bool, show_progress: bool,
             attributes: ItemAttributes | None) -> VRQArtifact:
    # Alignment sees shop views and train-split user photos; test photos stay held out for the report.
    align_emb = np.concatenate([feats.view_emb, feats.train_photo_emb])
    align_rows = np.concatenate([feats.view_item_row, feats.train_photo_item_row])
    data = TrainingSet(feats.item_emb, feats.item_category, align_emb, align_rows, attributes)
    sizes = config.codebook_sizes
    quantizer = VisionAlignedRQ(config)
    quantizers: dict[str, Quantizer] = {"vrq": quantizer}
    if compare_baselines:
        quantizers["rq-kmeans"] = ResidualKMeans(sizes, config.seed)
        quantizers["rq-vae"] = RQVAE(RQVAEConfig(input_dim=feats.item_emb.shape[1], codebook_sizes=sizes),
                                     RQVAETrainConfig(seed=config.seed), show_progress)
    rows, fitted = [], {}
    for name, q in quantizers.items():
        fitted[name] = q.fit(data)
        rows.append(_quality(name, q, fitted[name], feats))
    codes = fitted["vrq"].indices
    sem = assign_sids(feats.item_ids, codes)
    trie = SidTrie.build(sem, sem.vocab_sizes(sizes))
    report = {row.method: row.to_dict() for row in rows}
    report["vrq"]["unique_sids"] = bool(len(np.unique(sem.sids, axis=0)) == len(sem.sids))
    report["vrq"]["sid_length"] = sem.depth
    report["table"] = quality_table(rows)
    codes_meaning = None
    if config.attribute_level is not None:
        brand, band = attributes.code_table(sizes[config.attribute_level])
        codes_meaning = AttributeCodes(config.attribute_level, brand, band)
    return VRQArtifact(quantizer, sem, trie, report, codes_meaning)
