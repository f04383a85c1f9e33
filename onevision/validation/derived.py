"""Checks Great Expectations has no built-in for, turned into derived "problem" columns.

Each derived column holds, per row, a description of what is wrong (or the offending value) and null
where the row is fine. The gate validates it with `expect_column_values_to_be_null`, so these checks
land in the same GE validation result as the rest, with the offending values as examples.
"""
from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from onevision.world.render import decode_image
from onevision.world.sessions import SECONDS_PER_DAY


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


def _image_mode(data: bytes) -> str | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.mode
    except Exception:  # noqa: BLE001 - decode_image reports undecodable bytes
        return None


def decode_outcomes(images: Iterable[object]) -> list[tuple[int, ...] | str]:
    """Per image: its decoded (H, W, C) shape, or a string saying why it is unreadable or not RGB (the
    contract's colour mode; decoding would silently turn a grayscale or palette image into RGB)."""
    outcomes: list[tuple[int, ...] | str] = []
    for data in images:
        if data is None or data is pd.NA or (isinstance(data, float) and np.isnan(data)):
            outcomes.append("missing image (null)")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            outcomes.append(f"not bytes but {type(data).__name__}")
        else:
            try:
                shape = tuple(decode_image(bytes(data)).shape)
            except ValueError as exc:
                outcomes.append(str(exc))
                continue
            mode = _image_mode(bytes(data))
            outcomes.append(shape if mode in (None, "RGB") else f"colour mode {mode}, expected RGB")
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


def missing_children(parent_keys: pd.Series, child_keys: pd.Series, what: str) -> pd.Series:
    """Per parent row: `what` where no child row refers to it, else None (e.g. an item without views)."""
    orphan = parent_keys.notna() & ~parent_keys.isin(child_keys.dropna().unique())
    return pd.Series(np.where(orphan, what, None), index=parent_keys.index, dtype=object)


def day_ts_problems(queries: pd.DataFrame) -> pd.Series:
    """Rows whose day is not the day of their ts."""
    expected = queries["ts"] // SECONDS_PER_DAY
    bad = queries["day"] != expected
    out = pd.Series(None, index=queries.index, dtype=object)
    out[bad] = [f"day {int(d)} but ts {int(t)} falls on day {int(e)}"
                for d, t, e in zip(queries["day"][bad], queries["ts"][bad], expected[bad])]
    return out


def listed_too_early(queries: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """Queries for an item on a day before the item's first_day (it was not on sale yet)."""
    first_day = queries["target_item_id"].map(items.drop_duplicates("item_id").set_index("item_id")["first_day"])
    bad = first_day.notna() & (queries["day"] < first_day)
    out = pd.Series(None, index=queries.index, dtype=object)
    out[bad] = [f"day {int(d)}, but item {int(i)} is on sale from day {int(f)}"
                for d, i, f in zip(queries["day"][bad], queries["target_item_id"][bad], first_day[bad])]
    return out


def slate_position_problems(impressions: pd.DataFrame, slate_size: int | None) -> pd.Series:
    """Positions outside the slate: beyond slate_size when it is known, else not 0..n-1 within the query."""
    positions = impressions["position"]
    shown = impressions.groupby("query_id")["position"].transform("size")
    limit = shown if slate_size is None else pd.Series(slate_size, index=impressions.index)
    bad = positions >= limit
    out = pd.Series(None, index=impressions.index, dtype=object)
    out[bad] = [f"position {int(p)} in a slate of {int(n)}" for p, n in zip(positions[bad], limit[bad])]
    return out


@dataclass
class Derived:
    frames: dict[str, pd.DataFrame]  # the loaded frames plus their problem columns
    checks: list[DerivedCheck]
    image_shape: tuple[int, ...] | None


def derive(frames: dict[str, pd.DataFrame], splits: tuple[str, ...], image_shape: tuple[int, ...] | None,
           slate_size: int | None = None) -> Derived:
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
    if has("queries", "day") and has("queries", "split") and pd.api.types.is_numeric_dtype(frames["queries"]["day"]):
        add(
            DerivedCheck("queries", "day", "day__split_overlap", "split days do not overlap: " + " < ".join(splits)),
            split_overlap_problems(frames["queries"].assign(ts=frames["queries"]["day"]), splits).str.replace(
                "ts", "day", regex=False),
        )
        if has("queries", "ts") and pd.api.types.is_numeric_dtype(frames["queries"]["ts"]):
            add(DerivedCheck("queries", "day", "day__ts_mismatch", f"day = ts // {SECONDS_PER_DAY}"),
                day_ts_problems(frames["queries"]))
    if has("items", "item_id") and has("item_views", "item_id"):
        add(DerivedCheck("items", "item_id", "item_id__no_views", "every item has at least one view"),
            missing_children(frames["items"]["item_id"], frames["item_views"]["item_id"], "item without views"))
    if has("queries", "query_id") and has("impressions", "query_id"):
        add(DerivedCheck("queries", "query_id", "query_id__no_slate", "every query has its logged slate"),
            missing_children(frames["queries"]["query_id"], frames["impressions"]["query_id"], "query without a slate"))
    if all(has("queries", c) for c in ("day", "target_item_id")) and has("items", "first_day") and \
            pd.api.types.is_numeric_dtype(frames["queries"]["day"]):
        add(DerivedCheck("queries", "target_item_id", "target_item_id__before_first_day",
                         "the photographed item was on sale that day (day >= items.first_day)"),
            listed_too_early(frames["queries"], frames["items"]))
    if has("impressions", "position") and has("impressions", "query_id") and \
            pd.api.types.is_numeric_dtype(frames["impressions"]["position"]):
        size = f"slate size {slate_size}" if slate_size else "the slate's length"
        add(DerivedCheck("impressions", "position", "position__outside_slate", f"position < {size}"),
            slate_position_problems(frames["impressions"], slate_size))
    return Derived(frames, checks, expected)
