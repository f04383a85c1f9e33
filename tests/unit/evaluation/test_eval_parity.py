from __future__ import annotations

import json
from pathlib import Path

import pytest

from onevision.evaluation import ParityGate, ParityInputError, load_parity

CASCADE = {"model": "cascade", "n_queries": 100, "recall@10": 0.45, "ndcg@10": 0.30, "ctr_proxy@10": 0.05,
           "cvr_proxy@10": 0.25, "recall@1": 0.2}


def generator(**changes: float | None) -> dict:
    return {**CASCADE, "model": "generator", **changes}


def test_equal_model_passes() -> None:
    report = ParityGate().check(generator(), CASCADE)
    assert report.passed and report.reasons == []


def test_exactly_at_the_threshold_passes() -> None:
    # 0.45 × (1 − 0.02) = 0.441, as metrics.json would store it (6 decimals)
    report = ParityGate(epsilon=0.02).check(generator(**{"recall@10": round(0.45 * 0.98, 6)}), CASCADE)
    assert report.passed


def test_just_below_the_threshold_fails_with_the_shortfall() -> None:
    report = ParityGate(epsilon=0.02).check(generator(**{"recall@10": 0.412}), CASCADE)
    assert not report.passed
    assert report.reasons == ["recall@10: generator 0.412 < cascade 0.450 × (1 − 0.02) = 0.441 (−8.4%)"]


def test_negative_epsilon_fails_an_equal_model() -> None:
    report = ParityGate(epsilon=-0.01).check(generator(), CASCADE)
    assert not report.passed
    assert [r.split(":")[0] for r in report.reasons] == list(ParityGate().metrics)


def test_reasons_name_each_failing_metric_only() -> None:
    report = ParityGate().check(generator(**{"ndcg@10": 0.1, "cvr_proxy@10": 0.2, "recall@1": 0.0}), CASCADE)
    assert [r.split(":")[0] for r in report.reasons] == ["ndcg@10", "cvr_proxy@10"]


def test_undefined_metric_fails() -> None:
    report = ParityGate().check(generator(**{"ctr_proxy@10": None}), CASCADE)
    assert report.reasons == ["ctr_proxy@10: generator value is not a finite number"]


def test_missing_metric_names_metric_and_file(tmp_path: Path) -> None:
    gen = tmp_path / "generator" / "metrics.json"
    gen.parent.mkdir()
    gen.write_text(json.dumps({k: v for k, v in generator().items() if k != "ndcg@10"}))
    cas = tmp_path / "cascade" / "metrics.json"
    cas.parent.mkdir()
    cas.write_text(json.dumps(CASCADE))
    with pytest.raises(ParityInputError, match=r"\['ndcg@10'\] missing from .*generator/metrics.json"):
        ParityGate().check_files(gen, cas.parent)


def test_epsilon_of_one_or_more_is_rejected() -> None:
    with pytest.raises(ValueError, match="epsilon must be a finite number < 1"):
        ParityGate(epsilon=1.0)


def test_save_writes_the_parity_json_contract(tmp_path: Path) -> None:
    ParityGate().check(generator(**{"recall@10": 0.412}), CASCADE).save(tmp_path)
    data = json.loads((tmp_path / "parity.json").read_text())
    assert list(data) == ["passed", "epsilon", "gated_metrics", "metrics", "reasons", "bundles"]
    assert data["passed"] is False and data["epsilon"] == 0.02
    assert data["bundles"] == {"generator": None, "cascade": None}  # metrics without a bundle identity
    assert data["gated_metrics"] == ["recall@10", "ndcg@10", "ctr_proxy@10", "cvr_proxy@10"]
    assert list(data["metrics"]) == ["generator", "cascade"] and data["metrics"]["generator"]["recall@10"] == 0.412
    assert len(data["reasons"]) == 1


def test_save_writes_markdown_and_html_tables(tmp_path: Path) -> None:
    ParityGate().check(generator(**{"recall@10": 0.412}), CASCADE).save(tmp_path)
    md = (tmp_path / "parity.md").read_text()
    assert "| metric | cascade | generator | ratio | threshold | status |" in md
    assert "| recall@10 | 0.450 | 0.412 | 0.916 | 0.441 | FAIL |" in md
    assert "| ndcg@10 | 0.300 | 0.300 | 1.000 | 0.294 | pass |" in md
    page = (tmp_path / "parity.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "FAILED" in page and "<td>recall@10</td>" in page
    assert "http" not in page  # self-contained: nothing to fetch


def test_load_parity_round_trips(tmp_path: Path) -> None:
    report = ParityGate(epsilon=0.05).check(generator(**{"ndcg@10": 0.2}), CASCADE)
    report.save(tmp_path)
    assert load_parity(tmp_path) == report


def test_the_report_names_the_bundles_its_metrics_came_from(tmp_path: Path) -> None:
    gen_id = {"kind": "generator", "version": "g1", "digest": "sha256:" + "a" * 64}
    cas_id = {"kind": "cascade", "version": "c1", "digest": "sha256:" + "b" * 64}
    report = ParityGate().check({**generator(), "bundle": gen_id}, {**CASCADE, "bundle": cas_id})
    assert report.bundles == {"generator": gen_id, "cascade": cas_id}
    report.save(tmp_path)
    assert load_parity(tmp_path).bundles == report.bundles
    assert "g1 (sha256:aaaaaaaaaaaa" in (tmp_path / "parity.md").read_text()
