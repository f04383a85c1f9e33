from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from onevision import steps
from onevision.generator.preferences import logged_preferences, reward_preferences
from onevision.generator.staging import GeneratorTrainingConfig


@pytest.fixture(scope="module")
def inputs(tiny_models):
    from onevision.bundle import load_retriever
    from onevision.generator.data import query_log
    from onevision.generator.model import SidGenerator
    from onevision.userfeatures import UserFeatureTable
    from onevision.vision.encoder import ImageEncoder
    from onevision.vrq.fit import VRQArtifact
    from onevision.world import load_world

    world = load_world(tiny_models.world).for_training()
    logq = query_log(world, ImageEncoder.load(tiny_models.encoder))
    cascade = load_retriever(tiny_models.cascade_bundle)
    return (SidGenerator.load(tiny_models.generator[2]), logq, UserFeatureTable.fit(world, "train"),
            VRQArtifact.load(tiny_models.vrq), cascade)


def test_logged_preferences_take_the_ordered_else_clicked_slot_over_the_skipped(inputs) -> None:
    logq = inputs[1]
    prefs = logged_preferences(logq)
    for r in prefs.usable():
        chosen = prefs.chosen[r]
        assert logq.clicked[r, chosen]
        if logq.ordered[r].any():
            assert logq.ordered[r, chosen]
        assert not (prefs.rejectable[r] & logq.clicked[r]).any()
    assert (prefs.chosen[~logq.clicked.any(1)] == -1).all()


def test_reward_preferences_pick_the_best_log_score_plus_reward_of_the_models_own_list(inputs) -> None:
    model, logq, users, vrq, cascade = inputs
    prefs = reward_preferences(model, logq, users, vrq, cascade, beam=6, weight=2.0)
    assert prefs.items.shape == (len(logq.query_ids), 6) and len(prefs.usable()) == len(logq.query_ids)
    assert np.isin(prefs.items[prefs.items >= 0], vrq.sids.item_ids).all()  # only items the trie can emit
    rows = np.arange(8)
    emb = logq.bank.embedding.numpy()[rows]
    reward = cascade.reward(emb, logq.user_ids[rows], prefs.items[rows], logq.query_ids[rows])
    only_reward = reward_preferences(model, logq, users, vrq, cascade, beam=6, weight=1e6)
    assert (only_reward.chosen[rows] == np.argmax(reward, 1)).all()  # a huge weight: the reward model's own pick
    only_model = reward_preferences(model, logq, users, vrq, cascade, beam=6, weight=0.0)
    assert (only_model.chosen == 0).all()  # no reward: the beam's best (lists come best first)
    assert not prefs.rejectable[np.arange(len(prefs.chosen)), prefs.chosen].any()


def test_the_cascade_reward_leaves_the_query_out_of_its_users_features(inputs) -> None:
    model, logq, users, vrq, cascade = inputs
    rows = np.arange(16)
    emb = logq.bank.embedding.numpy()[rows]
    items = np.tile(logq.slate_items[rows, :3], 1)
    kept = cascade.reward(emb, logq.user_ids[rows], items, None)
    left_out = cascade.reward(emb, logq.user_ids[rows], items, logq.query_ids[rows])
    assert kept.shape == (16, 3) and not np.allclose(kept, left_out)
    padded = cascade.reward(emb, logq.user_ids[rows], np.where(np.arange(3) == 2, -1, items), None)
    assert np.isneginf(padded[:, 2]).all() and np.allclose(padded[:, :2], kept[:, :2])
    with pytest.raises(ValueError, match="ranker"):
        cascade.upto("prerank").reward(emb, logq.user_ids[rows], items)


def test_stage_3_needs_a_reward_model_unless_it_learns_from_the_logged_slates(tiny_models, tmp_path: Path) -> None:
    args = (tiny_models.world, tiny_models.encoder, tiny_models.vrq)
    cfg = dataclasses.replace(steps.tiny_configs().generator, stage3_epochs=1)
    with pytest.raises(ValueError, match="reward model"):
        steps.train_generator_step(*args, tmp_path / "r", 3, tiny_models.generator[2], cfg, show_progress=False)
    logged = dataclasses.replace(cfg, preferences="logged")
    done = steps.train_generator_step(*args, tmp_path / "l", 3, tiny_models.generator[2], logged, show_progress=False)
    assert len(done.losses) == 1


@pytest.mark.parametrize("change, message", [({"preferences": "clicks"}, "preferences must be one of"),
                                             ({"reward_beam": 1}, "reward_beam"), ({"reward_weight": -1.0}, "reward_weight")])
def test_bad_preference_settings_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorTrainingConfig(**change)
