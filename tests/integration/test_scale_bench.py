"""bench/scale.py end to end on a tiny catalogue: a real world generation and a real local pipeline run per size,
timed, with every training step's peak memory read from its metrics, storage, the ANN's recall cost and the
projection table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

TINY_WORLD = "--users 24 --days 6 --queries-per-day 40 --train-days 3 --val-days 1 --brands 8"


def test_the_scale_table_measures_every_step_of_a_real_run(load_bench, tmp_path: Path, capsys) -> None:
    bench = load_bench("scale")
    out = tmp_path / "scale"
    assert bench.main(["--sizes", "64", "--out", str(out), "--preset", "tiny", "--world-flags", TINY_WORLD,
                       "--project", "1000000"]) == 0
    printed = capsys.readouterr().out
    (result,) = json.loads((out / "scale.json").read_text())
    assert result["items"] == 64 and result["world_generate"]["exit_code"] == 0
    assert result["world_generate"]["peak_rss_mb"] > 50  # the child's own rusage, not this process's
    trained = ["train-encoder", "train-vrq", "train-cascade", "train-generator", "train-generator-2",
               "train-generator-3", "evaluate-model", "evaluate-model-2"]
    for name in trained:
        step = result["steps"][name]
        assert step["status"] == "succeeded" and step["seconds"] > 0 and step["peak_rss_mb"] > 50, (name, step)
    assert result["storage_mb"]["item_views"] > 0 and result["storage_mb"]["generator_bundle"] > 0
    ann = result["quality"]["ann"]
    assert ann["index"] == "flat" and ann["cascade_recall@10"] == ann["cascade_recall@10_exact_index"]
    assert "| encoder + catalogue features |" in printed and "| at 1,000,000 items | projection | from |" in printed
    assert (out / "scale.md").read_text().strip() in printed
