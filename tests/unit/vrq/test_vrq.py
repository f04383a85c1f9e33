from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onevision.vision.features import CatalogueFeatures
from onevision.vrq.aligned import VisionAlignedRQ, VRQConfig, category_code_mask
from onevision.vrq.attributes import ItemAttributes
from onevision.vrq.fit import VRQArtifact, fit_vrq
from onevision.vrq.quantizer import TrainingSet
from onevision.vrq.report import prefix_consistency
from onevision.vrq.rq_kmeans import ResidualKMeans

SIZES = (16, 8, 8)


@pytest.fixture(scope="module")
def artifact(features: CatalogueFeatures) -> VRQArtifact:
    return fit_vrq(features, VRQConfig(codebook_sizes=SIZES, refine_steps=100), compare_baselines=True, show_progress=False)


def test_alignment_raises_view_consistency_over_plain_rq(artifact: VRQArtifact) -> None:
    vrq, kmeans, rqvae = artifact.report["vrq"], artifact.report["rq-kmeans"], artifact.report["rq-vae"]
    for level in (0, 1):
        assert vrq["view_consistency"][level] > kmeans["view_consistency"][level]
        assert vrq["view_consistency"][level] > rqvae["view_consistency"][level]
    assert sum(vrq["view_consistency"]) > sum(kmeans["view_consistency"]) + 0.3


def test_every_item_gets_a_unique_sid(artifact: VRQArtifact, features: CatalogueFeatures) -> None:
    sids = artifact.sids.sids
    assert len(np.unique(sids, axis=0)) == len(features.item_ids)
    assert artifact.report["vrq"]["unique_sids"] is True
    assert (artifact.trie.lookup(sids) == artifact.sids.item_ids).all()


def test_category_injection_keeps_level0_codes_inside_the_category(artifact: VRQArtifact, features: CatalogueFeatures) -> None:
    level0 = artifact.sids.sids[:, 0]
    mask = artifact.quantizer.category_mask
    assert mask[features.item_category, level0].all()


def test_codebooks_are_used(artifact: VRQArtifact) -> None:
    assert min(artifact.report["vrq"]["utilisation"]) > 0.5


def test_save_load_gives_identical_outputs(artifact: VRQArtifact, features: CatalogueFeatures, tmp_path: Path) -> None:
    artifact.save(tmp_path)
    again = VRQArtifact.load(tmp_path)
    assert (again.sids.sids == artifact.sids.sids).all()
    a, b = artifact.quantizer.quantize(features.view_emb), again.quantizer.quantize(features.view_emb)
    assert (a.indices == b.indices).all() and np.allclose(a.quantized, b.quantized)
    assert (again.sids_of(features.item_ids[:5]) == artifact.sids.sids[:5]).all()
    assert (again.sids_of(np.array([-1])) == -1).all()


def test_same_seed_same_codes(features: CatalogueFeatures) -> None:
    emb = np.concatenate([features.view_emb, features.train_photo_emb])
    rows = np.concatenate([features.view_item_row, features.train_photo_item_row])
    cfg = VRQConfig(codebook_sizes=SIZES, refine_steps=30)
    data = TrainingSet(features.item_emb, features.item_category, emb, rows)
    a, b = VisionAlignedRQ(cfg).fit(data), VisionAlignedRQ(cfg).fit(data)
    assert (a.indices == b.indices).all()


def test_a_sampled_refinement_still_codes_every_item_and_stays_aligned(features: CatalogueFeatures) -> None:
    emb = np.concatenate([features.view_emb, features.train_photo_emb])
    rows = np.concatenate([features.view_item_row, features.train_photo_item_row])
    data = TrainingSet(features.item_emb, features.item_category, emb, rows)
    n = len(features.item_ids)
    cfg = VRQConfig(codebook_sizes=SIZES, refine_steps=30)
    reference = VisionAlignedRQ(cfg)
    full = reference.fit(data)
    unbound = VisionAlignedRQ(VRQConfig(codebook_sizes=SIZES, refine_steps=30, refine_max_items=n)).fit(data)
    assert (full.indices == unbound.indices).all()  # a budget at the catalogue's size changes nothing
    sampled_cfg = VRQConfig(codebook_sizes=SIZES, refine_steps=30, refine_max_items=n // 2)
    sampled = VisionAlignedRQ(sampled_cfg)
    a, b = sampled.fit(data), VisionAlignedRQ(sampled_cfg).fit(data)
    assert a.indices.shape == full.indices.shape and (a.indices == b.indices).all()  # seeded
    mask = category_code_mask(features.item_category, SIZES[0])
    assert mask[features.item_category, a.indices[:, 0]].all()  # every item, sampled or not, inside its category
    views = features.view_item_row
    consistency = prefix_consistency(sampled.quantize(features.view_emb).indices, a.indices[views])
    reference_consistency = prefix_consistency(reference.quantize(features.view_emb).indices, full.indices[views])
    assert consistency[0] > 0.8 * reference_consistency[0], (consistency, reference_consistency)  # views still land in their item's level-0 code


def test_refine_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="refine_max_items"):
        VRQConfig(refine_max_items=0)


def test_category_code_mask_partitions_codes() -> None:
    mask = category_code_mask(np.array([0, 0, 0, 1, 2, 2]), 12)
    assert mask.sum(0).tolist() == [1] * 12
    assert mask.sum(1).tolist()[0] > mask.sum(1).tolist()[1]
    with pytest.raises(ValueError, match="cannot cover"):
        category_code_mask(np.array([0, 1, 2]), 2)


def test_prefix_consistency_counts_prefix_matches() -> None:
    view = np.array([[1, 2, 3], [1, 0, 3], [0, 2, 3]])
    item = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3]])
    assert prefix_consistency(view, item) == [pytest.approx(2 / 3), pytest.approx(1 / 3), pytest.approx(1 / 3)]


def test_rq_kmeans_reconstructs_better_with_more_levels(features: CatalogueFeatures) -> None:
    one = ResidualKMeans((16,)).fit(TrainingSet(features.item_emb))
    three = ResidualKMeans((16, 8, 8)).fit(TrainingSet(features.item_emb))
    assert three.loss < one.loss


def _attributes(features: CatalogueFeatures, world_dir: Path) -> ItemAttributes:
    from onevision.world import load_world

    world = load_world(world_dir)
    items = world.items.set_index("item_id").loc[features.item_ids]
    return ItemAttributes(items["brand"].to_numpy(), items["price_band"].to_numpy(), world.config.brands,
                          world.config.price_bands)


def test_attribute_level_codes_brand_and_price_band(features: CatalogueFeatures, tiny_world_dir: Path) -> None:
    attrs = _attributes(features, tiny_world_dir)
    art = fit_vrq(features, VRQConfig(codebook_sizes=(16, 40, 8), attribute_level=1, refine_steps=20),
                  compare_baselines=False, show_progress=False, attributes=attrs)
    assert (art.sids.sids[:, 1] == attrs.brand * attrs.n_price_bands + attrs.price_band).all()
    # the code table says what every code means, so the generator can score user affinities on it
    codes = art.attributes
    assert codes is not None and codes.level == 1
    assert (codes.brand[art.sids.sids[:, 1]] == attrs.brand).all()
    assert (codes.price_band[art.sids.sids[:, 1]] == attrs.price_band).all()
    assert len(np.unique(art.sids.sids, axis=0)) == len(art.sids.sids)  # still one SID per item


def test_attribute_level_survives_save_and_load(features: CatalogueFeatures, tiny_world_dir: Path, tmp_path: Path) -> None:
    art = fit_vrq(features, VRQConfig(codebook_sizes=(16, 40, 8), attribute_level=1, refine_steps=20),
                  compare_baselines=False, show_progress=False, attributes=_attributes(features, tiny_world_dir))
    loaded = VRQArtifact.load(art.save(tmp_path))
    assert loaded.attributes is not None
    assert (loaded.attributes.brand == art.attributes.brand).all() and loaded.attributes.level == 1


def test_attribute_level_refuses_attributes_that_do_not_fit(features: CatalogueFeatures, tiny_world_dir: Path) -> None:
    with pytest.raises(ValueError, match="do not fit the attribute level's 8 codes"):
        fit_vrq(features, VRQConfig(codebook_sizes=(16, 8, 8), attribute_level=1, refine_steps=5),
                compare_baselines=False, show_progress=False, attributes=_attributes(features, tiny_world_dir))
    with pytest.raises(ValueError, match="needs the attributes"):
        fit_vrq(features, VRQConfig(codebook_sizes=(16, 40, 8), attribute_level=1, refine_steps=5),
                compare_baselines=False, show_progress=False)
    with pytest.raises(ValueError, match="attribute_level must be a level"):
        VRQConfig(attribute_level=0)


def test_the_alignment_scale_summed_in_chunks_equals_the_direct_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from onevision.vrq import aligned

    x, c = torch.randn(300, 16, generator=torch.Generator().manual_seed(0)), torch.randn(8, 16)
    direct = aligned._mean_squared_distance(x, c)
    monkeypatch.setattr(aligned, "DIRECT_DISTANCE_LIMIT", 16 * 8 * 7)  # 7 items at a time, a ragged last chunk
    torch.testing.assert_close(aligned._mean_squared_distance(x, c), direct, rtol=1e-5, atol=0)
