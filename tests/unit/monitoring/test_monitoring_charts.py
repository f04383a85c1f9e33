"""The CTR/CVR chart: a self-contained SVG with one line per arm and panel and the canary split marked."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from monitoring.charts import rate_chart_svg

SVG = "{http://www.w3.org/2000/svg}"


def _requests() -> pd.DataFrame:
    rows = []
    for window in range(4):
        for arm in ("control", "canary"):
            if arm == "canary" and window < 2:
                continue
            for i in range(10):
                rows.append({"request_id": len(rows), "window": window, "arm": arm, "clicked": int(i < 3 + window),
                             "ordered": int(i < 1 + window % 2), "expected_ctr": 0.1})
    return pd.DataFrame(rows)


def test_one_line_per_arm_and_metric() -> None:
    root = ET.fromstring(rate_chart_svg(_requests(), split_window=2, canary_percent=10))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 4
    assert {line.get("stroke") for line in lines} == {"#1f77b4", "#ff7f0e"}


def test_the_canary_split_is_marked_in_both_panels() -> None:
    root = ET.fromstring(rate_chart_svg(_requests(), split_window=2, canary_percent=10))
    splits = [el for el in root.iter(f"{SVG}line") if el.get("class") == "canary-split"]
    assert len(splits) == 2
    assert "canary split starts (window 2, 10% of users)" in "".join(root.itertext())


def test_an_empty_log_is_refused() -> None:
    with pytest.raises(ValueError, match="empty request log"):
        rate_chart_svg(_requests().iloc[:0])
