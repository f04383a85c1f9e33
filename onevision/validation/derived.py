"""Checks Great Expectations has no built-in for, turned into derived "problem" columns.

Each derived column holds, per row, a description of what is wrong (or the offending value) and null
where the row is fine. The gate validates it with `expect_column_values_to_be_null`, so these checks
land in the same GE validation result as the rest, with the offending values as examples.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from onevision.world.render import decode_image


@dataclass(frozen=True)
class ForeignKey:
    table: str
    column: str
    parent: str
    parent_column: str


FOREIGN_KEYS: tuple[ForeignKey, ...] = (
    ForeignKey("item_views", "item_id", "items", "item_id"),
    ForeignKey("queries", "user_id", "users", "user_id"),
    ForeignKey("queries", "target_item_id", "items", "item_id"),
    ForeignKey("impressions", "query_id", "queries", "query_id"),
    ForeignKey("impressions", "item_id", "items", "item_id"),
)
IMAGE_COLUMNS: tuple[tuple[str, str], ...] = (("item_views", "image"), ("queries", "image"))


@dataclass(frozen=True)
class DerivedCheck:
    table: str
    column: str  # the column the check is about
    derived_column: str  # problem column added to the table's frame; null = the row is fine
    description: str


def foreign_key_problems(child: pd.Series, parent_keys: pd.Series) -> pd.Series:
    """The child value where it has no parent row, else None."""
    dangling = child.notna() & ~child.isin(parent_keys.dropna().unique())
    return pd.Series(np.where(dangling, child.astype(object), None), index=child.index, dtype=object)


def decode_outcomes(images: Iterable[object]) -> list[tuple[int, ...] | str]:
    """Per image: its decoded (H, W, C) shape, or a string saying why it is unreadable."""
    outcomes: list[tuple[int, ...] | str] = []
    for data in images:
        if data is None or data is pd.NA or (isinstance(data, float) and np.isnan(data)):
            outcomes.append("missing image (null)")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            outcomes.append(f"not bytes but {type(data).__name__}")
        else:
            try:
                outcomes.append(tuple(decode_image(bytes(data)).shape))
            except ValueError as exc:
                outcomes.append(str(exc))
    return outcomes


def most_common_shape(outcomes: Iterable[tuple[int, ...] | str]) -> tuple[int, ...] | None:
    shapes = Counter(o for o in outcomes if isinstance(o, tuple))
    return shapes.most_common(1)[0][0] if shapes else None


def image_problems(outcomes: list[tuple[int, ...] | str], expected: tuple[int, ...] | None, index: pd.Index) -> pd.Series:
    def problem(outcome: tuple[int, ...] | str) -> str | None:
        if isinstance(outcome, str):
            return outcome
        if expected is not None and outcome != tuple(expected):
            return f"decoded shape {outcome}, expected {tuple(expected)}"
        return None

    return pd.Series([problem(o) for o in outcomes], index=index, dtype=object)


def split_overlap_problems(queries: pd.DataFrame, splits: tuple[str, ...]) -> pd.Series:
    """Rows whose ts is not before the first ts of every later split (train < val < test in time)."""
    ts, split = queries["ts"], queries["split"]
    first_ts = {s: ts[split == s].min() for s in splits if (split == s).any()}
    problems = pd.Series(None, index=queries.index, dtype=object)
    for i, s in enumerate(splits):
        later = [(first_ts[t], t) for t in splits[i + 1 :] if t in first_ts]
        if s not in first_ts or not later:
            continue
        bound, later_split = min(later)
        bad = (split == s) & (ts >= bound)
        problems[bad] = [f"{s} row with ts {int(v)} is not before the first {later_split} ts {int(bound)}" for v in ts[bad]]
    return problems


@dataclass
class Derived:
    frames: dict[str, pd.DataFrame]  # the loaded frames plus their problem columns
    checks: list[DerivedCheck]
    image_shape: tuple[int, ...] | None


def derive(frames: dict[str, pd.DataFrame], splits: tuple[str, ...], image_shape: tuple[int, ...] | None) -> Derived:
    """Add every derived check whose inputs exist. Missing tables or columns are reported elsewhere."""
    frames = dict(frames)
    checks: list[DerivedCheck] = []

    def add(check: DerivedCheck, values: pd.Series) -> None:
        frames[check.table] = frames[check.table].assign(**{check.derived_column: values})
        checks.append(check)

    def has(table: str, column: str) -> bool:
        return table in frames and column in frames[table].columns

    for fk in FOREIGN_KEYS:
        if has(fk.table, fk.column) and has(fk.parent, fk.parent_column):
            add(
                DerivedCheck(fk.table, fk.column, f"{fk.column}__not_in_{fk.parent}",
                             f"every {fk.table}.{fk.column} exists in {fk.parent}.{fk.parent_column}"),
                foreign_key_problems(frames[fk.table][fk.column], frames[fk.parent][fk.parent_column]),
            )

    outcomes = {(t, c): decode_outcomes(frames[t][c]) for t, c in IMAGE_COLUMNS if has(t, c)}
    expected = image_shape or most_common_shape(o for per_table in outcomes.values() for o in per_table)
    for (table, column), per_table in outcomes.items():
        add(
            DerivedCheck(table, column, f"{column}__problem",
                         f"decodable PNG/JPEG of shape {expected if expected else '(any)'}"),
            image_problems(per_table, expected, frames[table].index),
        )

    if has("queries", "ts") and has("queries", "split") and pd.api.types.is_numeric_dtype(frames["queries"]["ts"]):
        add(
            DerivedCheck("queries", "ts", "ts__split_overlap", "splits do not overlap in time: " + " < ".join(splits)),
            split_overlap_problems(frames["queries"], splits),
        )
    return Derived(frames, checks, expected)
