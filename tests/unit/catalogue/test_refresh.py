"""`refresh_bundle`: new items get collision-free SIDs next to their visual neighbours, both arms index them,
delisted items can never be returned, the new version is written atomically with its manifest."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from onevision.bundle import bundle_identity, load_retriever, verify_bundle
from onevision.catalogue.config import RefreshConfig
from onevision.catalogue.refresh import REFRESH_MANIFEST, read_manifest, refresh_bundle
from onevision.catalogue.tables import CatalogueTableError, NewRows, listed_between
from onevision.vision.images import decode_images
from onevision.vrq.extend import SidSpaceFull
from onevision.vrq.fit import VRQArtifact
from onevision.world import load_world

ZERO_SHOT = RefreshConfig(finetune=None, version="refreshed")


@pytest.fixture(scope="module")
def new_rows(new_item_models) -> NewRows:
    world = load_world(new_item_models.world)
    return listed_between(world, world.for_training().listed_by)


@pytest.fixture(scope="module")
def refreshed(new_item_models, new_rows, tmp_path_factory) -> dict[str, Path]:
    """Both bundles refreshed with the new items (generator: SIDs and trie only)."""
    out = tmp_path_factory.mktemp("refreshed")
    return {kind: Path(refresh_bundle(bundle, new_rows, out / kind, config=ZERO_SHOT).bundle_dir)
            for kind, bundle in (("generator", new_item_models.generator_bundle),
                                 ("cascade", new_item_models.cascade_bundle))}


def test_new_items_get_unique_sids_in_the_trie(refreshed, new_rows) -> None:
    vrq = VRQArtifact.load(refreshed["generator"] / "vrq")
    assert len(np.unique(vrq.sids.sids, axis=0)) == len(vrq.sids.sids)
    np.testing.assert_array_equal(vrq.trie.lookup(vrq.sids_of(new_rows.item_ids)), new_rows.item_ids)


def test_the_trie_keeps_the_generator_vocabulary(refreshed, new_item_models) -> None:
    before = VRQArtifact.load(new_item_models.generator_bundle / "vrq").trie.vocab_sizes
    assert VRQArtifact.load(refreshed["generator"] / "vrq").trie.vocab_sizes == before


def test_old_items_keep_their_sids(refreshed, new_item_models) -> None:
    old = VRQArtifact.load(new_item_models.generator_bundle / "vrq").sids
    new = VRQArtifact.load(refreshed["generator"] / "vrq")
    np.testing.assert_array_equal(new.sids_of(old.item_ids), old.sids)


def test_new_items_share_their_shallow_code_with_their_visual_neighbours(refreshed, new_item_models, new_rows) -> None:
    """Level 0 of a new item is the level-0 code of its nearest listed item of its category (by the frozen
    encoder) for most of them, as for the fitted items themselves: a generator's first decoding step for a photo
    of it leads where photos of its look-alikes lead."""
    from onevision.vision.encoder import ImageEncoder
    from onevision.vision.features import CatalogueFeatures, view_features

    feats = CatalogueFeatures.load(new_item_models.encoder)
    emb, _, _ = view_features(ImageEncoder.load(new_item_models.encoder), new_rows.item_ids, new_rows.views)
    other_category = new_rows.items["category"].to_numpy()[:, None] != feats.item_category[None]
    nearest = feats.item_ids[np.where(other_category, -np.inf, emb @ feats.item_emb.T).argmax(1)]
    vrq = VRQArtifact.load(refreshed["generator"] / "vrq")
    agree = vrq.sids_of(new_rows.item_ids)[:, 0] == vrq.sids_of(nearest)[:, 0]
    assert agree.mean() >= 0.75


def test_the_attribute_level_codes_the_new_items_brand_and_price_band(refreshed, new_rows) -> None:
    vrq = VRQArtifact.load(refreshed["generator"] / "vrq")
    codes = vrq.sids_of(new_rows.item_ids)[:, vrq.attributes.level]
    np.testing.assert_array_equal(vrq.attributes.brand[codes], new_rows.items["brand"].to_numpy())
    np.testing.assert_array_equal(vrq.attributes.price_band[codes], new_rows.items["price_band"].to_numpy())


def test_the_manifest_lists_what_changed_and_the_parent(refreshed, new_item_models, new_rows) -> None:
    manifest = read_manifest(refreshed["generator"])
    vrq = VRQArtifact.load(refreshed["generator"] / "vrq")
    assert [a["item_id"] for a in manifest["added"]] == new_rows.item_ids.tolist()
    assert [a["sid"] for a in manifest["added"]] == vrq.sids_of(new_rows.item_ids).tolist()
    assert manifest["parent"] == bundle_identity(new_item_models.generator_bundle)
    assert manifest["removed"] == [] and manifest["finetune"] is None
    assert all(not a["disambiguated"] for a in manifest["added"])
    meta = verify_bundle(refreshed["generator"])  # every file (the manifest too) hashed in bundle.json
    assert meta.version == "refreshed" and REFRESH_MANIFEST in meta.files


def test_the_cascade_indexes_the_new_items(refreshed, new_rows) -> None:
    from onevision.cascade.recall import AnnRecall

    index = AnnRecall.load(refreshed["cascade"] / "cascade" / "recall")
    assert np.isin(new_rows.item_ids, index.item_ids).all()
    assert [a["item_id"] for a in read_manifest(refreshed["cascade"])["added"]] == new_rows.item_ids.tolist()


def _shop_views(rows: NewRows, ids: np.ndarray) -> np.ndarray:
    return decode_images(rows.views.loc[rows.views["item_id"].isin(ids), "image"].tolist())


def test_delisted_items_are_never_returned_by_either_arm(new_item_models, tmp_path) -> None:
    world = load_world(new_item_models.world)
    gone = world.for_training().items["item_id"].to_numpy()[:6]
    views = world.item_views[world.item_views["item_id"].isin(gone)]
    images = decode_images(views["image"].tolist())
    rows = listed_between(world, world.for_training().listed_by)
    for kind, bundle in (("generator", new_item_models.generator_bundle), ("cascade", new_item_models.cascade_bundle)):
        before = load_retriever(bundle).retrieve(images, None, 10).item_ids
        assert np.isin(gone, before).any(), kind  # their own views found them before
        out = refresh_bundle(bundle, rows, tmp_path / kind, delisted=gone, config=ZERO_SHOT).bundle_dir
        after = load_retriever(out).retrieve(images, None, 10).item_ids
        assert not np.isin(gone, after).any(), kind
        assert sorted(r["item_id"] for r in read_manifest(out)["removed"]) == sorted(gone.tolist())
    assert not np.isin(gone, VRQArtifact.load(tmp_path / "generator" / "vrq").sids.item_ids).any()


def test_refresh_raises_new_item_recall_from_zero(new_item_models, new_rows, tmp_path) -> None:
    """End to end on the tiny world: before, neither arm returns a new item for a query photo of one (as served);
    after the refresh (the generator fine-tuned), both do."""
    from onevision.catalogue.config import ListingEvalConfig
    from onevision.catalogue.evaluate import listing_recall
    from onevision.generator.finetune import FinetuneConfig

    world = load_world(new_item_models.world)
    configs = {"generator": RefreshConfig(FinetuneConfig(epochs=10, lr=1e-3, distill=1.0, augmented_copies=1)),
               "cascade": ZERO_SHOT}
    for kind, bundle in (("generator", new_item_models.generator_bundle), ("cascade", new_item_models.cascade_bundle)):
        before = listing_recall(load_retriever(bundle), world, ListingEvalConfig())
        assert before.n_new > 0 and before.new == 0.0
        out = refresh_bundle(bundle, new_rows, tmp_path / kind, replay_views=world.item_views,
                             config=configs[kind]).bundle_dir
        assert listing_recall(load_retriever(out), world, ListingEvalConfig()).new > 0.0, kind


def test_the_fine_tune_teaches_the_generator_the_new_items_views(new_item_models, new_rows, tmp_path) -> None:
    from onevision.generator.finetune import FinetuneConfig

    world = load_world(new_item_models.world)
    images, ids = _shop_views(new_rows, new_rows.item_ids), new_rows.views["item_id"].to_numpy()
    found = lambda bundle: (load_retriever(bundle).retrieve(images, None, 10).item_ids == ids[:, None]).any(1).mean()  # noqa: E731
    zero_shot = refresh_bundle(new_item_models.generator_bundle, new_rows, tmp_path / "zs", config=ZERO_SHOT)
    tuned = refresh_bundle(new_item_models.generator_bundle, new_rows, tmp_path / "ft",
                           replay_views=world.item_views,
                           config=RefreshConfig(FinetuneConfig(epochs=10, lr=1e-3, distill=1.0, augmented_copies=1)))
    assert found(tuned.bundle_dir) > found(zero_shot.bundle_dir) + 0.2
    assert tuned.finetune_seconds < 60
    manifest = read_manifest(tuned.bundle_dir)["finetune"]
    assert manifest["replay_views"] == manifest["new_views"] == len(new_rows.views)


def test_a_refresh_is_deterministic(new_item_models, new_rows, tmp_path) -> None:
    from onevision.generator.finetune import FinetuneConfig

    world = load_world(new_item_models.world)
    config = RefreshConfig(FinetuneConfig(epochs=1, augmented_copies=0), version="v")
    outs = [refresh_bundle(new_item_models.generator_bundle, new_rows, tmp_path / str(i), config=config,
                           replay_views=world.item_views).bundle_dir for i in range(2)]
    a, b = (json.loads((Path(o) / "bundle.json").read_text())["files"] for o in outs)
    assert {k: v for k, v in a.items() if k != REFRESH_MANIFEST} == {k: v for k, v in b.items() if k != REFRESH_MANIFEST}


def test_an_existing_output_is_refused(new_item_models, new_rows, tmp_path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something").write_text("")
    with pytest.raises(FileExistsError, match="exists already"):
        refresh_bundle(new_item_models.cascade_bundle, new_rows, tmp_path / "out", config=ZERO_SHOT)


def test_a_failed_refresh_leaves_no_output(new_item_models, new_rows, tmp_path) -> None:
    """Items that fill every deepest code under one prefix: the refresh stops, and nothing is left behind."""
    first = new_rows.items.iloc[[0]]
    n = 64  # more than the tiny preset's deepest codebook (8 codes) under one prefix
    items = first.loc[first.index.repeat(n)].assign(item_id=10_000 + np.arange(n))
    view = new_rows.views[new_rows.views["item_id"] == first["item_id"].iloc[0]].iloc[[0]]
    views = view.loc[view.index.repeat(n)].assign(item_id=10_000 + np.arange(n))
    with pytest.raises(SidSpaceFull, match="disambiguation tokens"):
        refresh_bundle(new_item_models.generator_bundle, NewRows(items.reset_index(drop=True),
                                                                 views.reset_index(drop=True)),
                       tmp_path / "out", config=ZERO_SHOT)
    assert list(tmp_path.iterdir()) == []


def test_items_already_in_the_bundle_are_refused(new_item_models, tmp_path) -> None:
    world = load_world(new_item_models.world)
    old = listed_between(world, -1, world.for_training().listed_by)  # items the bundles were trained on
    for bundle in (new_item_models.generator_bundle, new_item_models.cascade_bundle):
        with pytest.raises(CatalogueTableError, match="already in the"):
            refresh_bundle(bundle, old, tmp_path / "out", config=ZERO_SHOT)


def test_delisting_an_unknown_item_is_refused(new_item_models, new_rows, tmp_path) -> None:
    with pytest.raises(CatalogueTableError, match="delisted items not in"):
        refresh_bundle(new_item_models.generator_bundle, new_rows, tmp_path / "out", delisted=[999_999],
                       config=ZERO_SHOT)


def test_a_brand_beyond_a_full_attribute_table_is_refused(new_item_models, new_rows, tmp_path) -> None:
    """The tiny preset's attribute level has exactly 8 brands x 5 price bands codes: a ninth brand has no code."""
    rows = NewRows(new_rows.items.assign(brand=8), new_rows.views)
    with pytest.raises(SidSpaceFull, match="brand 8 x price band .* none of its 40 codes is free"):
        refresh_bundle(new_item_models.generator_bundle, rows, tmp_path / "out", config=ZERO_SHOT)
    assert not (tmp_path / "out").exists()


def test_weight_interpolation_keeps_that_share_of_the_fine_tuned_weights(new_item_models, new_rows, tmp_path) -> None:
    import dataclasses

    import torch

    from onevision.generator.finetune import FinetuneConfig
    from onevision.generator.model import SidGenerator

    world = load_world(new_item_models.world)
    full = FinetuneConfig(epochs=1, augmented_copies=0)
    weights = {}
    for name, config in (("full", full), ("half", dataclasses.replace(full, weight_interpolation=0.5))):
        out = refresh_bundle(new_item_models.generator_bundle, new_rows, tmp_path / name, config=RefreshConfig(config),
                             replay_views=world.item_views).bundle_dir
        weights[name] = SidGenerator.load(Path(out) / "generator").state_dict()
    parent = SidGenerator.load(Path(new_item_models.generator_bundle) / "generator").state_dict()
    moved = [k for k, v in parent.items() if v.is_floating_point() and not torch.equal(v, weights["full"][k])]
    assert moved  # the fine-tune changed weights, and the interpolated model is halfway on every one of them
    for k in moved:
        torch.testing.assert_close(weights["half"][k], (parent[k] + weights["full"][k]) / 2, rtol=1e-5, atol=1e-6)


def test_weight_interpolation_outside_0_1_is_refused() -> None:
    from onevision.generator.finetune import FinetuneConfig

    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="weight_interpolation must be in"):
            FinetuneConfig(weight_interpolation=bad)
