"""`SearchService`: loads a model bundle once and answers search requests with ranked items.

It is the one class behind both adapters (the TorchServe handler and the kserve.Model predictor in
`serving/`) and knows nothing about either framework: requests are validated by
`onevision.service.validation`, bodies read and written by `onevision.service.envelopes`, and the model is
any `onevision.contracts.Retriever` (a `SidRetriever` also reports SIDs; a `PersonalisedRetriever` says
which users it personalises for, everyone else gets the non-personalised path).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onevision.contracts import PersonalisedRetriever, Retriever, SidRetriever
from onevision.service.envelopes import (
    V2Tensor, v1_instances, v1_response, v2_inputs, v2_instances, v2_outputs, v2_response,
)
from onevision.service.limits import ServiceLimits
from onevision.service.protocol import UNKNOWN_USER, ModelInfo, SearchResult
from onevision.service.validation import PixelBudget, SearchRequest, check_batch, parse_instance

if TYPE_CHECKING:
    from onevision.featurestore.live import FeastFeatures

KnownUsers = Callable[[np.ndarray], np.ndarray]  # user ids (B,) -> bool mask (B,)


def read_model_info(bundle_dir: Path) -> ModelInfo:
    """What responses say about the bundle's model: bundle.json's kind and version, the encoder's input size."""
    from onevision.bundle import read_bundle_meta

    meta = read_bundle_meta(bundle_dir)
    encoder_meta = bundle_dir / "encoder" / "encoder.json"
    if not encoder_meta.exists():
        raise FileNotFoundError(f"model bundle {bundle_dir} has no encoder config: {encoder_meta} is missing")
    image_size = int(json.loads(encoder_meta.read_text())["image_size"])
    return ModelInfo(kind=meta.kind, version=meta.version, image_size=image_size, created=meta.created)


def _nobody(ids: np.ndarray) -> np.ndarray:
    return np.zeros(len(ids), dtype=bool)


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class SearchService:
    """Loads a model bundle once; answers validated search requests with ranked items."""

    def __init__(self, bundle_dir: str | Path, limits: ServiceLimits = ServiceLimits(),
                 features: FeastFeatures | None = None):
        """`features`: read user features from that Feast repo instead of the bundle's snapshot."""
        from onevision.bundle import load_retriever

        bundle_dir = Path(bundle_dir)
        info = read_model_info(bundle_dir)
        self._setup(load_retriever(bundle_dir, features=features), info, None, limits)
        self.bundle_dir: Path | None = bundle_dir
        self.features = features

    @classmethod
    def from_retriever(cls, retriever: Retriever, info: ModelInfo, known_users: KnownUsers | None = None,
                       limits: ServiceLimits = ServiceLimits()) -> SearchService:
        """A service around an already loaded retriever (embedding, tests). Who is personalised: the
        retriever's own `known_users` when it is a PersonalisedRetriever, else `known_users(ids) -> bool mask`;
        None: every user is unknown."""
        service = cls.__new__(cls)
        service._setup(retriever, info, known_users, limits)
        service.bundle_dir = None
        service.features = None
        return service

    def feature_counts(self) -> dict[str, int] | None:
        """The online user-feature reads so far (onevision.featurestore.reader.COUNTERS); None with the snapshot."""
        return None if self.features is None else self.features.counters.snapshot()

    def _setup(self, retriever: Retriever, info: ModelInfo, known_users: KnownUsers | None,
               limits: ServiceLimits) -> None:
        self.retriever = retriever
        self.info = info
        self.limits = limits
        if isinstance(retriever, PersonalisedRetriever):
            known_users = retriever.known_users
        self._known_users: KnownUsers = known_users or _nobody
        self._decodes_sids = info.kind == "generator" and isinstance(retriever, SidRetriever)

    # ---------------------------------------------------------------- parsing
    def parse(self, instances: Any) -> list[SearchRequest]:
        rows = check_batch(instances, self.limits)
        budget = PixelBudget(self.limits)
        return [parse_instance(row, self.info.image_size, self.limits, f"instances[{i}]", budget)
                for i, row in enumerate(rows)]

    # ---------------------------------------------------------------- inference
    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        """One retriever call per distinct top_k (a ranking's prefix may depend on k, e.g. in beam search)."""
        if not requests:
            return []
        users = np.array([r.user_id for r in requests], dtype=np.int64)
        known = np.asarray(self._known_users(users), dtype=bool)
        users = np.where(known, users, UNKNOWN_USER)
        results: list[SearchResult | None] = [None] * len(requests)
        for k in sorted({r.top_k for r in requests}):
            rows = [i for i, r in enumerate(requests) if r.top_k == k]
            images = np.stack([requests[i].image for i in rows])
            item_ids, scores, sids = self._rank(images, users[rows], k)
            for j, i in enumerate(rows):
                results[i] = SearchResult(item_ids[j], scores[j], None if sids is None else sids[j], bool(known[i]))
        return results  # type: ignore[return-value]

    def _rank(self, images: np.ndarray, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self._decodes_sids:
            out = self.retriever.decode(images, users, k)  # type: ignore[attr-defined]
            return np.asarray(out.item_ids, np.int64), np.asarray(out.scores, np.float32), np.asarray(out.sids, np.int64)
        ranking = self.retriever.retrieve(images, users, k)
        return ranking.item_ids, ranking.scores, None

    def respond(self, result: SearchResult) -> dict[str, Any]:
        items = []
        for j, (item, score) in enumerate(zip(result.item_ids.tolist(), result.scores.tolist())):
            if item < 0:  # padding of a short list
                continue
            sid = None if result.sids is None else [int(c) for c in result.sids[j]]
            items.append({"item_id": int(item), "sid": sid, "score": _finite_or_none(score)})
        return {"items": items, "personalized": result.personalized, "model": self.info.kind,
                "version": self.info.version}

    # ---------------------------------------------------------------- the protocol's entry points
    def predict(self, instances: Any) -> list[dict[str, Any]]:
        """Instances (already unwrapped from their envelope) -> one response dict each."""
        return [self.respond(r) for r in self.search(self.parse(instances))]

    def predict_v1(self, body: Any) -> dict[str, Any]:
        """A KServe v1 body -> its v1 response."""
        return v1_response(self.predict(v1_instances(body)))

    def _search_v2(self, inputs: Any) -> list[SearchResult]:
        return self.search(self.parse(v2_instances(inputs, self.limits)))

    def predict_tensors(self, inputs: Any) -> list[V2Tensor]:
        """Open Inference Protocol input tensors -> typed output tensors (for a framework that writes the body)."""
        return v2_outputs(self._search_v2(inputs))

    def predict_v2(self, body: Any, model_name: str, request_id: str | None = None) -> dict[str, Any]:
        """An Open Inference Protocol body -> its v2 response."""
        results = self._search_v2(v2_inputs(body))
        return v2_response(results, model_name, self.info, request_id or body.get("id"))
