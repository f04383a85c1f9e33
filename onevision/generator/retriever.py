"""The generator as a Retriever: photo (+ user) → top-K items by trie-constrained, pruned beam search."""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from onevision.contracts import Ranking
from onevision.generator.data import ImageBank, UserContext, encode_bank, make_input
from onevision.generator.decode import DecodeResult, beam_search, compile_kernels, warm_up
from onevision.generator.options import SERVING_DECODE, DecodeOptions, PruningConfig
from onevision.generator.model import SidGenerator
from onevision.featurestore.source import UserFeatureSource
from onevision.threads import one_blas_thread
from onevision.userfeatures import UserFeatureTable
from onevision.vision.encoder import ImageEncoder, to_pixels
from onevision.vrq.fit import VRQArtifact


class UserContextCache:
    """Per-user decoder inputs (profile, history SIDs, attribute affinities), computed once per user and kept
    while the source allows (`users.max_age_s`: forever for the bundle's frozen table, seconds for an online
    store), since building a user's inputs costs more than decoding one level. Least recently used users leave
    first."""

    def __init__(self, users: UserFeatureSource, vrq: VRQArtifact, history_len: int, with_affinity: bool,
                 with_category: bool = False, max_users: int = 100_000):
        self.users, self.vrq, self.history_len, self.with_affinity = users, vrq, history_len, with_affinity
        self.with_category = with_category
        self.max_users = max_users
        self._rows: OrderedDict[int, tuple[float, UserContext]] = OrderedDict()  # user -> (expires, inputs)

    def __call__(self, user_ids: np.ndarray) -> UserContext:
        max_age = self.users.max_age_s
        now = time.monotonic()
        missing = [int(u) for u in dict.fromkeys(user_ids.tolist())
                   if int(u) not in self._rows or self._rows[int(u)][0] <= now]
        fresh: dict[int, UserContext] = {}
        if missing:
            built = UserContext.build(self.users, self.vrq, np.asarray(missing, np.int64), self.history_len,
                                      with_affinity=self.with_affinity, with_category=self.with_category)
            expires = np.inf if max_age is None else now + max_age
            for i, u in enumerate(missing):
                fresh[u] = UserContext(built.features[i], built.user_ids[i], built.history_sids[i],
                                       None if built.attribute_affinity is None else built.attribute_affinity[i],
                                       None if built.category_affinity is None else built.category_affinity[i])
                if max_age is None or max_age > 0:
                    self._rows[u] = (expires, fresh[u])
        rows = []
        for u in user_ids.tolist():
            if int(u) in self._rows:
                self._rows.move_to_end(int(u))
            rows.append(fresh[int(u)] if int(u) in fresh else self._rows[int(u)][1])
        while len(self._rows) > self.max_users:
            self._rows.popitem(last=False)
        stack = lambda name: torch.stack([getattr(r, name) for r in rows])  # noqa: E731
        return UserContext(stack("features"), stack("user_ids"), stack("history_sids"),
                           stack("attribute_affinity") if self.with_affinity else None,
                           stack("category_affinity") if self.with_category else None)


@dataclass
class GeneratorRetriever:
    """A SidRetriever and PersonalisedRetriever (onevision.contracts)."""

    encoder: ImageEncoder
    generator: SidGenerator
    vrq: VRQArtifact
    users: UserFeatureSource | None = None
    beam_width: int = 20
    pruning: PruningConfig = field(default_factory=PruningConfig)
    engine: str = "auto"  # the decoder engine (options.DECODER_ENGINES)
    name: str = "generator"
    version: str | None = None  # the bundle version it was loaded from

    def __post_init__(self) -> None:
        cfg = self.generator.config
        self._contexts = None if self.users is None else UserContextCache(
            self.users, self.vrq, cfg.history_len, cfg.affinity_features > 0, cfg.category_features > 0)

    def with_users(self, users: UserFeatureSource) -> GeneratorRetriever:
        """The same model reading its user features from `users` (e.g. an online store instead of the snapshot)."""
        return dataclasses.replace(self, users=users)

    def user_context(self, user_ids: np.ndarray) -> UserContext:
        """Decoder inputs of known users (cached per user)."""
        return self._contexts(np.asarray(user_ids, np.int64))

    @property
    def personalised(self) -> bool:
        return self.users is not None and self.generator.config.user_feature_dim > 0

    def known_users(self, user_ids: np.ndarray) -> np.ndarray:
        """The users decoded with their features: known to the user table, and only if the model uses them."""
        user_ids = np.asarray(user_ids, dtype=np.int64)
        if not self.personalised:
            return np.zeros(user_ids.shape, dtype=bool)
        return self.users.known(user_ids)

    def decode(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> DecodeResult:
        with torch.inference_mode(), one_blas_thread():
            return self._decode(images, user_ids, k)

    def _decode(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> DecodeResult:
        bank = encode_bank(self.encoder, to_pixels(images))
        if not self.personalised or user_ids is None:
            return self._search(bank, np.arange(len(images)), None, k)
        user_ids = np.asarray(user_ids, dtype=np.int64)
        known = self.known_users(user_ids)
        parts = []
        if (~known).any():
            parts.append((np.flatnonzero(~known), self._search(bank, np.flatnonzero(~known), None, k)))
        if known.any():
            rows = np.flatnonzero(known)
            ctx = self.user_context(user_ids[rows])
            parts.append((rows, self._search(bank, rows, ctx, k)))
        return _merge(parts, len(images), k, self.vrq.trie.depth)

    def _search(self, bank: ImageBank, rows: np.ndarray, user: UserContext | None, k: int) -> DecodeResult:
        width = max(self.beam_width, k)
        return beam_search(self.generator, make_input(bank, rows, user), self.vrq.trie, width, k, self.pruning,
                           self.engine)

    def retrieve(self, images: np.ndarray, user_ids: np.ndarray | None, k: int) -> Ranking:
        result = self.decode(images, user_ids, k)
        return Ranking(result.item_ids, np.nan_to_num(result.scores, neginf=-1e9).astype(np.float32))

    @classmethod
    def load(cls, encoder_dir: Path, vrq_dir: Path, generator_dir: Path, userfeatures_dir: Path | None = None,
             decode: DecodeOptions = DecodeOptions(), version: str | None = None) -> "GeneratorRetriever":
        users = UserFeatureTable.load(userfeatures_dir) if userfeatures_dir and Path(userfeatures_dir).exists() else None
        retriever = cls(ImageEncoder.load(encoder_dir).channels_last(), SidGenerator.load(generator_dir),
                        VRQArtifact.load(vrq_dir), users, decode.beam_width, decode.pruning, decode.engine,
                        version=version)
        if decode.engine != "torch":  # at load, not in the first request
            compile_kernels()
            warm_up(retriever.generator, retriever.vrq.trie, decode.engine)
        return retriever


def _merge(parts: list[tuple[np.ndarray, DecodeResult]], n: int, k: int, depth: int) -> DecodeResult:
    items = np.full((n, k), -1, dtype=np.int64)
    sids = np.full((n, k, depth), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    rows_total, tokens_total = 0, 0
    for rows, res in parts:
        items[rows], sids[rows], scores[rows] = res.item_ids, res.sids, res.scores
        rows_total += res.decoder_rows
        tokens_total += res.encoder_tokens
    return DecodeResult(items, sids, scores, rows_total, tokens_total)
