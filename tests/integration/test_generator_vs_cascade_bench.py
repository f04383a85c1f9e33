"""bench/generator_vs_cascade.py end to end on the tiny bundles: every setting's row, the engine comparison on
the same lists, and the plot."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_bench_times_every_setting_and_compares_the_decoder_engines(load_bench, tiny_models, tmp_path: Path,
                                                                        monkeypatch, capsys) -> None:
    bench = load_bench("generator_vs_cascade")
    plot = tmp_path / "pruning.svg"
    monkeypatch.setattr(sys, "argv", [
        "generator_vs_cascade.py", "--world", str(tiny_models.world), "--generator-bundle",
        str(tiny_models.generator_bundle), "--cascade-bundle", str(tiny_models.cascade_bundle), "--queries", "24",
        "--latency-queries", "4", "--repeats", "1", "--threads", "1", "--plot", str(plot)])
    bench.main()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| generator: ") or line.startswith("| cascade ")]
    assert len(rows) == 1 + len(bench.SETTINGS)
    engines = [line for line in out.splitlines() if "compiled decoder vs torch decoder" in line]
    fused = [line for line in out.splitlines() if "fused search vs NumPy loop" in line]
    assert len(engines) == 2 and len(fused) == 2
    for line in engines + fused:  # the engines and search paths rank alike on every timed query
        assert " 4/4 identical top-10 lists" in line
    assert any(line.startswith("served default, decode alone") and "at batch 32" in line for line in out.splitlines())
    assert plot.read_text().lstrip().startswith("<?xml")
