"""Recall@K on a split's queries for new items (listed after the training catalogue) vs old items, overall and by
days since listing: what a refresh must raise for the new and keep for the old."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from onevision.catalogue.config import ListingEvalConfig
from onevision.contracts import Retriever
from onevision.evaluation.harness import load_queries
from onevision.evaluation.metrics import first_hit_rank
from onevision.world import World, load_world
from onevision.world.render import decode_image

LISTING_RECALL_FILE = "listing_recall.json"


@dataclass(frozen=True)
class ListingRecall:
    """Recall@k of queries for new and for old items; `by_day`: new items' recall by days since listing."""

    k: int
    listed_by: int  # the training catalogue's last listing day: later items are new
    old: float
    new: float
    n_old: int
    n_new: int
    by_day: dict[int, tuple[float, int]] = field(default_factory=dict)  # days since listing -> (recall, queries)

    def to_json(self) -> dict:
        data = asdict(self)
        data["by_day"] = {str(d): {"recall": r, "queries": n} for d, (r, n) in self.by_day.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> ListingRecall:
        by_day = {int(d): (float(v["recall"]), int(v["queries"])) for d, v in data.get("by_day", {}).items()}
        return cls(int(data["k"]), int(data["listed_by"]), float(data["old"]), float(data["new"]), int(data["n_old"]),
                   int(data["n_new"]), by_day)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / LISTING_RECALL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> ListingRecall:
        path = Path(directory) / LISTING_RECALL_FILE
        if not path.exists():
            raise FileNotFoundError(f"listing recall missing: {path}")
        return cls.from_json(json.loads(path.read_text()))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def listing_recall(retriever: Retriever, world: World | str | Path, config: ListingEvalConfig = ListingEvalConfig(),
                   listed_by: int | None = None) -> ListingRecall:
    """`listed_by` default: the last day of the world's training data (what `World.for_training` lists)."""
    if not isinstance(world, World):
        world = load_world(world)
    if listed_by is None:
        listed_by = world.for_training().listed_by
        if listed_by is None:
            raise ValueError(f"{world.root} has no world.json: pass listed_by, the training catalogue's day")
    data = load_queries(world, config.split, config.max_queries)
    ranked = np.empty((len(data.targets), config.k), np.int64)
    for start in range(0, len(data.targets), config.batch_size):
        stop = min(start + config.batch_size, len(data.targets))
        images = np.stack([decode_image(b) for b in data.images.iloc[start:stop]])
        users = data.user_ids[start:stop] if config.personalised else None
        ranked[start:stop] = np.asarray(retriever.retrieve(images, users, config.k).item_ids, np.int64)
    hit = first_hit_rank(ranked, data.targets, config.k) >= 0
    first_day = world.all_items.set_index("item_id")["first_day"].loc[data.targets].to_numpy(np.int64)
    is_new = first_day > listed_by
    days = world.queries_of(config.split)["day"].to_numpy(np.int64)[: len(data.targets)] - first_day
    by_day = {int(d): (_mean(hit[is_new & (days == d)]), int((is_new & (days == d)).sum()))
              for d in np.unique(days[is_new])}
    return ListingRecall(config.k, int(listed_by), _mean(hit[~is_new]), _mean(hit[is_new]), int((~is_new).sum()),
                         int(is_new.sum()), by_day)
