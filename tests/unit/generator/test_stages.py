from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from onevision import steps
from onevision.bundle import load_retriever
from onevision.generator.model import SidGenerator
from onevision.vision.images import decode_images
from onevision.world import load_world


def _test_batch(world_dir: Path, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    q = load_world(world_dir).queries_of("test").iloc[:n]
    return decode_images(q["image"].tolist()), q["user_id"].to_numpy()


def test_each_stage_writes_a_reloadable_checkpoint(tiny_models) -> None:
    for stage, path in tiny_models.generator.items():
        meta = json.loads((path / "stage.json").read_text())
        assert meta["stage"] == stage and meta["epochs_done"] >= 1
        model = SidGenerator.load(path)
        assert (model.config.user_feature_dim > 0) == (stage > 1)
    assert (tiny_models.generator[2] / "userfeatures").is_dir()


def test_interrupted_stage_resumes_from_its_checkpoint(tiny_models, tmp_path: Path) -> None:
    cfg = steps.tiny_configs().generator
    import dataclasses

    cfg = dataclasses.replace(cfg, stage1_epochs=3)
    args = (tiny_models.world, tiny_models.encoder, tiny_models.vrq, tmp_path / "g1", 1, None)
    first = steps.train_generator_step(*args, config=cfg, show_progress=False, stop_after=1)
    assert len(first.losses) == 1
    resumed = steps.train_generator_step(*args, config=cfg, show_progress=False)
    assert len(resumed.losses) == 3 and resumed.losses[0] == first.losses[0]
    again = steps.train_generator_step(*args, config=cfg, show_progress=False)  # complete: nothing left to do
    assert again.losses == resumed.losses


def test_resumed_training_matches_uninterrupted_training(tiny_models, tmp_path: Path) -> None:
    import dataclasses

    cfg = dataclasses.replace(steps.tiny_configs().generator, stage1_epochs=2)
    base = (tiny_models.world, tiny_models.encoder, tiny_models.vrq)
    steps.train_generator_step(*base, tmp_path / "a", 1, None, cfg, show_progress=False, stop_after=1)
    a = steps.train_generator_step(*base, tmp_path / "a", 1, None, cfg, show_progress=False)
    b = steps.train_generator_step(*base, tmp_path / "b", 1, None, cfg, show_progress=False)
    assert a.losses == pytest.approx(b.losses, rel=1e-5)


def test_stage_mismatch_is_refused(tiny_models, tmp_path: Path) -> None:
    shutil.copytree(tiny_models.generator[1], tmp_path / "g")
    with pytest.raises(ValueError, match="stage-1 checkpoint"):
        steps.train_generator_step(tiny_models.world, tiny_models.encoder, tiny_models.vrq, tmp_path / "g", 2,
                                   tiny_models.generator[1], steps.tiny_configs().generator, show_progress=False)


def test_later_stage_needs_its_init(tiny_models, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="init_dir"):
        steps.train_generator_step(tiny_models.world, tiny_models.encoder, tiny_models.vrq, tmp_path / "g", 2, None)


def test_generator_bundle_returns_valid_items_for_known_and_unknown_users(tiny_models) -> None:
    retriever = load_retriever(tiny_models.generator_bundle)
    images, users = _test_batch(tiny_models.world)
    result = retriever.decode(images, users, k=5)
    known = retriever.decode(images, users, k=5)
    assert (result.item_ids == known.item_ids).all()  # deterministic
    valid = result.item_ids >= 0
    assert valid[:, 0].all()
    assert (retriever.vrq.trie.lookup(result.sids[valid]) == result.item_ids[valid]).all()
    unknown = retriever.retrieve(images, np.full(len(users), 987654), k=5)
    anonymous = retriever.retrieve(images, None, k=5)
    assert (unknown.item_ids == anonymous.item_ids).all()


def test_personalisation_changes_the_ranking(tiny_models) -> None:
    retriever = load_retriever(tiny_models.generator_bundle)
    images, users = _test_batch(tiny_models.world, 24)
    with torch.no_grad():
        personal = retriever.retrieve(images, users, k=10).scores
        anonymous = retriever.retrieve(images, None, k=10).scores
    assert not np.allclose(personal, anonymous)
