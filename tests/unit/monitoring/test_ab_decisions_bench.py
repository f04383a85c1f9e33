"""bench/ab_decisions.py runs end to end on a small simulation and its figures have the shape the README reports:
the naive repeated z-test is shown above the sequential test, a real lift is found more often with CUPED, and a
10% vs 9% split bug is detected while a correct split is not."""
from __future__ import annotations

import json


def test_the_simulation_table_runs_and_tells_the_tests_apart(load_bench, tmp_path, capsys) -> None:
    bench = load_bench("ab_decisions")
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
