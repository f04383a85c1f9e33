"""Session fixtures for the integration tests: tiny trained model bundles (generator and cascade), their
TorchServe archives in KServe's layout, and `ServingProbe`, the requests and expected answers that the
TorchServe and kserve.Model protocol tests share."""
from __future__ import annotations

import base64
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onevision.service.limits import ServiceLimits


@dataclass(frozen=True)
class TinyBundles:
    world: Path
    generator: Path  # stage-2 generator (personalised), kind "generator"
    cascade: Path


@dataclass(frozen=True)
class TinyArchives:
    generator: Path  # layout dir: config/config.properties + model-store/generator.mar + parity.json
    cascade: Path  # layout dir with model-store/cascade.mar
    ab_store: Path  # one model store holding both archives side by side


@pytest.fixture(scope="session")
def tiny_bundles(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyBundles:
    """Serving needs trained weights, not good ones: the TINY presets with fewer epochs."""
    from onevision import steps

    cfg = steps.tiny_configs()
    encoder_cfg = dataclasses.replace(cfg.encoder, train=dataclasses.replace(cfg.encoder.train, epochs=1))
    generator_cfg = dataclasses.replace(cfg.generator, stage1_epochs=1, stage2_epochs=1)
    root = tmp_path_factory.mktemp("tiny_models")
    encoder, vrq = root / "encoder", root / "vrq"
    steps.train_encoder_step(tiny_world_dir, encoder, encoder_cfg, show_progress=False)
    steps.train_vrq_step(tiny_world_dir, encoder, vrq, cfg.vrq, show_progress=False)
    steps.train_cascade_step(tiny_world_dir, encoder, root / "cascade", cfg.cascade)
    steps.train_generator_step(tiny_world_dir, encoder, vrq, root / "gen1", 1, None, generator_cfg, show_progress=False)
    steps.train_generator_step(tiny_world_dir, encoder, vrq, root / "gen2", 2, root / "gen1", generator_cfg,
                               show_progress=False)
    generator = steps.make_bundle_step("generator", root / "bundle_generator", encoder_dir=encoder, vrq_dir=vrq,
                                       generator_dir=root / "gen2", version="gen-test-1")
    cascade = steps.make_bundle_step("cascade", root / "bundle_cascade", encoder_dir=encoder,
                                     cascade_dir=root / "cascade", version="cascade-test-1")
    return TinyBundles(tiny_world_dir, Path(generator), Path(cascade))


@pytest.fixture(scope="session")
def tiny_archives(tiny_bundles: TinyBundles, tmp_path_factory: pytest.TempPathFactory) -> TinyArchives:
    from onevision.bundle import bundle_identity
    from serving.archive import build_archive

    root = tmp_path_factory.mktemp("tiny_archives")
    parity = root / "parity_report.json"  # a verdict bound to this generator bundle, as the parity gate writes it
    parity.write_text(json.dumps({"passed": True, "reasons": [], "bundles": {
        "generator": bundle_identity(tiny_bundles.generator), "cascade": bundle_identity(tiny_bundles.cascade)}}))
    gen = build_archive(tiny_bundles.generator, root / "generator", model_name="generator", parity_path=parity)
    cas = build_archive(tiny_bundles.cascade, root / "cascade", model_name="cascade")
    ab_store = root / "ab-store"
    ab_store.mkdir()
    for result in (gen, cas):
        (ab_store / result.mar_path.name).symlink_to(result.mar_path)
    return TinyArchives(root / "generator", root / "cascade", ab_store)


# ------------------------------------------------------------------------------------ protocol probe
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


OVERSIZE_BYTES = ServiceLimits().max_image_bytes + 1  # one byte over the default limit


@dataclass
class ServingProbe:
    """Test photos with their users, the library's own answer for them, and one bad request per kind."""

    bundles: TinyBundles
    photos: list[bytes]  # PNG bytes of test-split query photos
    users: list[int]  # their (known) users
    unknown_user: int
    _retrievers: dict[str, Any] = field(default_factory=dict)

    def library_items(self, kind: str, photos: list[bytes], users: list[int | None], k: int) -> list[list[dict[str, Any]]]:
        """What the library's own retriever ranks for these inputs: [{item_id, score}] per row."""
        from onevision.bundle import load_retriever
        from onevision.world.render import decode_image

        if kind not in self._retrievers:
            self._retrievers[kind] = load_retriever(getattr(self.bundles, kind))
        ids = np.array([-1 if u is None or u == self.unknown_user else u for u in users], dtype=np.int64)
        ranking = self._retrievers[kind].retrieve(np.stack([decode_image(p) for p in photos]), ids, k)
        return [[{"item_id": int(i), "score": float(s)} for i, s in zip(row_ids, row_scores) if i >= 0]
                for row_ids, row_scores in zip(ranking.item_ids, ranking.scores)]

    def assert_matches_library(self, kind: str, predictions: list[dict[str, Any]], photos: list[bytes],
                               users: list[int | None], k: int, check_model: bool = True) -> None:
        """check_model=False where the protocol cannot name the bundle kind (TorchServe's kservev2 envelope sends
        no response parameters); the SIDs still tell the kinds apart."""
        expected = self.library_items(kind, photos, users, k)
        assert len(predictions) == len(expected)
        for prediction, want in zip(predictions, expected):
            got = [item["item_id"] for item in prediction["items"]]
            assert got == [w["item_id"] for w in want]
            assert [item["score"] for item in prediction["items"]] == pytest.approx([w["score"] for w in want], rel=1e-5, abs=1e-5)
            assert prediction["model"] == kind or not check_model
            sids = [item["sid"] for item in prediction["items"]]
            assert all(s is None for s in sids) if kind == "cascade" else all(isinstance(s, list) and s for s in sids)
            if kind == "generator":  # every served SID is a path of the trained stage-2 model's trie to that item
                trie = self._retrievers["generator"].vrq.trie
                assert trie.lookup(np.array(sids, dtype=np.int64)).tolist() == got

    # One instance (KServe v1) per kind of bad request: (instance, expected HTTP status).
    def bad_v1(self, case: str) -> tuple[dict[str, Any], int]:
        photo = b64(self.photos[0])
        return {
            "missing_image": ({"user_id": self.users[0]}, 400),
            "undecodable_image": ({"image_b64": b64(b"these bytes are not a PNG")}, 400),
            "invalid_base64": ({"image_b64": "***"}, 400),
            "user_id_not_int": ({"image_b64": photo, "user_id": "seventeen"}, 400),
            "user_id_overflow": ({"image_b64": photo, "user_id": 2**63}, 400),
            "top_k_not_int": ({"image_b64": photo, "top_k": "10"}, 400),
            "top_k_out_of_range": ({"image_b64": photo, "top_k": 0}, 400),
            "oversize_image": ({"image_b64": b64(os.urandom(OVERSIZE_BYTES))}, 413),
        }[case]

    # The same failures as v2 input tensors.
    def bad_v2(self, case: str) -> tuple[list[dict[str, Any]], int]:
        def image(data: str) -> dict[str, Any]:
            return {"name": "image_b64", "datatype": "BYTES", "shape": [1], "data": [data]}

        photo = b64(self.photos[0])
        return {
            "missing_image": ([{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [self.users[0]]}], 400),
            "undecodable_image": ([image(b64(b"these bytes are not a PNG"))], 400),
            "invalid_base64": ([image("***")], 400),
            "user_id_not_int": ([image(photo), {"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["u17"]}], 400),
            "user_id_overflow": ([image(photo), {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [2**63]}], 400),
            "top_k_not_int": ([image(photo), {"name": "top_k", "datatype": "FP32", "shape": [1], "data": [2.5]}], 400),
            "top_k_out_of_range": ([image(photo), {"name": "top_k", "datatype": "INT64", "shape": [1], "data": [0]}], 400),
            "oversize_image": ([image(b64(os.urandom(OVERSIZE_BYTES)))], 413),
        }[case]


@pytest.fixture(scope="session")
def serving_probe(tiny_bundles: TinyBundles) -> ServingProbe:
    from onevision.world import load_world

    world = load_world(tiny_bundles.world)
    test = world.queries_of("test").sort_values("query_id").head(4)
    unknown = int(world.users["user_id"].max()) + 1000
    return ServingProbe(tiny_bundles, [bytes(b) for b in test["image"]], [int(u) for u in test["user_id"]], unknown)
