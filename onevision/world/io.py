"""Generate a world to a directory and load it back."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from onevision.world import schema
from onevision.world.behaviour import CatalogueFacts, ClickOrderModel, UserPreferences
from onevision.world.catalogue import make_catalogue, make_population
from onevision.world.config import DriftConfig, WorldConfig
from onevision.world.render import VIEWS_RENDERED, encode_png, render_view
from onevision.world.sessions import simulate_days

WORLD_META = "world.json"
FORMAT_VERSION = 1


def write_table(table: schema.TableSchema, columns: dict, path: Path) -> None:
    """Write with the schema's Arrow types and no pandas metadata, so equal data gives equal bytes."""
    arrow = pa.Table.from_pydict({c.name: columns[c.name] for c in table.columns}, schema=table.arrow)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow, path, compression="zstd", use_dictionary=True, write_statistics=True)


def config_to_json(cfg: WorldConfig) -> dict:
    return dataclasses.asdict(cfg)


def config_from_json(data: dict) -> WorldConfig:
    data = dict(data)
    data["drift"] = DriftConfig(**data.get("drift", {}))
    return WorldConfig(**data)


def generate_world(cfg: WorldConfig, out: Path, progress: Callable[[Iterable], Iterable] = lambda it: it) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = make_catalogue(cfg)
    population = make_population(cfg)
    f = catalogue.facts
    n = len(catalogue)

    write_table(
        schema.ITEMS,
        {
            "item_id": f.item_ids, "category": f.category, "brand": f.brand, "price_band": f.price_band,
            "price": catalogue.price, "colour": f.colour, "shape": catalogue.shape, "pattern": catalogue.pattern,
            "family_id": f.family_id, "first_day": catalogue.first_day,
        },
        out / schema.ITEMS.filename,
    )
    view_images: list[bytes] = []
    for row in progress(range(n)):
        look = catalogue.look(row)
        view_images.extend(encode_png(render_view(look, v, cfg.image_size)) for v in VIEWS_RENDERED)
    n_views = len(VIEWS_RENDERED)
    write_table(
        schema.ITEM_VIEWS,
        {
            "view_id": np.arange(n * n_views, dtype=np.int64),
            "item_id": np.repeat(f.item_ids, n_views),
            "view": list(VIEWS_RENDERED) * n,
            "image": view_images,
        },
        out / schema.ITEM_VIEWS.filename,
    )
    p = population
    write_table(
        schema.USERS,
        {
            "user_id": p.prefs.user_ids, "signup_day": p.signup_day, "age_band": p.age_band,
            "declared_category": p.declared_category, "price_sensitivity": p.price_sensitivity,
        },
        out / schema.USERS.filename,
    )
    log = simulate_days(cfg, catalogue, population, range(cfg.days), progress=progress)
    write_table(
        schema.QUERIES,
        {
            "query_id": log.query_id, "user_id": log.user_id, "day": log.day, "ts": log.ts,
            "split": [cfg.split_of_day(int(d)) for d in log.day], "target_item_id": log.target_item_id,
            "image": log.image,
        },
        out / schema.QUERIES.filename,
    )
    s = log.slate.shape[1]
    write_table(
        schema.IMPRESSIONS,
        {
            "query_id": np.repeat(log.query_id, s), "position": np.tile(np.arange(s), len(log)),
            "item_id": log.slate.ravel(), "clicked": log.clicked.ravel(), "ordered": log.ordered.ravel(),
        },
        out / schema.IMPRESSIONS.filename,
    )
    write_table(
        schema.USER_TRUTH,
        {
            "user_id": p.prefs.user_ids, "brand_pref": list(p.prefs.brand_pref),
            "category_pref": list(p.prefs.category_pref), "price_pref": list(p.prefs.price_pref),
        },
        out / "truth" / schema.USER_TRUTH.filename,
    )
    write_table(
        schema.ITEM_TRUTH,
        {
            "item_id": f.item_ids, "secondary_colour": catalogue.secondary_colour,
            "pattern_freq": catalogue.pattern_freq, "pattern_angle": catalogue.pattern_angle,
            "aspect": catalogue.aspect, "popularity": catalogue.popularity,
        },
        out / "truth" / schema.ITEM_TRUTH.filename,
    )
    meta = {"format_version": FORMAT_VERSION, "config": config_to_json(cfg)}
    (out / WORLD_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def _kept(table: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows where `keep`; the table itself (the same object) when every row is kept."""
    return table if keep.all() else table[keep].reset_index(drop=True)


@dataclass
class World:
    """A world directory: the five tables (loaded lazily) plus, when present, the oracle.

    `listed_by`: the catalogue as it was listed on that day. `items` and `item_views` hold only the items with
    `first_day <= listed_by`, `queries` (and `impressions`) only the queries for them, so a model trained on it
    has never seen a product listed later (the training steps use `for_training()`). The oracle
    (`catalogue_facts`, `behaviour`) always knows every item."""

    root: Path
    listed_by: int | None = None  # None: every item

    def table(self, name: str) -> pd.DataFrame:
        path = self.root / schema.TABLES_BY_NAME[name].filename
        if not path.exists():
            raise FileNotFoundError(f"world table '{name}' is missing: expected {path}")
        return pq.read_table(path).to_pandas()

    def listed(self, day: int | None) -> "World":
        """This world with the catalogue as listed by `day` (None: every item)."""
        return World(self.root, day)

    def for_training(self) -> "World":
        """The catalogue as listed by the last day of the training data (train + val days): what every
        training step sees. A world without its config (no world.json) keeps every item."""
        cfg = self.config
        return self.listed(None if cfg is None else cfg.test_start_day - 1)

    @cached_property
    def all_items(self) -> pd.DataFrame:
        """Every item of the world, listed or not."""
        return self.table("items")

    @cached_property
    def items(self) -> pd.DataFrame:
        it = self.all_items
        return it if self.listed_by is None else _kept(it, it["first_day"].to_numpy() <= self.listed_by)

    @cached_property
    def item_views(self) -> pd.DataFrame:
        views = self.table("item_views")
        if self.listed_by is None:
            return views
        return _kept(views, views["item_id"].isin(self.items["item_id"]).to_numpy())

    @cached_property
    def users(self) -> pd.DataFrame:
        return self.table("users")

    @cached_property
    def queries(self) -> pd.DataFrame:
        q = self.table("queries")
        if self.listed_by is None:
            return q
        return _kept(q, q["target_item_id"].isin(self.items["item_id"]).to_numpy())

    @cached_property
    def impressions(self) -> pd.DataFrame:
        imp = self.table("impressions")
        if self.listed_by is None:
            return imp
        return _kept(imp, imp["query_id"].isin(self.queries["query_id"]).to_numpy())

    @cached_property
    def config(self) -> WorldConfig | None:
        meta = self.root / WORLD_META
        if not meta.exists():
            return None
        return config_from_json(json.loads(meta.read_text())["config"])

    def queries_of(self, split: str) -> pd.DataFrame:
        q = self.queries
        return q[q["split"] == split].reset_index(drop=True)

    @cached_property
    def catalogue_facts(self) -> CatalogueFacts:
        it = self.all_items
        return CatalogueFacts(
            item_ids=it["item_id"].to_numpy(np.int64),
            category=it["category"].to_numpy(np.int64),
            brand=it["brand"].to_numpy(np.int64),
            price_band=it["price_band"].to_numpy(np.int64),
            colour=it["colour"].to_numpy(np.int64),
            family_id=it["family_id"].to_numpy(np.int64),
        )

    @cached_property
    def behaviour(self) -> ClickOrderModel:
        """The ground-truth click/order model (evaluation and simulation only)."""
        path = self.root / "truth" / schema.USER_TRUTH.filename
        if not path.exists():
            raise FileNotFoundError(
                f"this world has no oracle ({path} is missing): CTR/CVR proxies need a simulated world"
            )
        t = pq.read_table(path).to_pandas()
        prefs = UserPreferences(
            user_ids=t["user_id"].to_numpy(np.int64),
            brand_pref=np.stack(t["brand_pref"].to_numpy()).astype(np.float32),
            category_pref=np.stack(t["category_pref"].to_numpy()).astype(np.float32),
            price_pref=np.stack(t["price_pref"].to_numpy()).astype(np.float32),
        )
        return ClickOrderModel(self.catalogue_facts, prefs)


def load_world(root: str | Path) -> World:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"world directory not found: {root}")
    return World(root)
