"""The catalogue as listed by a day: what training steps see (`World.for_training`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from onevision.world import load_world


def test_training_catalogue_of_a_world_without_new_items_is_the_whole_world(tiny_world_dir: Path) -> None:
    world, listed = load_world(tiny_world_dir), load_world(tiny_world_dir).for_training()
    for table in ("items", "item_views", "queries", "impressions"):
        assert getattr(listed, table).equals(getattr(world, table)), table


def test_training_catalogue_leaves_out_items_listed_after_the_training_days(new_items_world_dir: Path) -> None:
    world = load_world(new_items_world_dir)
    listed = world.for_training()
    last_training_day = world.config.test_start_day - 1
    new = world.items.loc[world.items["first_day"] > last_training_day, "item_id"]
    assert len(new) > 0
    assert listed.listed_by == last_training_day
    assert not listed.items["item_id"].isin(new).any()
    assert not listed.item_views["item_id"].isin(new).any()
    assert not listed.queries["target_item_id"].isin(new).any()
    assert listed.impressions["query_id"].isin(listed.queries["query_id"]).all()


def test_the_oracle_of_a_listed_world_knows_every_item(new_items_world_dir: Path) -> None:
    world = load_world(new_items_world_dir)
    facts = world.for_training().catalogue_facts
    np.testing.assert_array_equal(facts.item_ids, world.items["item_id"].to_numpy())


def test_bundles_trained_on_a_world_with_new_items_do_not_contain_them(new_item_models) -> None:
    from onevision.cascade.items import ItemTable
    from onevision.cascade.recall import AnnRecall
    from onevision.vision.features import CatalogueFeatures
    from onevision.vrq.fit import VRQArtifact

    world = load_world(new_item_models.world)
    new = world.items.loc[world.items["first_day"] > world.config.test_start_day - 1, "item_id"].to_numpy()
    cascade = new_item_models.cascade_bundle / "cascade"
    known = {
        "features": CatalogueFeatures.load(new_item_models.encoder).item_ids,
        "sids": VRQArtifact.load(new_item_models.generator_bundle / "vrq").sids.item_ids,
        "ann index": AnnRecall.load(cascade / "recall").item_ids,
        "rank items": ItemTable.load(cascade / "rank").item_ids,
    }
    for name, ids in known.items():
        assert len(ids) == len(world.items) - len(new), name
        assert not np.isin(new, ids).any(), name
