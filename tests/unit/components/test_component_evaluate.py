from __future__ import annotations

import json
from pathlib import Path

from component_artifacts import QUICK_EVAL, artifact, metrics
from kfp import dsl

from components.evaluate import evaluate_model
from onevision.bundle import bundle_identity


def test_a_bundle_is_evaluated_on_the_test_queries_the_config_allows(tiny_models, world: dsl.Dataset,
                                                                       tmp_path: Path) -> None:
    evaluation, scalars = artifact(dsl.Artifact, tmp_path / "evaluation"), metrics(tmp_path / "metrics")
    evaluate_model.python_func(artifact(dsl.Model, tiny_models.cascade_bundle), world, evaluation, scalars,
                               preset="tiny", config=QUICK_EVAL)
    written = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert written["n_queries"] == QUICK_EVAL["harness"]["max_queries"]
    assert written["bundle"] == bundle_identity(tiny_models.cascade_bundle)
    assert evaluation.metadata["model"] == written["model"]
    assert scalars.metadata["recall@10"] == written["recall@10"] and "ndcg@10" in scalars.metadata
