"""Catalogue refresh: a new version of a bundle that knows newly listed items (and forgets delisted ones),
without retraining it.

Both kinds share the frozen encoder: the new items' shop views are embedded with it once.
- generator: SIDs from the frozen VRQ codebooks (`onevision.vrq.extend`), the trie and SID→item map rebuilt,
  then (unless `finetune` is None) a short stage-1 fine-tune on the new items' views with replayed old views
  (`onevision.generator.finetune`), so the model emits the new SIDs and not only allows them;
- cascade: the new items' embeddings join the ANN index and the item tables, with a popularity prior (the mean
  clicks of their visual neighbours, `RefreshConfig.cold_start_clicks`); delisted items leave the index, so
  recall never returns them (they stay in the item tables, which users' histories refer to).

The new bundle is written beside the output in a temporary directory and renamed into place when complete, with
`refresh_manifest.json`: what was added (ids, SIDs, which codes were new), what was removed, the parent bundle's
version and digest, and the fine-tune's epochs, losses and seconds.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from onevision.bundle import BUNDLE_FILE, bundle_identity, new_version, seal_bundle, verify_bundle
from onevision.catalogue.config import RefreshConfig
from onevision.catalogue.tables import NewRows, check_against
from onevision.generator.finetune import FinetuneConfig
from onevision.storage import PUBLISHED_MARKER

REFRESH_MANIFEST = "refresh_manifest.json"
MANIFEST_FORMAT = 1


@dataclass
class RefreshResult:
    bundle_dir: str
    kind: str
    version: str
    added: int
    removed: int
    seconds: float
    finetune_seconds: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _phases(show_progress: bool, total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="catalogue refresh", unit="step", disable=not show_progress, leave=False)


def _embed(bundle: Path, rows: NewRows):
    from onevision.vision.encoder import ImageEncoder
    from onevision.vision.features import view_features

    encoder = ImageEncoder.load(bundle / "encoder")
    return encoder, *view_features(encoder, rows.item_ids, rows.views)


def _refresh_generator(parent: Path, stage: Path, rows: NewRows, delisted: np.ndarray, replay: pd.DataFrame | None,
                       config: RefreshConfig, bar) -> dict:
    from onevision.vrq.extend import NewItems, extend_sids
    from onevision.vrq.fit import VRQArtifact

    vrq = VRQArtifact.load(parent / "vrq")
    check_against(rows, vrq.sids.item_ids, delisted, f"generator bundle {parent}")
    bar.set_postfix_str("encode views")
    encoder, item_emb, view_emb, view_rows = _embed(parent, rows)
    bar.update()
    bar.set_postfix_str("assign SIDs")
    items = rows.items
    ext = extend_sids(vrq, NewItems(rows.item_ids, item_emb, view_emb, view_rows.astype(np.int64),
                                    items["category"].to_numpy(np.int64), items["brand"].to_numpy(np.int64),
                                    items["price_band"].to_numpy(np.int64)), delisted, _listed(parent))
    ext.artifact.save(stage / "vrq")
    bar.update()
    tuned = None
    if config.finetune is not None:
        bar.set_postfix_str("fine-tune")
        tuned = _finetune(stage, encoder, ext.artifact, rows, replay, config.finetune)
    bar.update()
    return {"added": [a.to_json() for a in ext.added],
            "removed": [{"item_id": i, "sid": list(s)} for i, s in ext.removed],
            "vocab_sizes": list(ext.artifact.trie.vocab_sizes), "finetune": tuned}


def _listed(parent: Path):
    """The catalogue features the bundle's VRQ was fitted on, when the bundle carries them."""
    from onevision.vision.features import FEATURES_FILE, CatalogueFeatures
    from onevision.vrq.extend import ListedItems

    if not (parent / "encoder" / FEATURES_FILE).exists():
        return None
    feats = CatalogueFeatures.load(parent / "encoder")
    return ListedItems(feats.item_ids, feats.item_emb, feats.item_category)


def _finetune(stage: Path, encoder, vrq, rows: NewRows, replay: pd.DataFrame | None, config: FinetuneConfig) -> dict:
    from onevision.generator.finetune import finetune_examples, finetune_generator, replay_rows
    from onevision.generator.model import SidGenerator
    from onevision.vision.images import decode_images

    start = time.perf_counter()
    ids = rows.views["item_id"].to_numpy(np.int64)
    new = finetune_examples(encoder, vrq, decode_images(rows.views["image"].tolist()), ids, config.augmented_copies,
                            config.seed)
    old, n_replay = None, 0
    if replay is not None and config.replay > 0:
        listed = replay[replay["item_id"].isin(vrq.sids.item_ids) & ~replay["item_id"].isin(rows.item_ids)]
        listed = listed.reset_index(drop=True)
        picked = listed.iloc[replay_rows(listed["item_id"].to_numpy(np.int64), int(round(config.replay * len(ids))),
                                         config.seed)]
        n_replay = len(picked)
        if n_replay:
            old = finetune_examples(encoder, vrq, decode_images(picked["image"].tolist()),
                                    picked["item_id"].to_numpy(np.int64), config.augmented_copies, config.seed + 1)
    model = SidGenerator.load(stage / "generator")
    losses = finetune_generator(model, new, old, config, show_progress=False)
    model.save(stage / "generator")
    return {"config": dataclasses.asdict(config), "new_views": int(len(rows.views)), "replay_views": n_replay,
            "examples": len(new.sids) + (0 if old is None else len(old.sids)),
            "losses": [round(x, 5) for x in losses], "seconds": round(time.perf_counter() - start, 2)}


def _prior_clicks(table, item_emb: np.ndarray, how: str, scale: float = 1.0) -> np.ndarray:
    """The clicks new items start with: 0, or `scale` x the mean of their nearest listed items' (by embedding)."""
    from onevision.catalogue.config import NEIGHBOUR_CLICKS

    if how == "zero" or not len(table.item_ids):
        return np.zeros(len(item_emb), np.float64)
    k = min(NEIGHBOUR_CLICKS, len(table.item_ids))
    nearest = np.argsort(-(item_emb @ table.emb.T), axis=1, kind="stable")[:, :k]
    return scale * table.clicks[nearest].mean(1).astype(np.float64)


def _refresh_cascade(parent: Path, stage: Path, rows: NewRows, delisted: np.ndarray, config: RefreshConfig,
                     bar) -> dict:
    from onevision.cascade.items import ItemTable
    from onevision.cascade.recall import AnnRecall

    recall = AnnRecall.load(parent / "cascade" / "recall")
    tables = {name: ItemTable.load(parent / "cascade" / name) for name in ("prerank", "rank")}
    check_against(rows, np.union1d(recall.item_ids, tables["rank"].item_ids), np.array([], np.int64),
                  f"cascade bundle {parent}")
    check_against(rows, recall.item_ids, delisted, f"cascade bundle {parent}'s index")
    bar.set_postfix_str("encode views")
    _, item_emb, _, _ = _embed(parent, rows)
    bar.update()
    bar.set_postfix_str("update index")
    items = rows.items
    new = ItemTable(item_ids=rows.item_ids, brand=items["brand"].to_numpy(np.int64),
                    price_band=items["price_band"].to_numpy(np.int64), category=items["category"].to_numpy(np.int64),
                    clicks=_prior_clicks(tables["rank"], item_emb, config.cold_start_clicks, config.cold_start_scale),
                    emb=item_emb.astype(np.float32))
    recall.updated(rows.item_ids, item_emb, delisted).save(stage / "cascade" / "recall")
    for name, table in tables.items():
        table.with_items(new).save(stage / "cascade" / name)
    bar.update(2)
    return {"added": [{"item_id": int(i), "prior_clicks": round(float(c), 3)} for i, c in zip(rows.item_ids, new.clicks)],
            "removed": [{"item_id": int(i)} for i in np.unique(delisted)], "finetune": None}


def refresh_bundle(bundle_dir: Path | str, rows: NewRows, out_dir: Path | str, *, delisted=None,
                   replay_views: pd.DataFrame | None = None, config: RefreshConfig = RefreshConfig(),
                   show_progress: bool = False) -> RefreshResult:
    """A new version of the bundle at `bundle_dir` (either kind) with `rows` added and `delisted` removed, written
    atomically to `out_dir` (which must not exist, or be empty). `replay_views`: shop views of already listed items (an
    item_views table) for the generator's fine-tune."""
    start = time.perf_counter()
    parent, out = Path(bundle_dir), Path(out_dir)
    meta = verify_bundle(parent, require_manifest=False)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refresh output {out} exists already: choose a new (or an empty) directory")
    delisted = np.unique(np.asarray([] if delisted is None else delisted, np.int64))
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial"
    shutil.rmtree(stage, ignore_errors=True)  # a crashed earlier attempt
    shutil.copytree(parent, stage, ignore=shutil.ignore_patterns(BUNDLE_FILE, PUBLISHED_MARKER, REFRESH_MANIFEST))
    try:
        with _phases(show_progress, 4) as bar:
            if meta.kind == "generator":
                change = _refresh_generator(parent, stage, rows, delisted, replay_views, config, bar)
            else:
                change = _refresh_cascade(parent, stage, rows, delisted, config, bar)
            version = config.version or new_version()
            manifest = {"format_version": MANIFEST_FORMAT, "kind": meta.kind, "version": version,
                        "parent": bundle_identity(parent), **change,
                        "seconds": round(time.perf_counter() - start, 2)}
            (stage / REFRESH_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            seal_bundle(stage, meta.kind, version)
            stage.rename(out)
            bar.update()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    tuned = change.get("finetune")
    return RefreshResult(str(out), meta.kind, version, len(change["added"]), len(change["removed"]),
                         round(time.perf_counter() - start, 2), None if tuned is None else tuned["seconds"])


def read_manifest(bundle_dir: Path | str) -> dict:
    path = Path(bundle_dir) / REFRESH_MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"not a refreshed bundle (missing {path})")
    return json.loads(path.read_text())
