from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from onevision.vrq.sid import SidTrie, assign_sids


def _codes() -> np.ndarray:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (40, 3))
    codes[5] = codes[6] = codes[7] = [1, 2, 3]  # a three-way collision
    return codes


def test_every_item_gets_a_unique_sid() -> None:
    sem = assign_sids(np.arange(100, 140), _codes())
    assert len(np.unique(sem.sids, axis=0)) == 40
    assert sorted(sem.sids[[5, 6, 7], -1].tolist()) == [0, 1, 2]
    assert sem.collision_rate > 0


def test_no_collision_means_zero_tokens() -> None:
    codes = np.array([[0, 0], [0, 1], [1, 0]])
    sem = assign_sids(np.array([3, 1, 2]), codes)
    assert (sem.sids[:, -1] == 0).all() and sem.collision_rate == 0.0


def test_trie_accepts_exactly_the_valid_sids(tmp_path: Path) -> None:
    sem = assign_sids(np.arange(100, 140), _codes())
    vocab = sem.vocab_sizes((4, 4, 4))
    trie = SidTrie.build(sem, vocab)
    valid = {tuple(s) for s in sem.sids.tolist()}
    every = np.array(list(itertools.product(*[range(v) for v in vocab])))
    found = trie.lookup(every)
    assert {tuple(s) for s in every[found >= 0].tolist()} == valid
    assert (trie.lookup(sem.sids) == sem.item_ids).all()
    trie.save(tmp_path / "trie.npz")
    again = SidTrie.load(tmp_path / "trie.npz")
    assert (again.lookup(every) == found).all()


def test_allowed_mask_lists_children_of_each_prefix() -> None:
    sem = assign_sids(np.arange(6), np.array([[0, 1], [0, 3], [2, 0], [2, 1], [2, 2], [3, 3]]))
    trie = SidTrie.build(sem, sem.vocab_sizes((4, 4)))
    root = trie.allowed_mask(0, np.array([0]))
    assert root.tolist() == [[True, False, True, True]]
    level1_nodes = trie.step(0, np.array([0, 0, 0]), np.array([0, 2, 1]))
    assert level1_nodes[2] == -1
    mask = trie.allowed_mask(1, level1_nodes[:2])
    assert mask.tolist() == [[False, True, False, True], [True, True, True, False]]


def test_out_of_range_tokens_are_rejected() -> None:
    sem = assign_sids(np.arange(2), np.array([[0, 5], [1, 0]]))
    with pytest.raises(ValueError, match="level 1"):
        SidTrie.build(sem, (2, 4, 1))


@pytest.mark.parametrize("dense", [True, False])
def test_penalty_masks_invalid_tokens_and_child_follows_valid_ones(dense: bool, monkeypatch) -> None:
    import torch

    from onevision.vrq import sid as sid_module

    if not dense:  # every level stays CSR
        monkeypatch.setattr(sid_module, "DENSE_LIMIT", 0)
    sem = assign_sids(np.arange(100, 140), _codes())
    trie = SidTrie.build(sem, sem.vocab_sizes((4, 4, 4)))
    nodes = torch.zeros(1, dtype=torch.long)
    for level in range(trie.depth):
        allowed = trie.allowed_mask(level, nodes.numpy())
        penalty = trie.penalty(level, nodes)
        assert penalty.dtype == torch.float32
        assert ((penalty == 0).numpy() == allowed).all() and (penalty[~torch.from_numpy(allowed)] == -np.inf).all()
        rows, tokens = np.nonzero(allowed)
        child = trie.child(level, nodes[rows], torch.from_numpy(tokens))
        assert (child.numpy() == trie.step(level, nodes.numpy()[rows], tokens)).all() and (child >= 0).all()
        nodes = child
    assert sorted(trie.leaf_item[nodes.numpy()].tolist()) == list(range(100, 140))
