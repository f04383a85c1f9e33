from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from onevision.world import WorldConfig, generate_world, load_world, parse_discrepancy
from onevision.world.render import decode_image
from onevision.world.schema import TABLES

SMALL = WorldConfig(seed=3, items=24, users=8, days=4, queries_per_day=10, train_days=2, val_days=1, brands=6)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


def test_same_seed_gives_byte_identical_parquet(tmp_path: Path) -> None:
    a = _digests(generate_world(SMALL, tmp_path / "a"))
    b = _digests(generate_world(SMALL, tmp_path / "b"))
    assert a == b and len(a) == len(TABLES) + 2


def test_other_seed_gives_other_world(tmp_path: Path) -> None:
    a = _digests(generate_world(SMALL, tmp_path / "a"))
    b = _digests(generate_world(WorldConfig(**{**SMALL.__dict__, "seed": 4}), tmp_path / "b"))
    assert a["items.parquet"] != b["items.parquet"]


def test_tables_follow_schema(tiny_world_dir: Path, tiny_world_config: WorldConfig) -> None:
    world = load_world(tiny_world_dir)
    for table in TABLES:
        assert list(world.table(table.name).columns) == table.column_names
    cfg = tiny_world_config
    assert len(world.items) == cfg.items
    assert len(world.item_views) == cfg.items * 5
    assert len(world.queries) == cfg.days * cfg.queries_per_day
    assert len(world.impressions) == len(world.queries) * cfg.slate_size
    img = decode_image(world.item_views.image.iloc[0])
    assert img.shape == (cfg.image_size, cfg.image_size, 3)


def test_splits_are_ordered_in_time(tiny_world_dir: Path) -> None:
    q = load_world(tiny_world_dir).queries
    spans = q.groupby("split")["ts"].agg(["min", "max"])
    assert spans.loc["train", "max"] < spans.loc["val", "min"] <= spans.loc["val", "max"] < spans.loc["test", "min"]


def test_near_duplicate_families_share_shape_and_pattern(tiny_world_dir: Path) -> None:
    items = load_world(tiny_world_dir).items
    per_family = items.groupby("family_id").agg({"shape": "nunique", "pattern": "nunique", "item_id": "size"})
    assert (per_family["shape"] == 1).all() and (per_family["pattern"] == 1).all()
    assert (per_family["item_id"] > 1).any()
    # every item remains visually distinct: (family, colour, brand) unique
    assert not items.duplicated(["family_id", "colour", "brand"]).any()


def test_clicks_follow_visual_match_and_preference(tiny_world_dir: Path) -> None:
    world = load_world(tiny_world_dir)
    m = world.impressions.merge(world.queries[["query_id", "target_item_id"]], on="query_id")
    on_target = m[m.item_id == m.target_item_id].clicked.mean()
    off_target = m[m.item_id != m.target_item_id].clicked.mean()
    assert on_target > 3 * off_target
    assert (m.ordered <= m.clicked).all()


def test_behaviour_model_prefers_target_and_liked_brand(tiny_world_dir: Path) -> None:
    world = load_world(tiny_world_dir)
    model = world.behaviour
    q = world.queries.iloc[:20]
    targets = q.target_item_id.to_numpy()
    others = (targets + 1) % len(world.items)
    probs_target_first = model.probabilities(q.user_id.to_numpy(), targets, np.stack([targets, others], 1))
    probs_other_first = model.probabilities(q.user_id.to_numpy(), targets, np.stack([others, targets], 1))
    assert probs_target_first.click[:, 0].mean() > probs_other_first.click[:, 0].mean()
    assert (probs_target_first.order <= probs_target_first.click).all()


def test_discrepancy_levels() -> None:
    assert parse_discrepancy("easy") < parse_discrepancy("hard") <= parse_discrepancy("very-hard") == 1.0
    with pytest.raises(ValueError, match="discrepancy"):
        parse_discrepancy("extreme")


def test_invalid_config_is_named() -> None:
    with pytest.raises(ValueError, match="items"):
        WorldConfig(items=2)
