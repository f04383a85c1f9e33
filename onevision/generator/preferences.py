"""Stage 3's preference lists: per training query, a list of items, the one the user is taken to prefer and the
ones they passed over. Two sources:

- the logged slates: the ordered (else clicked) slot over the skipped ones;
- the generator's own beam lists, ranked by a reward model trained on the logged impressions (the cascade's
  ranker, never the oracle) plus the list's own log-score: OneRec's preference alignment on the model's own
  outputs. The logged slates come from another system's lists; its own lists teach the generator to order what
  it actually emits. The list's log-score keeps the photographed item in view, since the ranker's own top item
  is less often the photographed one than the generator's (recall@10 0.63 for the ranker on the generator's
  beam of 50 on the default world, 0.75 for the generator)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from onevision.cascade.cascade import Cascade
    from onevision.featurestore.source import UserFeatureSource
    from onevision.generator.data import QueryLog
    from onevision.generator.model import SidGenerator
    from onevision.vrq.fit import VRQArtifact


@dataclass(frozen=True)
class PreferenceLists:
    items: np.ndarray  # int64 (Q, S), -1 where nothing; rows aligned with the QueryLog
    chosen: np.ndarray  # int64 (Q,): the preferred item's column, -1 for a query without a preference
    rejectable: np.ndarray  # bool (Q, S): the items the preferred one is ranked above

    def usable(self) -> np.ndarray:
        """Rows with a preferred item and at least one passed-over item."""
        return np.flatnonzero((self.chosen >= 0) & self.rejectable.any(1))


def logged_preferences(logq: QueryLog) -> PreferenceLists:
    """The ordered (else the clicked) slot of each logged slate over its skipped slots."""
    clicked_any = logq.clicked.any(1)
    chosen = np.where(logq.ordered.any(1), logq.ordered.argmax(1), logq.clicked.argmax(1))
    return PreferenceLists(logq.slate_items, np.where(clicked_any, chosen, -1),
                           (~logq.clicked) & (logq.slate_items >= 0))


def reward_preferences(reference: SidGenerator, logq: QueryLog, users: UserFeatureSource, vrq: VRQArtifact,
                       reward: Cascade, beam: int, weight: float, batch_size: int = 128,
                       progress: bool = False) -> PreferenceLists:
    """The reference model's beam list of `beam` items per query (its user inputs leave the query itself out, as in
    training), the item with the best log-score + `weight` × the reward over the rest."""
    import torch
    from tqdm import tqdm

    from onevision.generator.data import UserContext, make_input
    from onevision.generator.decode import beam_search
    from onevision.generator.options import PruningConfig

    if beam < 2:
        raise ValueError(f"reward preferences need beam lists of at least 2 items, got beam={beam}")
    n = len(logq.query_ids)
    items = np.full((n, beam), -1, np.int64)
    total = np.full((n, beam), -np.inf, np.float32)
    cfg = reference.config
    reference.eval()
    emb = logq.bank.embedding.numpy()
    for start in tqdm(range(0, n, batch_size), desc="stage 3: beam lists x reward", unit="batch", disable=not progress):
        rows = np.arange(start, min(start + batch_size, n))
        ctx = UserContext.build(users, vrq, logq.user_ids[rows], cfg.history_len, logq.query_ids[rows],
                                with_affinity=cfg.affinity_features > 0, with_category=cfg.category_features > 0)
        with torch.inference_mode():
            found = beam_search(reference, make_input(logq.bank, rows, ctx), vrq.trie, beam, beam, PruningConfig())
        r = reward.reward(emb[rows], logq.user_ids[rows], found.item_ids, logq.query_ids[rows])
        items[rows] = found.item_ids
        total[rows] = np.where(found.item_ids >= 0, found.scores + weight * r, -np.inf)
    has = np.isfinite(total).any(1)
    chosen = np.where(has, np.argmax(total, 1), -1)
    rejectable = (items >= 0) & (np.arange(beam)[None, :] != chosen[:, None])
    return PreferenceLists(items, chosen, rejectable)
