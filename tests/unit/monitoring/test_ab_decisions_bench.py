"""bench/ab_decisions.py runs end to end on a small simulation and its figures have the shape the README reports:
the naive repeated z-test is shown above the sequential test, a real lift is found more often with CUPED, and a
10% vs 9% split bug is detected while a correct split is not."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "ab_decisions.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("ab_decisions", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_simulation_table_runs_and_tells_the_tests_apart(tmp_path, capsys) -> None:
    bench = load_bench()
    out = tmp_path / "ab.json"
    assert bench.main(["--aa-runs", "40", "--power-runs", "12", "--srm-runs", "30", "--users", "20000",
                       "--lift", "0.05", "--workers", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| naive z-test at every look |" in printed and "| sequential (mSPRT), every look |" in printed
    figures = json.loads(out.read_text())
    aa = figures["aa"]["plain"]
    assert aa["sequential"] <= aa["naive"] and aa["sequential"] <= 0.1
    power = {(row["canary"], row["cuped"]): row for row in figures["power"]}
    assert power[(0.5, True)]["power"] >= power[(0.5, False)]["power"] and power[(0.5, True)]["variance_reduction"] > 0.3
    srm = figures["srm"]
    assert srm["bug: 9%"]["sequential"] > srm["correct 10%"]["sequential"] + 0.25 and srm["correct 10%"]["sequential"] < 0.1
