"""The new rows of a catalogue refresh: `items` and `item_views` tables in the world's schema, read and checked
against each other and against the bundle they are added to. Errors name the file, the column and the rows."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from onevision.world import schema
from onevision.world.io import World, write_table


class CatalogueTableError(ValueError):
    """A table of new items or views does not fit the world's schema or the bundle."""


ITEM_COLUMNS = ("item_id", "category", "brand", "price_band")  # what the refresh reads of `items`
VIEW_COLUMNS = ("item_id", "image")  # and of `item_views`


@dataclass(frozen=True)
class NewRows:
    items: pd.DataFrame  # sorted by item_id
    views: pd.DataFrame  # the views of those items, in their order

    @property
    def item_ids(self) -> np.ndarray:
        return self.items["item_id"].to_numpy(np.int64)

    def save(self, directory: Path) -> Path:
        """Both tables under `directory` in the world's file names (the refresh pipeline's artifact)."""
        directory = Path(directory)
        write_table(schema.ITEMS, {c.name: self.items[c.name].to_numpy() for c in schema.ITEMS.columns},
                    directory / schema.ITEMS.filename)
        write_table(schema.ITEM_VIEWS, {c.name: self.views[c.name].tolist() if c.name == "image"
                                        else self.views[c.name].to_numpy() for c in schema.ITEM_VIEWS.columns},
                    directory / schema.ITEM_VIEWS.filename)
        return directory


def _read(path: Path, what: str, columns: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise CatalogueTableError(f"{what} table not found: {path}")
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise CatalogueTableError(f"{what} table {path} is not readable Parquet ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CatalogueTableError(f"{what} table {path} lacks column(s) {missing}; expected the world's "
                                  f"{what} schema ({', '.join(columns)} at least)")
    for c in columns:
        if c != "image" and (frame[c].isna().any() or not pd.api.types.is_integer_dtype(frame[c])):
            raise CatalogueTableError(f"{what} table {path}: column '{c}' must hold integers without nulls, "
                                      f"got dtype {frame[c].dtype}")
        if c != "image" and (frame[c] < 0).any():
            bad = frame.loc[frame[c] < 0, c].head(5).tolist()
            raise CatalogueTableError(f"{what} table {path}: column '{c}' must be >= 0, got {bad}")
    return frame


def read_new_rows(items_path: Path, views_path: Path) -> NewRows:
    """The new items and their views, checked: unique item ids, every item with at least one view, every view
    of a listed new item, every image bytes."""
    items = _read(items_path, "items", ITEM_COLUMNS)
    views = _read(views_path, "item_views", VIEW_COLUMNS)
    if items.empty:
        raise CatalogueTableError(f"items table {items_path} has no rows: nothing to add")
    dup = items["item_id"][items["item_id"].duplicated()].unique()[:5].tolist()
    if dup:
        raise CatalogueTableError(f"items table {items_path}: column 'item_id' must be unique, repeated: {dup}")
    orphan = views.loc[~views["item_id"].isin(items["item_id"]), "item_id"].unique()[:5].tolist()
    if orphan:
        raise CatalogueTableError(f"item_views table {views_path}: column 'item_id' names items not in "
                                  f"{items_path}: {orphan}")
    bare = items.loc[~items["item_id"].isin(views["item_id"]), "item_id"].head(5).tolist()
    if bare:
        raise CatalogueTableError(f"items {bare} have no row in item_views table {views_path}: every new item "
                                  "needs at least one shop view")
    if not views["image"].map(lambda b: isinstance(b, (bytes, bytearray)) and len(b) > 0).all():
        raise CatalogueTableError(f"item_views table {views_path}: column 'image' must hold encoded image bytes")
    return _normalised(items, views)


def _normalised(items: pd.DataFrame, views: pd.DataFrame) -> NewRows:
    items = items.sort_values("item_id", kind="stable").reset_index(drop=True)
    order = np.argsort(np.searchsorted(items["item_id"].to_numpy(), views["item_id"].to_numpy()), kind="stable")
    return NewRows(items, views.iloc[order].reset_index(drop=True))


def check_against(rows: NewRows, known_ids: np.ndarray, delisted: np.ndarray, what: str) -> None:
    """New ids must be new to the bundle; delisted ids must be in it and not among the new ones."""
    known = np.asarray(known_ids, np.int64)
    again = np.intersect1d(rows.item_ids, known)[:5].tolist()
    if again:
        raise CatalogueTableError(f"items already in the {what}: {again} (a refresh adds new items only; "
                                  "delist and re-add to replace one)")
    unknown = np.setdiff1d(delisted, known)[:5].tolist()
    if unknown:
        raise CatalogueTableError(f"delisted items not in the {what}: {unknown}")
    both = np.intersect1d(delisted, rows.item_ids)[:5].tolist()
    if both:
        raise CatalogueTableError(f"items both added and delisted: {both}")


def listed_between(world: World, after_day: int, by_day: int | None = None) -> NewRows:
    """The world's items first listed in (after_day, by_day] (by_day None: any later day) and their views: what a
    refresh after training adds (`after_day`: the training catalogue's listing day)."""
    items = world.all_items
    first = items["first_day"].to_numpy()
    keep = (first > after_day) & (True if by_day is None else first <= by_day)
    new = items[keep]
    views = world.table("item_views")
    return _normalised(new, views[views["item_id"].isin(new["item_id"])])
