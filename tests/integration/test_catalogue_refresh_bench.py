"""bench/catalogue_refresh.py end to end on the tiny preset: a world with new items, both bundles trained with the
pipeline's steps, every refresh setting of both arms and its recall on new vs old items; a second run reuses the
refreshed bundles of the same configs."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 3 and cells[0] in ("generator", "cascade"):
            rows[f"{cells[0]} / {cells[1]}"] = cells[2:]
    return rows


def test_the_bench_measures_both_arms_before_and_after_every_refresh(load_bench, tmp_path: Path) -> None:
    bench = load_bench("catalogue_refresh")
    out = tmp_path / "refresh"
    args = argparse.Namespace(preset="tiny", seed=0, new_item_share=0.2, drift_start_day=None)
    world = bench.make_world(out, args)
    bundles = bench.train_bundles(world, out, "tiny")
    table = bench.run_bench(world, bundles, out, "tiny")
    rows = _rows(table)
    assert len(rows) == 11 and (out / "catalogue_refresh.md").read_text() == table
    for arm in ("generator", "cascade"):
        assert float(rows[f"{arm} / before refresh"][1]) == 0.0  # no bundle knew the new items
    strong = rows["generator / + fine-tune, 10 epochs, lr 1e-3, distill 1 (stronger)"]
    assert float(strong[1]) > 0.0 and float(strong[1]) >= float(rows["generator / + fine-tune (default)"][1])
    assert float(rows["cascade / refresh, neighbours' popularity (default)"][1]) >= \
        float(rows["cascade / refresh, no popularity prior"][1])
    refreshed = sorted(p.name for p in (out / "refreshed").iterdir())
    assert len(refreshed) == 9  # one bundle per refresh setting
    stamps = {p: (out / "refreshed" / p / "bundle.json").stat().st_mtime_ns for p in refreshed}
    assert bench.run_bench(world, bundles, out, "tiny") == table  # reused, not refreshed again
    assert {p: (out / "refreshed" / p / "bundle.json").stat().st_mtime_ns for p in refreshed} == stamps
