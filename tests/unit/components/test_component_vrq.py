from __future__ import annotations

from pathlib import Path

from component_artifacts import artifact, metrics
from kfp import dsl

from components.vrq import train_vrq
from onevision.vrq.fit import VRQArtifact


def test_vrq_is_fitted_with_the_config_and_reports_its_code_quality(world: dsl.Dataset, encoder: dsl.Model,
                                                                      tmp_path: Path) -> None:
    vrq, scalars = artifact(dsl.Model, tmp_path / "vrq"), metrics(tmp_path / "metrics")
    report = artifact(dsl.Markdown, tmp_path / "report.md")
    train_vrq.python_func(world, encoder, vrq, scalars, report, preset="tiny", config={"quantizer": {"codebook_sizes": [8, 40, 4]}})
    fitted = VRQArtifact.load(tmp_path / "vrq")
    assert fitted.quantizer.config.codebook_sizes == (8, 40, 4)
    assert (tmp_path / "report.md").read_text().startswith("# VRQ code quality")
    assert {"vrq.collision_rate", "seconds"} <= set(scalars.metadata)
    assert vrq.metadata == {k: v for k, v in scalars.metadata.items() if k.startswith("vrq.")}
