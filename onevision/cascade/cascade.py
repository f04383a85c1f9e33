"""The multi-stage cascade (MCA) baseline as one Retriever: encode -> ANN recall -> pre-rank -> rank."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from onevision.cascade.candidates import Candidates
from onevision.cascade.config import CascadeConfig
from onevision.cascade.prerank import PreRanker
from onevision.cascade.rank import Ranker
from onevision.cascade.recall import AnnRecall
from onevision.contracts import Ranking
from onevision.threads import one_blas_thread

if TYPE_CHECKING:
    from onevision.vision.encoder import ImageEncoder
    from onevision.world import World

Stage = Literal["recall", "prerank", "rank"]
STAGES: tuple[Stage, ...] = ("recall", "prerank", "rank")
CONFIG_FILE = "cascade.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds per query spent in each stage."""

    encode_ms: float = 0.0
    recall_ms: float = 0.0
    prerank_ms: float = 0.0
    rank_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.encode_ms + self.recall_ms + self.prerank_ms + self.rank_ms

    def to_json(self) -> dict[str, float]:
        return {**asdict(self), "total_ms": self.total_ms}


def encoder_digest(encoder_dir: str | Path) -> str:
    path = Path(encoder_dir) / "encoder.pt"
    if not path.exists():
        raise FileNotFoundError(f"encoder weights missing: {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(ranked: Candidates, recalled: Candidates, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ranked list, then (when k asks for more) the other recall candidates in recall order, -1 padded."""
    b, m = ranked.item_ids.shape
    ids = np.full((b, k), -1, np.int64)
    scores = np.full((b, k), -np.inf, np.float32)
    take = min(m, k)
    ids[:, :take] = ranked.item_ids[:, :take]
    scores[:, :take] = ranked.scores[:, :take]
    if k > m:
        seen = (recalled.item_ids[:, :, None] == ranked.item_ids[:, None, :]).any(2) | ~recalled.valid
        order = np.argsort(seen, axis=1, kind="stable")[:, : k - m]
        rest = np.take_along_axis(recalled.item_ids, order, 1)
        rest_ok = ~np.take_along_axis(seen, order, 1)
        floor = np.where(ranked.valid, ranked.scores, np.inf).min(1, initial=np.inf)
        floor = np.where(np.isfinite(floor), floor, 0.0)
        ids[:, m : m + rest.shape[1]] = np.where(rest_ok, rest, -1)
        tail = floor[:, None] - 1.0 - np.arange(rest.shape[1])
        scores[:, m : m + rest.shape[1]] = np.where(rest_ok, tail, -np.inf)
    ids[~np.isfinite(scores)] = -1
    return ids, scores


class Cascade:
    """encode -> ANN recall (N) -> pre-rank (M) -> personalised rank (k). `upto` stops after a stage, to
    measure what each stage adds (e.g. `cascade.upto("recall")` ranks by ANN similarity alone). A
    PersonalisedRetriever (onevision.contracts); `version` is the bundle version it was loaded from."""

    def __init__(self, encoder: ImageEncoder, recall: AnnRecall, prerank: PreRanker, ranker: Ranker,
                 config: CascadeConfig = CascadeConfig(), upto: Stage = "rank", encoder_sha256: str | None = None,
                 version: str | None = None):
        if upto not in STAGES:
            raise ValueError(f"upto must be one of {STAGES}, got {upto!r}")
        if encoder.config.embed_dim != recall.dim:
            raise ValueError(
                f"encoder embeds in {encoder.config.embed_dim} dimensions but the ANN index holds {recall.dim}"
            )
        self.encoder = encoder
        self.recall = recall
        self.prerank = prerank
        self.ranker = ranker
        self.config = config
        self.stage = upto
        self.encoder_sha256 = encoder_sha256
        self.version = version
        self.name = "cascade" if upto == "rank" else f"cascade-{upto}"
        self.last_timings: StageTimings | None = None

    def upto(self, stage: Stage) -> Cascade:
        """The same cascade, stopping after `stage` (shares every model)."""
        return Cascade(self.encoder, self.recall, self.prerank, self.ranker, self.config, stage, self.encoder_sha256,
                       self.version)

    def known_users(self, user_ids: np.ndarray) -> np.ndarray:
        """The users the ranker has features for (none when the cascade stops before the ranker)."""
        user_ids = np.asarray(user_ids, np.int64)
        if self.stage != "rank":
            return np.zeros(user_ids.shape, dtype=bool)
        return self.ranker.users.known(user_ids)

    def embed(self, images: np.ndarray) -> np.ndarray:
        from onevision.vision.encoder import encode_images

        return encode_images(self.encoder, images, self.config.encode_batch_size)[0]

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        b = len(images)
        users = None if user_ids is None else np.asarray(user_ids, np.int64).reshape(-1)
        if users is not None and users.shape != (b,):
            raise ValueError(f"expected {b} user ids for {b} images, got shape {users.shape}")
        with one_blas_thread():
            return self._retrieve(images, users, k)

    def _retrieve(self, images: np.ndarray, users: np.ndarray | None, k: int) -> Ranking:
        b = len(images)
        t0 = time.perf_counter()
        emb = self.embed(images)
        t1 = time.perf_counter()
        recalled = self.recall(emb, max(self.recall.config.n, k))
        t2 = time.perf_counter()
        ranked = recalled
        if self.stage != "recall":
            ranked = self.prerank(recalled)
        t3 = time.perf_counter()
        if self.stage == "rank":
            ranked = self.ranker(ranked, users)
        t4 = time.perf_counter()
        per = 1000.0 / max(b, 1)
        self.last_timings = StageTimings((t1 - t0) * per, (t2 - t1) * per, (t3 - t2) * per, (t4 - t3) * per)
        return Ranking(*_fill(ranked, recalled, k))

    def reward(self, emb: np.ndarray, user_ids: np.ndarray, item_ids: np.ndarray,
               exclude_query_ids: np.ndarray | None = None) -> np.ndarray:
        """The ranker's logit (B, K) for any items (B, K) shown for queries with embeddings `emb` (B, D) of users
        (B,): a reward model of the logged clicks and orders (the generator's stage 3 ranks its own lists by it).
        -inf where an item id is -1. `exclude_query_ids` leaves each query out of its user's features."""
        from onevision.cascade.candidates import top_categories
        from onevision.cascade.logged import pair_base_features
        from onevision.cascade.rank import rank_features

        if self.stage != "rank":
            raise ValueError(f"a reward needs the cascade's ranker; this cascade stops after '{self.stage}'")
        item_ids = np.asarray(item_ids, np.int64)
        if item_ids.ndim != 2 or item_ids.shape[0] != len(emb) or np.shape(user_ids) != (len(emb),):
            raise ValueError(f"expected item_ids (B, K) and user_ids (B,) for {len(emb)} embeddings, got "
                             f"{item_ids.shape} and {np.shape(user_ids)}")
        items = self.ranker.items
        valid = item_ids >= 0
        safe = np.where(valid, item_ids, items.item_ids[0])
        with one_blas_thread():
            recalled = self.recall(emb, self.recall.config.n)
            tops = top_categories(recalled.item_ids, items, self.prerank.config.agree_k)
            base = pair_base_features(emb, items, safe, tops)
            cands = Candidates(safe, np.zeros(safe.shape, np.float32), base[:, :, 0], emb, base=base,
                               prerank=self.prerank.scorer(base))
            feats = rank_features(cands, np.asarray(user_ids, np.int64), items, self.ranker.users,
                                  self.ranker.config.history, exclude_query_ids)
            return np.where(valid, self.ranker.scorer(feats), -np.inf).astype(np.float32)

    def profile(self, images: np.ndarray, user_ids: np.ndarray | None, k: int, repeats: int = 3,
                batch_size: int = 1) -> StageTimings:
        """Median over `repeats` passes of the mean ms per query of each stage, calling `retrieve` on
        batches of `batch_size` (1: what one online request costs)."""
        if repeats < 1 or batch_size < 1:
            raise ValueError(f"repeats and batch_size must be >= 1, got {repeats}, {batch_size}")
        passes = []
        for _ in range(repeats):
            sums = np.zeros(4)
            for s in range(0, len(images), batch_size):
                users = None if user_ids is None else user_ids[s : s + batch_size]
                batch = images[s : s + batch_size]
                self.retrieve(batch, users, k)
                t = self.last_timings
                sums += np.array([t.encode_ms, t.recall_ms, t.prerank_ms, t.rank_ms]) * len(batch)
            passes.append(sums / max(len(images), 1))
        return StageTimings(*np.median(np.stack(passes), axis=0).tolist())

    # ---------------------------------------------------------------- training and artifacts
    @classmethod
    def fit(cls, world: World | str | Path, encoder_dir: str | Path,
            config: CascadeConfig = CascadeConfig(), show_progress: bool = True) -> Cascade:
        """Train every stage on the split's logged impressions (never the oracle)."""
        from onevision.cascade.items import ItemTable
        from onevision.cascade.logged import LoggedQueries
        from onevision.userfeatures import UserFeatureConfig, UserFeatureTable
        from onevision.vision.encoder import ImageEncoder
        from onevision.vision.features import CatalogueFeatures
        from onevision.world import World, load_world

        if not isinstance(world, World):
            world = load_world(world)
        encoder = ImageEncoder.load(encoder_dir)
        items = ItemTable.fit(world, CatalogueFeatures.load(encoder_dir), config.split)
        users = UserFeatureTable.fit(world, config.split, UserFeatureConfig(config.user_smoothing, config.history))
        recall = AnnRecall.fit(items.item_ids, items.emb, config.recall_config)
        logged = LoggedQueries.from_world(world, encoder, config.split, config.encode_batch_size, show_progress)
        recalled = recall(logged.emb)
        prerank = PreRanker.fit(logged, recalled, items, config.prerank_config, config.prerank_scorer,
                                config.prerank_negatives, config.holdout_fraction, config.seed, show_progress)
        ranker = Ranker.fit(logged, recalled, prerank, items, users, config.rank_config, config.rank_scorer,
                            config.rank_negatives, config.order_weight, config.unknown_user_rate,
                            config.holdout_fraction, config.seed, show_progress)
        return cls(encoder, recall, prerank, ranker, config, encoder_sha256=encoder_digest(encoder_dir))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.recall.save(directory / "recall")
        self.prerank.save(directory / "prerank")
        self.ranker.save(directory / "rank")
        meta = {"format_version": FORMAT_VERSION, "config": self.config.to_json(),
                "encoder_sha256": self.encoder_sha256}
        (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path, encoder_dir: str | Path, version: str | None = None) -> Cascade:
        from onevision.vision.encoder import ImageEncoder

        directory = Path(directory)
        meta_path = directory / CONFIG_FILE
        if not meta_path.exists():
            raise FileNotFoundError(f"cascade artifact missing: {meta_path}")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: format_version {meta.get('format_version')}, expected {FORMAT_VERSION}")
        digest = encoder_digest(encoder_dir)
        if meta.get("encoder_sha256") not in (None, digest):
            raise ValueError(
                f"the cascade in {directory} was trained with another encoder "
                f"(sha256 {meta['encoder_sha256'][:12]}…) "
                f"than {encoder_dir} (sha256 {digest[:12]}…)"
            )
        return cls(
            ImageEncoder.load(encoder_dir).channels_last(), AnnRecall.load(directory / "recall"),
            PreRanker.load(directory / "prerank"), Ranker.load(directory / "rank"),
            CascadeConfig.from_json(meta["config"]), encoder_sha256=digest, version=version,
        )
