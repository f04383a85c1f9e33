"""The new rows of a refresh: read, checked, and refused with the file and the column named."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from onevision.catalogue.tables import CatalogueTableError, listed_between, read_new_rows
from onevision.world import load_world


@pytest.fixture(scope="module")
def rows_dir(new_items_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = load_world(new_items_world_dir)
    return listed_between(world, world.for_training().listed_by).save(tmp_path_factory.mktemp("rows"))


def _edit(src: Path, dst: Path, edit) -> Path:
    pq.write_table(edit(pq.read_table(src)), dst)
    return dst


def test_saved_rows_read_back_sorted_by_item(rows_dir: Path) -> None:
    rows = read_new_rows(rows_dir / "items.parquet", rows_dir / "item_views.parquet")
    assert rows.item_ids.tolist() == sorted(rows.item_ids.tolist())
    assert set(rows.views["item_id"]) == set(rows.item_ids)


def test_repeated_item_ids_are_refused(rows_dir: Path, tmp_path: Path) -> None:
    items = _edit(rows_dir / "items.parquet", tmp_path / "items.parquet", lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    with pytest.raises(CatalogueTableError, match="column 'item_id' must be unique"):
        read_new_rows(items, rows_dir / "item_views.parquet")


def test_views_of_unknown_items_are_refused(rows_dir: Path, tmp_path: Path) -> None:
    items = _edit(rows_dir / "items.parquet", tmp_path / "items.parquet", lambda t: t.slice(1))
    with pytest.raises(CatalogueTableError, match="names items not in"):
        read_new_rows(items, rows_dir / "item_views.parquet")


def test_items_without_views_are_refused(rows_dir: Path, tmp_path: Path) -> None:
    first = pq.read_table(rows_dir / "items.parquet").column("item_id")[0].as_py()
    views = _edit(rows_dir / "item_views.parquet", tmp_path / "views.parquet",
                  lambda t: t.filter(pa.compute.not_equal(t.column("item_id"), first)))
    with pytest.raises(CatalogueTableError, match=rf"items \[{first}\] have no row in item_views"):
        read_new_rows(rows_dir / "items.parquet", views)


def test_negative_codes_are_refused(rows_dir: Path, tmp_path: Path) -> None:
    def negative(t: pa.Table) -> pa.Table:
        brand = pa.array([-1] + t.column("brand").to_pylist()[1:], t.schema.field("brand").type)
        return t.set_column(t.schema.get_field_index("brand"), "brand", brand)

    with pytest.raises(CatalogueTableError, match="column 'brand' must be >= 0"):
        read_new_rows(_edit(rows_dir / "items.parquet", tmp_path / "items.parquet", negative),
                      rows_dir / "item_views.parquet")
