from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from onevision.vision.augment import augment
from onevision.vision.encoder import EncoderConfig, ImageEncoder, encode_images, to_pixels
from onevision.vision.features import CatalogueFeatures
from onevision.vision.images import ItemImages
from onevision.vision.losses import circle_loss, multi_positive_info_nce
from onevision.vision.train import EncoderTrainConfig, train_encoder
from onevision.world import load_world

SMALL = EncoderConfig(widths=(8, 16, 16, 32), embed_dim=32)


def test_embeddings_are_unit_norm_and_tokens_form_a_grid(tiny_world_dir: Path) -> None:
    data = ItemImages.from_world(load_world(tiny_world_dir), include_user_photos=False)
    emb, tokens = encode_images(ImageEncoder(SMALL), data.decoded(np.arange(10)))
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert tokens.shape == (10, SMALL.n_tokens, SMALL.token_dim)


def test_training_lowers_the_contrastive_loss(tiny_world_dir: Path) -> None:
    world = load_world(tiny_world_dir)
    data = ItemImages.from_world(world)
    family = dict(zip(world.items.item_id.tolist(), world.items.family_id.tolist()))
    _, losses = train_encoder(data, family, SMALL, EncoderTrainConfig(epochs=4, items_per_batch=32), show_progress=False)
    assert losses[-1] < losses[0]


def test_views_of_one_product_are_closer_than_other_products(tiny_encoder_dir: Path) -> None:
    feats = CatalogueFeatures.load(tiny_encoder_dir)
    sims = feats.view_emb @ feats.item_emb.T
    top5 = np.argsort(-sims, axis=1)[:, :5]
    hit = (top5 == feats.view_item_row[:, None]).any(1).mean()
    assert hit > 10 * 5 / len(feats.item_ids)  # ten times chance (a 4-epoch encoder on the tiny world)


def test_save_load_gives_identical_embeddings(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    encoder = ImageEncoder.load(tiny_encoder_dir)
    encoder.save(tmp_path)
    again = ImageEncoder.load(tmp_path)
    images = (np.random.default_rng(0).random((3, 64, 64, 3)) * 255).astype(np.uint8)
    assert np.array_equal(encode_images(encoder, images)[0], encode_images(again, images)[0])


def test_the_channels_last_encoder_gives_the_same_tokens_at_batch_one_and_many(tiny_encoder_dir: Path) -> None:
    """What retrievers serve with (`channels_last`) against the layout training uses."""
    plain, fast = ImageEncoder.load(tiny_encoder_dir), ImageEncoder.load(tiny_encoder_dir).channels_last()
    assert fast.stages[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    size = fast.config.image_size
    images = (np.random.default_rng(0).random((20, size, size, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        for batch in (images[:1], images):
            np.testing.assert_allclose(fast.tokens(to_pixels(batch)).numpy(), plain.tokens(to_pixels(batch)).numpy(),
                                       atol=1e-5)


def test_augmentation_is_seeded() -> None:
    px = to_pixels((np.random.default_rng(1).random((4, 64, 64, 3)) * 255).astype(np.uint8))
    a = augment(px, torch.Generator().manual_seed(3))
    b = augment(px, torch.Generator().manual_seed(3))
    c = augment(px, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_losses_prefer_aligned_embeddings() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    aligned = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1]]), dim=1)
    crossed = aligned[[0, 2, 1, 3]]
    assert multi_positive_info_nce(aligned, labels) < multi_positive_info_nce(crossed, labels)
    assert circle_loss(aligned, labels) < circle_loss(crossed, labels)


def test_the_step_budget_caps_every_epoch(tiny_world_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from onevision.vision import train as vt

    world = load_world(tiny_world_dir)
    data = ItemImages.from_world(world)
    family = dict(zip(world.items.item_id.tolist(), world.items.family_id.tolist()))
    calls = []
    real = vt.multi_positive_info_nce
    monkeypatch.setattr(vt, "multi_positive_info_nce", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = EncoderTrainConfig(epochs=2, items_per_batch=8, max_steps=3)
    assert len(vt._batches(np.unique(data.item_ids), family, 8, np.random.default_rng(0))) > 2  # the budget binds
    _, losses = train_encoder(data, family, SMALL, cfg, show_progress=False)
    assert len(losses) == 2 and len(calls) == 4  # ceil(3 / 2) steps in each of 2 epochs


def test_both_arms_rank_alike_with_the_channels_last_encoder(tiny_models, monkeypatch) -> None:
    """Retrievers load the encoder channels-last; against the training layout the lists are the same."""
    from onevision.bundle import load_retriever
    from onevision.vision.images import decode_images

    q = load_world(tiny_models.world).queries_of("test").iloc[:16]
    images, users = decode_images(q["image"].tolist()), q["user_id"].to_numpy()
    for bundle in (tiny_models.generator_bundle, tiny_models.cascade_bundle):
        served = load_retriever(bundle)
        plain = load_retriever(bundle)
        monkeypatch.setattr(plain, "encoder", ImageEncoder.load(Path(bundle) / "encoder"))
        assert not plain.encoder.stages[1][0].weight.is_contiguous(memory_format=torch.channels_last)
        for rows in (slice(0, 1), slice(0, 16)):
            a = served.retrieve(images[rows], users[rows], 10)
            b = plain.retrieve(images[rows], users[rows], 10)
            assert (a.item_ids == b.item_ids).all()
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
