"""Arms of an A/B replay: something that answers a batch of query photos with top-K slates.

`RetrieverArm` wraps any in-process Retriever (docs/contracts.md), `InProcessArm(bundle_dir)` loads a
model bundle with `onevision.bundle.load_retriever`, `HttpArm(url, protocol)` calls a served model with
the v1 or v2 (Open Inference Protocol) JSON envelope.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from monitoring.http import opener_for
from monitoring.protocol import ProtocolError, decode_response, encode_request
from onevision.contracts import SidRetriever

if TYPE_CHECKING:
    from monitoring.events.emit import PayloadLogger

Embedder = Callable[[np.ndarray], np.ndarray]  # uint8 (B, H, W, 3) -> float (B, D)


class ArmError(RuntimeError):
    """An arm could not answer (unreachable server, bad response, wrong slate shape)."""


@dataclass(frozen=True)
class QueryBatch:
    images: np.ndarray  # uint8 (B, H, W, 3), decoded
    png: list[bytes]  # the same photos as sent over the wire
    user_ids: np.ndarray  # int64 (B,), -1 = unknown user
    query_ids: np.ndarray | None = None  # int64 (B,): the request ids a payload logger logs them under
    ts: np.ndarray | None = None  # (B,) simulated seconds since day 0: the logged events' time

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class Slates:
    item_ids: np.ndarray  # int64 (B, k), -1 pads a short list
    sid_prefix: np.ndarray  # int64 (B,): first SID token of the top item, -1 when the arm has no SIDs
    latency_ms: np.ndarray  # float (B,): call time divided by the batch size


class Arm(Protocol):
    name: str
    embedder: Embedder | None  # the arm's image encoder, for input-drift statistics (None: not available)

    def serve(self, batch: QueryBatch, k: int) -> Slates: ...


class RetrieverArm:
    """Any object with `retrieve(images, user_ids, k) -> Ranking`. SID prefixes come from `sid_prefix_of`
    (item id -> first SID token) when given, else from `decode()` when it is a SidRetriever (the generator),
    else are -1."""

    def __init__(self, retriever: object, name: str | None = None, sid_prefix_of: Mapping[int, int] | None = None,
                 embedder: Embedder | None = None, personalized: bool = True):
        if not callable(getattr(retriever, "retrieve", None)):
            raise TypeError(f"RetrieverArm needs an object with retrieve(images, user_ids, k); got {type(retriever).__name__}")
        self.retriever = retriever
        self.name = name or str(getattr(retriever, "name", type(retriever).__name__))
        self.sid_prefix_of = dict(sid_prefix_of) if sid_prefix_of is not None else None
        self.embedder = embedder
        self.personalized = personalized

    def serve(self, batch: QueryBatch, k: int) -> Slates:
        users = batch.user_ids if self.personalized else None
        start = time.perf_counter()
        if isinstance(self.retriever, SidRetriever) and self.sid_prefix_of is None:
            result = self.retriever.decode(batch.images, users, k)  # its own SIDs, as the server reports them
            items, sids = np.asarray(result.item_ids, dtype=np.int64), np.asarray(result.sids, dtype=np.int64)
        else:
            items, sids = np.asarray(self.retriever.retrieve(batch.images, users, k).item_ids, dtype=np.int64), None
        elapsed = (time.perf_counter() - start) * 1000.0
        if items.shape != (len(batch), k):
            raise ArmError(f"arm '{self.name}' returned item_ids of shape {items.shape}; expected {(len(batch), k)}")
        if sids is not None and sids.ndim == 3 and sids.shape[:2] == items.shape:
            prefix = np.where(items[:, 0] >= 0, sids[:, 0, 0], -1)
        else:
            prefix = self._prefixes(items[:, 0])
        return Slates(items, prefix, np.full(len(batch), elapsed / max(len(batch), 1)))

    def _prefixes(self, top: np.ndarray) -> np.ndarray:
        if self.sid_prefix_of is None:
            return np.full(len(top), -1, dtype=np.int64)
        return np.array([self.sid_prefix_of.get(int(i), -1) for i in top], dtype=np.int64)


def _bundle_sid_prefixes(bundle_dir: Path) -> dict[int, int] | None:
    path = bundle_dir / "vrq" / "sids.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["item_id", "sid"]).to_pydict()
    return {int(i): int(s[0]) for i, s in zip(table["item_id"], table["sid"]) if s}


def _bundle_embedder(bundle_dir: Path) -> Embedder | None:
    if not (bundle_dir / "encoder" / "encoder.json").is_file():
        return None
    from onevision.vision.encoder import ImageEncoder, encode_images

    encoder = ImageEncoder.load(bundle_dir / "encoder")
    return lambda images: encode_images(encoder, images)[0]


class InProcessArm(RetrieverArm):
    """A model bundle loaded in this process (bundle.json + encoder/ + vrq/generator or cascade)."""

    def __init__(self, bundle_dir: str | Path, name: str | None = None, personalized: bool = True):
        from onevision.bundle import load_retriever, read_bundle_meta

        bundle_dir = Path(bundle_dir)
        meta = read_bundle_meta(bundle_dir)
        label = name or f"{meta.kind}@{meta.version}"
        retriever = load_retriever(bundle_dir)
        # The generator reports its SIDs through decode(); other kinds fall back to the bundle's SID table.
        sids = None if isinstance(retriever, SidRetriever) else _bundle_sid_prefixes(bundle_dir)
        super().__init__(retriever, label, sids, _bundle_embedder(bundle_dir), personalized)
        self.bundle_dir = bundle_dir


class HttpArm:
    """A served model behind the inference protocol of docs/contracts.md (one POST per batch)."""

    embedder = None

    def __init__(self, url: str, protocol: Literal["v1", "v2"] = "v1", name: str | None = None,
                 timeout_s: float = 30.0, personalized: bool = True, headers: Mapping[str, str] | None = None,
                 v2_nested: bool = False, payload_logger: PayloadLogger | None = None):
        if protocol not in ("v1", "v2"):
            raise ValueError(f"HttpArm protocol must be 'v1' or 'v2', got {protocol!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"HttpArm url must start with http:// or https://, got {url!r}")
        self.url = url
        self.protocol = protocol
        self.name = name or url
        self.timeout_s = timeout_s
        self.personalized = personalized
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.v2_nested = v2_nested  # v2 tensors of shape [1, B] (TorchServe's kservev2 envelope)
        # With a payload logger (monitoring.events.emit, KServe's logger for a local server) every query is its own
        # request, logged under its query id at its simulated time, as a cluster's logger logs live traffic.
        self.payload_logger = payload_logger
        self._opener = opener_for(url)

    def serve(self, batch: QueryBatch, k: int) -> Slates:
        if self.payload_logger is None:
            return self._serve(batch, k)
        if batch.query_ids is None or batch.ts is None:
            raise ArmError(f"arm '{self.name}' logs its payloads, so each query needs its query id and time")
        parts = [self._serve(QueryBatch(batch.images[i:i + 1], batch.png[i:i + 1], batch.user_ids[i:i + 1],
                                        batch.query_ids[i:i + 1], batch.ts[i:i + 1]), k) for i in range(len(batch))]
        return Slates(np.concatenate([p.item_ids for p in parts]), np.concatenate([p.sid_prefix for p in parts]),
                      np.concatenate([p.latency_ms for p in parts]))

    def _serve(self, batch: QueryBatch, k: int) -> Slates:
        import urllib.error
        import urllib.request

        users = batch.user_ids if self.personalized else None
        body = json.dumps(encode_request(self.protocol, batch.png, users, k, self.v2_nested)).encode()
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        start = time.perf_counter()
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise ArmError(f"arm '{self.name}': POST {self.url} answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ArmError(f"arm '{self.name}': POST {self.url} failed: {exc}") from exc
        elapsed = (time.perf_counter() - start) * 1000.0
        try:
            rows = decode_response(self.protocol, json.loads(payload))
        except (ProtocolError, ValueError) as exc:
            raise ArmError(f"arm '{self.name}': bad {self.protocol} response from {self.url}: {exc}") from exc
        if len(rows) != len(batch):
            raise ArmError(f"arm '{self.name}': {self.url} answered {len(rows)} predictions for {len(batch)} instances")
        if self.payload_logger is not None:
            from datetime import timedelta

            from monitoring.events.emit import EventPostError, sim_time

            requested = sim_time(batch.ts[0])
            try:
                self.payload_logger.log(str(int(batch.query_ids[0])), body, payload, requested,
                                        requested + timedelta(milliseconds=elapsed))
            except EventPostError as exc:
                raise ArmError(f"arm '{self.name}': its payload log was refused: {exc}") from exc
        items = np.full((len(batch), k), -1, dtype=np.int64)
        prefix = np.full(len(batch), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            ids = row.item_ids[:k]
            items[i, : len(ids)] = ids
            prefix[i] = row.sid_prefix
        return Slates(items, prefix, np.full(len(batch), elapsed / max(len(batch), 1)))


def arm_from_spec(spec: str, world_dir: str | Path, seed: int = 0) -> Arm:
    """Build an arm from a CLI spec: `random[:SEED]`, `popularity`, `http(s)://...` (v2 when the path holds
    `/v2/`, else v1; force with a `v1+`/`v2+` prefix), or a bundle directory / artifact URI."""
    from onevision.evaluation import PopularityRetriever, RandomRetriever
    from onevision.world import load_world

    if spec == "random" or spec.startswith("random:"):
        arm_seed = int(spec.split(":", 1)[1]) if ":" in spec else seed
        items = load_world(world_dir).items["item_id"].to_numpy(np.int64)
        return RetrieverArm(RandomRetriever(items, seed=arm_seed), name=spec)
    if spec == "popularity":
        return RetrieverArm(PopularityRetriever.fit(load_world(world_dir)), name="popularity")
    # v2 batches go as tensors of shape [1, B]: TorchServe's kservev2 envelope needs it, the kserve.Model
    # server reads either form
    for prefix in ("v1+", "v2+"):
        if spec.startswith(prefix):
            return HttpArm(spec[len(prefix):], protocol=prefix[:2], v2_nested=prefix == "v2+")  # type: ignore[arg-type]
    if spec.startswith(("http://", "https://")):
        protocol = "v2" if "/v2/" in spec else "v1"
        return HttpArm(spec, protocol=protocol, v2_nested=protocol == "v2")
    if spec.startswith("s3://"):
        from onevision.storage import open_store

        return InProcessArm(open_store(spec).local_path(""), name=spec)
    return InProcessArm(spec)
