"""CTR and CVR per arm over time windows as a self-contained SVG (matplotlib is not a dependency).

Rates are request-level (share of requests with a click / an order) with 95% Wald bands; a dashed line
marks the window the canary split starts, shaded bands the reference and current windows of a report.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import pandas as pd

COLOURS = {"control": "#1f77b4", "canary": "#ff7f0e"}
PANEL_W, PANEL_H, MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 560, 220, 60, 120, 34, 40


def rates_by_window(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per (window, arm): requests, ctr, cvr, expected_ctr."""
    grouped = requests.groupby(["window", "arm"], sort=True)
    out = grouped.agg(requests=("request_id", "size"), ctr=("clicked", "mean"), cvr=("ordered", "mean"),
                      expected_ctr=("expected_ctr", "mean")).reset_index()
    return out


def _panel(rates: pd.DataFrame, metric: str, label: str, top: float, windows: list[int], split_window: int | None,
           reference: Sequence[int], current: Sequence[int]) -> list[str]:
    x0, w, h = MARGIN_L, PANEL_W, PANEL_H
    lo_w, hi_w = min(windows), max(windows)
    slot = w / (hi_w - lo_w + 1)  # each window owns one slot; its point sits in the middle

    def left(win: float) -> float:
        return x0 + (win - lo_w) * slot

    def x(win: float) -> float:
        return left(win) + slot / 2

    bands = []
    for _, r in rates.iterrows():
        p, n = float(r[metric]), int(r["requests"])
        half = 1.96 * math.sqrt(max(p * (1 - p), 0.0) / n) if n else 0.0
        bands.append((r["arm"], int(r["window"]), p, max(p - half, 0.0), min(p + half, 1.0)))
    y_max = max([b[4] for b in bands] + [0.05]) * 1.1

    def y(v: float) -> float:
        return top + h - v / y_max * h

    parts = [f'<text x="{x0}" y="{top - 10}" font-size="14" font-weight="bold">{escape(label)}</text>',
             f'<rect x="{x0}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for wins, fill, name in ((reference, "#e8f0fe", "reference"), (current, "#fdecea", "current")):
        for win in wins:
            if lo_w <= win <= hi_w:
                parts.append(f'<rect x="{left(win):.1f}" y="{top}" width="{slot:.1f}" height="{h}" fill="{fill}">'
                             f'<title>{name} window {win}</title></rect>')
    for i in range(5):
        v = y_max * i / 4
        parts.append(f'<line x1="{x0 - 4}" x2="{x0 + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{x0 - 8}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.0%}</text>')
    for win in windows:
        parts.append(f'<text x="{x(win):.1f}" y="{top + h + 16}" font-size="10" text-anchor="middle">{win}</text>')
    for arm in ("control", "canary"):
        pts = sorted((b for b in bands if b[0] == arm), key=lambda b: b[1])
        if not pts:
            continue
        colour = COLOURS[arm]
        upper = " ".join(f"{x(b[1]):.1f},{y(b[4]):.1f}" for b in pts)
        lower = " ".join(f"{x(b[1]):.1f},{y(b[3]):.1f}" for b in reversed(pts))
        parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.15"/>')
        line = " ".join(f"{x(b[1]):.1f},{y(b[2]):.1f}" for b in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for b in pts:
            parts.append(f'<circle cx="{x(b[1]):.1f}" cy="{y(b[2]):.1f}" r="3" fill="{colour}">'
                         f'<title>{arm} window {b[1]}: {b[2]:.3f} [{b[3]:.3f}, {b[4]:.3f}]</title></circle>')
    if split_window is not None and lo_w <= split_window <= hi_w:
        xs = left(split_window)
        parts.append(f'<line class="canary-split" x1="{xs:.1f}" x2="{xs:.1f}" y1="{top}" y2="{top + h}" '
                     f'stroke="#d62728" stroke-dasharray="5,4" stroke-width="1.5"/>')
    for i, arm in enumerate(("control", "canary")):
        ly = top + 16 + i * 18
        parts.append(f'<line x1="{x0 + w + 12}" x2="{x0 + w + 32}" y1="{ly}" y2="{ly}" stroke="{COLOURS[arm]}" stroke-width="3"/>'
                     f'<text x="{x0 + w + 38}" y="{ly + 4}" font-size="11">{arm}</text>')
    return parts


def rate_chart_svg(requests: pd.DataFrame, *, split_window: int | None = None, canary_percent: float | None = None,
                   reference_windows: Sequence[int] = (), current_windows: Sequence[int] = (),
                   title: str = "A/B replay: CTR and CVR per window") -> str:
    if requests.empty:
        raise ValueError("cannot chart an empty request log")
    rates = rates_by_window(requests)
    windows = sorted(int(w) for w in rates["window"].unique())
    height = MARGIN_T + 2 * (PANEL_H + MARGIN_B + 20) + 30
    width = MARGIN_L + PANEL_W + MARGIN_R
    split_note = ""
    if split_window is not None:
        split_note = f" — dashed line: canary split starts (window {split_window}"
        split_note += f", {canary_percent:g}% of users)" if canary_percent is not None else ")"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="Helvetica, Arial, sans-serif">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{MARGIN_L}" y="20" font-size="15" font-weight="bold">{escape(title)}</text>']
    top = MARGIN_T + 30
    for metric, label in (("ctr", "CTR (requests with a click)"), ("cvr", "CVR (requests with an order)")):
        parts += _panel(rates, metric, label, top, windows, split_window, reference_windows, current_windows)
        top += PANEL_H + MARGIN_B + 20
    parts.append(f'<text x="{MARGIN_L}" y="{height - 10}" font-size="10" fill="#555">window{escape(split_note)}; '
                 'bands: 95% CI</text>')
    parts.append("</svg>")
    return "\n".join(parts)
