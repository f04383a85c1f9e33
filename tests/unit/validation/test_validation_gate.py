"""The validation gate on the tiny world: clean passes, each corruption fails naming its reason."""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from onevision.validation import DataValidationError, ValidationReport, validate_world
from onevision.world.render import encode_png
from onevision.world.schema import TABLES, TABLES_BY_NAME

Change = Callable[[pd.DataFrame], pd.DataFrame]
SchemaChange = Callable[[pa.Schema], pa.Schema]


def copy_world(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("truth", "validation"))
    return dst


def corrupt(world: Path, table: str, change: Change, schema_change: SchemaChange = lambda s: s) -> Path:
    """Rewrite one table with the contract's Arrow schema, except for the corruption."""
    path = world / TABLES_BY_NAME[table].filename
    frame = change(pq.read_table(path).to_pandas())
    schema = schema_change(TABLES_BY_NAME[table].arrow)
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False).replace_schema_metadata(None), path)
    return world


def set_value(column: str, row: int, value: object) -> Change:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[row, column] = value
        return frame

    return change


def with_field(name: str, type_: pa.DataType | None = None, nullable: bool = False) -> SchemaChange:
    def change(schema: pa.Schema) -> pa.Schema:
        i = schema.get_field_index(name)
        return schema.set(i, pa.field(name, type_ or schema.field(name).type, nullable=nullable))

    return change


def failure_of(world: Path, tmp_path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        validate_world(world, report_dir=tmp_path / "report", data_docs=False)
    return caught.value


@pytest.fixture
def world(tiny_world_dir: Path, tmp_path: Path) -> Path:
    return copy_world(tiny_world_dir, tmp_path / "world")


@pytest.fixture(scope="module")
def clean_report(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ValidationReport:
    return validate_world(tiny_world_dir, report_dir=tmp_path_factory.mktemp("clean_report"))


@pytest.fixture(scope="module")
def price_failure(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DataValidationError:
    tmp = tmp_path_factory.mktemp("price")
    world = corrupt(copy_world(tiny_world_dir, tmp / "world"), "items", set_value("price", 3, -5.0))
    return failure_of(world, tmp)


def test_clean_world_passes_every_expectation(clean_report: ValidationReport) -> None:
    assert clean_report.success
    assert set(clean_report.tables) == {t.name for t in TABLES}
    assert all(c.expectations > 5 and c.failed == 0 for c in clean_report.tables.values())


def test_clean_world_writes_json_result_and_data_docs(clean_report: ValidationReport) -> None:
    document = json.loads(clean_report.report_path.read_text())
    assert document["success"] is True and document["failures"] == []
    assert set(document["results"]) == {t.name for t in TABLES}
    assert clean_report.data_docs_path is not None and clean_report.data_docs_path.is_file()


def test_summary_lists_counts_per_table(clean_report: ValidationReport) -> None:
    lines = clean_report.summary().splitlines()
    assert lines[0].split() == ["table", "rows", "expectations", "passed", "failed"]
    items = next(line for line in lines if line.startswith("items "))
    counts = clean_report.tables["items"]
    assert items.split() == ["items", str(counts.rows), str(counts.expectations), str(counts.passed), "0"]


def test_out_of_range_price_fails_with_column_expectation_and_example(price_failure: DataValidationError) -> None:
    assert price_failure.report is not None and price_failure.report.failures == [
        "items.price: expect_column_values_to_be_between (min_value=0.0, max_value=100000.0, strict_min=True, "
        "strict_max=True) failed — 1 bad row, e.g. -5.0 at item_id=3"
    ]


def test_failing_world_still_writes_the_full_result(price_failure: DataValidationError) -> None:
    report = price_failure.report
    assert report is not None and str(report.report_path) in str(price_failure)
    document = json.loads(report.report_path.read_text())
    assert document["success"] is False and document["tables"]["items"]["failed"] == 1


def test_null_key_fails_not_null(world: Path, tmp_path: Path) -> None:
    corrupt(world, "items", lambda f: f.assign(item_id=f["item_id"].astype("Int64").mask(f.index == 0)),
            with_field("item_id", nullable=True))
    assert "items.item_id: expect_column_values_to_not_be_null failed — 1 bad row" in str(failure_of(world, tmp_path))


def test_duplicate_id_fails_uniqueness(world: Path, tmp_path: Path) -> None:
    corrupt(world, "users", set_value("user_id", 1, 0))
    assert "users.user_id: expect_column_values_to_be_unique (primary key) failed — 2 bad rows, e.g. 0" in str(
        failure_of(world, tmp_path)
    )


def test_duplicate_composite_key_fails_compound_uniqueness(world: Path, tmp_path: Path) -> None:
    corrupt(world, "impressions", set_value("position", 1, 0))
    assert "impressions.(query_id, position): expect_compound_columns_to_be_unique" in str(failure_of(world, tmp_path))


def test_dangling_foreign_key_fails_with_the_missing_id(world: Path, tmp_path: Path) -> None:
    corrupt(world, "impressions", set_value("item_id", 0, 999_999))
    message = str(failure_of(world, tmp_path))
    assert "impressions.item_id: expect_column_values_to_be_null (every impressions.item_id exists in items.item_id" in message
    assert "1 bad row, e.g. 999999 at query_id=0, position=0" in message


def test_undecodable_image_fails_naming_the_row(world: Path, tmp_path: Path) -> None:
    corrupt(world, "item_views", set_value("image", 2, b"not an image"))
    message = str(failure_of(world, tmp_path))
    assert "item_views.image: expect_column_values_to_be_null (decodable PNG/JPEG" in message
    assert "could not be decoded" in message and "at view_id=2" in message


def test_image_of_wrong_size_fails_against_world_image_size(world: Path, tmp_path: Path) -> None:
    corrupt(world, "queries", set_value("image", 0, encode_png(np.zeros((32, 32, 3), np.float32))))
    assert "e.g. 'decoded shape (32, 32, 3), expected (64, 64, 3)'" in str(failure_of(world, tmp_path))


def test_missing_column_is_named(world: Path, tmp_path: Path) -> None:
    corrupt(world, "items", lambda f: f.drop(columns=["brand"]), lambda s: s.remove(s.get_field_index("brand")))
    assert failure_of(world, tmp_path).report.failures == [
        "items.brand: expect_column_to_exist (required; int32: Brand id in [0, n_brands).) failed — column is missing"
    ]


def test_wrong_dtype_fails_type_expectation(world: Path, tmp_path: Path) -> None:
    corrupt(world, "items", lambda f: f.assign(price=f["price"].astype(str)), with_field("price", pa.string()))
    assert "items.price: expect_column_values_to_be_of_type (type_=float64) failed" in str(failure_of(world, tmp_path))


def test_empty_table_fails_row_count(world: Path, tmp_path: Path) -> None:
    corrupt(world, "items", lambda f: f.iloc[:0])
    assert "items: expect_table_row_count_to_be_between (table is not empty; min_value=1) failed — observed 0" in str(
        failure_of(world, tmp_path)
    )


def test_overlapping_splits_fail(world: Path, tmp_path: Path) -> None:
    def late_train_row(f: pd.DataFrame) -> pd.DataFrame:
        first_train = f.index[f["split"] == "train"][0]
        return f.assign(ts=np.where(f.index == first_train, f["ts"].max(), f["ts"]))

    corrupt(world, "queries", late_train_row)
    message = str(failure_of(world, tmp_path))
    assert "queries.ts: expect_column_values_to_be_null (splits do not overlap in time: train < val < test" in message
    assert "train row with ts" in message


def test_order_without_click_fails(world: Path, tmp_path: Path) -> None:
    def order_unclicked(f: pd.DataFrame) -> pd.DataFrame:
        return f.assign(ordered=f["ordered"] | (f.index == np.flatnonzero(~f["clicked"].to_numpy())[0]))

    corrupt(world, "impressions", order_unclicked)
    assert "impressions.(clicked, ordered): expect_column_pair_values_a_to_be_greater_than_b (ordered implies clicked" in str(
        failure_of(world, tmp_path)
    )


def test_missing_table_file_is_named(world: Path, tmp_path: Path) -> None:
    (world / "impressions.parquet").unlink()
    assert f"impressions: expect_table_file_to_exist failed — table file {world / 'impressions.parquet'} is missing" in str(
        failure_of(world, tmp_path)
    )


def test_every_failed_expectation_is_listed(world: Path, tmp_path: Path) -> None:
    corrupt(world, "items", set_value("price", 0, 250_000.0))
    corrupt(world, "item_views", set_value("view", 0, "top"))
    failures = failure_of(world, tmp_path).report.failures
    assert [f.split(":")[0] for f in failures] == ["items.price", "item_views.view"]


def test_missing_world_directory_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="world directory not found"):
        validate_world(tmp_path / "nowhere")


def test_unreadable_table_file_is_named(world: Path, tmp_path: Path) -> None:
    (world / "users.parquet").write_bytes(b"not parquet")
    assert "users: expect_table_file_to_be_readable_parquet failed" in str(failure_of(world, tmp_path))


def _move_train_slate_onto_a_test_query(world: Path) -> None:
    queries = pq.read_table(world / TABLES_BY_NAME["queries"].filename).to_pandas()
    train_q = int(queries.loc[queries["split"] == "train", "query_id"].iloc[0])
    test_q = int(queries.loc[queries["split"] == "test", "query_id"].iloc[0])

    def move(f: pd.DataFrame) -> pd.DataFrame:
        f = f[f["query_id"] != test_q].copy()
        f.loc[f["query_id"] == train_q, "query_id"] = test_q
        return f

    corrupt(world, "impressions", move)


def _grayscale_view(f: pd.DataFrame) -> pd.DataFrame:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8), mode="L").save(buffer, "PNG")
    return set_value("image", 1, buffer.getvalue())(f)


def _train_query_on_a_test_day(f: pd.DataFrame) -> pd.DataFrame:
    row = f.index[f["split"] == "train"][0]
    return set_value("day", row, int(f.loc[f["split"] == "test", "day"].max()))(f)


def _query_before_first_day(world: Path) -> None:
    queries = pq.read_table(world / TABLES_BY_NAME["queries"].filename).to_pandas()
    target, day = int(queries["target_item_id"].iloc[0]), int(queries["day"].iloc[0])
    corrupt(world, "items", lambda f: f.assign(first_day=np.where(f["item_id"] == target, day + 1, f["first_day"])))


SEVEN_CORRUPTIONS = {  # each used to pass the gate with exit 0
    "train slate moved onto a test query": (_move_train_slate_onto_a_test_query,
                                            "queries.query_id: expect_column_values_to_be_null (every query has its logged slate"),
    "grayscale item view": (lambda w: corrupt(w, "item_views", _grayscale_view), "colour mode L, expected RGB"),
    "train query on a test day": (lambda w: corrupt(w, "queries", _train_query_on_a_test_day),
                                  "queries.day: expect_column_values_to_be_null (split days do not overlap"),
    "item with no views": (lambda w: corrupt(w, "item_views", lambda f: f[f["item_id"] != f["item_id"].iloc[0]]),
                           "items.item_id: expect_column_values_to_be_null (every item has at least one view"),
    "empty val split": (lambda w: corrupt(w, "queries", lambda f: f.assign(split=f["split"].replace("val", "test"))),
                        "queries.split: expect_column_distinct_values_to_contain_set (every split has queries"),
    "query before the item's first day": (_query_before_first_day, "is on sale from day"),
    "slate position 57 of 10": (lambda w: corrupt(w, "impressions", set_value("position", 3, 57)),
                                "position 57 in a slate of 10"),
}


@pytest.mark.parametrize("case", list(SEVEN_CORRUPTIONS))
def test_each_corruption_the_gate_used_to_pass_is_a_named_failure(world: Path, tmp_path: Path, case: str) -> None:
    apply, fragment = SEVEN_CORRUPTIONS[case]
    apply(world)
    assert fragment in str(failure_of(world, tmp_path))
