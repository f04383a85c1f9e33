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
    assert len(resumed.losses) == 3
    weights = (tmp_path / "g1" / "generator.pt").read_bytes()
    again = steps.train_generator_step(*args, config=cfg, show_progress=False)  # complete: nothing left to do
    assert again.losses == resumed.losses and (tmp_path / "g1" / "generator.pt").read_bytes() == weights


def test_resumed_training_matches_uninterrupted_training(tiny_models, tmp_path: Path) -> None:
    import dataclasses

    cfg = dataclasses.replace(steps.tiny_configs().generator, stage1_epochs=2)
    base = (tiny_models.world, tiny_models.encoder, tiny_models.vrq)
    steps.train_generator_step(*base, tmp_path / "a", 1, None, cfg, show_progress=False, stop_after=1)
    a = steps.train_generator_step(*base, tmp_path / "a", 1, None, cfg, show_progress=False)
    b = steps.train_generator_step(*base, tmp_path / "b", 1, None, cfg, show_progress=False)
    assert a.losses == pytest.approx(b.losses, rel=1e-5)
    assert_same_training_state(tmp_path / "a", tmp_path / "b")


def assert_same_training_state(a: Path, b: Path) -> None:
    """Final weights and optimiser state of two stage directories agree (checkpoint.pt holds both)."""
    sa, sb = (torch.load(d / "checkpoint.pt", map_location="cpu", weights_only=True) for d in (a, b))
    assert sa["epoch"] == sb["epoch"]
    torch.testing.assert_close(sa["model"], sb["model"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sa["optimizer"]["state"], sb["optimizer"]["state"], rtol=1e-5, atol=1e-6)


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tiny_models, tmp_path: Path) -> None:
    """SIGKILL (no clean stop) while stage 1 is in its second epoch; the resumed run ends where an uninterrupted
    one does, weights and optimiser state included."""
    import dataclasses
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = dataclasses.replace(steps.tiny_configs().generator, stage1_epochs=3)
    base = (tiny_models.world, tiny_models.encoder, tiny_models.vrq)
    killed = tmp_path / "killed"
    script = (
        "import dataclasses, sys; from pathlib import Path; from onevision import steps; "
        "cfg = dataclasses.replace(steps.tiny_configs().generator, stage1_epochs=3); "
        f"steps.train_generator_step(Path({str(base[0])!r}), Path({str(base[1])!r}), Path({str(base[2])!r}), "
        f"Path({str(killed)!r}), 1, None, cfg, show_progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            stage = killed / "stage.json"
            if stage.exists() and json.loads(stage.read_text() or "{}").get("epochs_done", 0) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = json.loads((killed / "stage.json").read_text())["epochs_done"]
    assert 1 <= done < 3
    resumed = steps.train_generator_step(*base, killed, 1, None, cfg, show_progress=False)
    whole = steps.train_generator_step(*base, tmp_path / "whole", 1, None, cfg, show_progress=False)
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-5)
    assert_same_training_state(killed, tmp_path / "whole")


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
    reloaded = load_retriever(tiny_models.generator_bundle).decode(images, users, k=5)
    assert (result.item_ids == reloaded.item_ids).all()  # deterministic across loads of the same bundle
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


def test_stage_2_learns_a_user_x_category_term_at_level_0(tiny_models) -> None:
    from onevision.generator.data import CATEGORY_FEATURES

    model = SidGenerator.load(tiny_models.generator[2])
    assert model.config.category_features == len(CATEGORY_FEATURES)
    assert model.category_scorer.weight.abs().sum() > 0  # it starts at zero, so training moved it
    assert SidGenerator.load(tiny_models.generator[1]).config.category_features == 0  # stage 1 reads no user


def test_category_affinity_scores_every_level_0_code_by_its_category(tiny_models) -> None:
    from onevision.generator.data import CATEGORY_FEATURES, category_affinity
    from onevision.userfeatures import UserFeatureTable
    from onevision.vrq.fit import VRQArtifact

    world = load_world(tiny_models.world)
    vrq = VRQArtifact.load(tiny_models.vrq)
    categories = vrq.code_categories()
    items = world.items.set_index("item_id")
    sids = vrq.sids_of(items.index.to_numpy())
    assert (categories[sids[:, 0]] == items["category"].to_numpy()).all()  # each item's level-0 code: its category
    users = UserFeatureTable.fit(world, "train")
    user = int(world.queries_of("train")["user_id"].value_counts().idxmax())
    feats = category_affinity(users, vrq, np.array([user, -1]))
    assert feats.shape == (2, len(categories), len(CATEGORY_FEATURES))
    used = categories >= 0
    click = users.affinity("category", np.array([user]), categories[None, used], signal="click")[0]
    np.testing.assert_allclose(feats[0, used, 0], click, rtol=1e-6)
    declared = users.profile(np.array([user]))[0][0]
    assert np.array_equal(feats[0, used, 3] == 1, categories[used] == declared)
    assert not feats[1].any() and not feats[0, ~used].any()  # unknown users and codes of no category: nothing
