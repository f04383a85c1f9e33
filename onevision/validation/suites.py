"""One Great Expectations suite per world table, built from onevision.world.schema and the limits."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from onevision.validation.derived import DerivedCheck
from onevision.validation.limits import ContractLimits
from onevision.world.schema import TableSchema

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

CLICK_RATE_PARAMETER = "observed_click_rate"


def pandas_type(arrow_type: pa.DataType) -> str:
    """The `type_` for expect_column_values_to_be_of_type of a column read with pyarrow's to_pandas().

    Strings and binaries come back as object columns, which GE checks value by value.
    """
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "str"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "bytes"
    return arrow_type.to_pandas_dtype().__name__  # int64, int32, float64, bool_ -> numpy names


def _columns_of(expectation: Expectation) -> list[str]:
    names = [getattr(expectation, a, None) for a in ("column", "column_A", "column_B")]
    return [n for n in names if n] + list(getattr(expectation, "column_list", None) or [])


def _schema_expectations(table: TableSchema) -> list[Expectation]:
    import great_expectations.expectations as gxe

    out: list[Expectation] = [gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "table is not empty"})]
    for c in table.columns:
        described = f"{c.type}: {c.description}"
        out.append(gxe.ExpectColumnToExist(column=c.name, meta={"check": f"required; {described}"}))
        out.append(gxe.ExpectColumnValuesToBeOfType(column=c.name, type_=pandas_type(c.type)))
        if not c.nullable:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=c.name))
    if len(table.key) == 1:
        out.append(gxe.ExpectColumnValuesToBeUnique(column=table.key[0], meta={"check": "primary key"}))
    else:
        out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(table.key), meta={"check": "primary key"}))
    return out


def _id_range(column: str, n: int | None) -> Expectation:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=None if n is None else n - 1)


def _value_expectations(table: str, limits: ContractLimits) -> list[Expectation]:
    import great_expectations.expectations as gxe

    between = gxe.ExpectColumnValuesToBeBetween
    by_table: dict[str, list[Expectation]] = {
        "items": [
            between(column="price", min_value=0, max_value=limits.max_price, strict_min=True, strict_max=True),
            _id_range("category", limits.n_categories),
            _id_range("brand", limits.n_brands),
            _id_range("price_band", limits.n_price_bands),
            between(column="first_day", min_value=0),
        ],
        "item_views": [gxe.ExpectColumnValuesToBeInSet(column="view", value_set=list(limits.views))],
        "users": [
            _id_range("age_band", limits.n_age_bands),
            _id_range("declared_category", limits.n_categories),
            between(column="price_sensitivity", min_value=0, max_value=1),
            between(column="signup_day", min_value=0),
        ],
        "queries": [
            between(column="day", min_value=0),
            between(column="ts", min_value=0),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(limits.splits)),
            gxe.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(limits.splits),
                                                      meta={"check": "every split has queries"}),
        ],
        "impressions": [
            between(column="position", min_value=0),
            gxe.ExpectColumnMeanToBeBetween(
                column="clicked", min_value=limits.click_rate_min, max_value=limits.click_rate_max,
                strict_min=True, strict_max=True, meta={"check": "click rate is plausible"},
            ),
            # clicked >= ordered on booleans is "ordered implies clicked" (the in-set variant loops in Python)
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="clicked", column_B="ordered", or_equal=True, meta={"check": "ordered implies clicked"},
            ),
        ],
    }
    return by_table.get(table, [])


def _order_rate_expectation() -> Expectation:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnMeanToBeBetween(
        column="ordered", min_value=0, max_value={"$PARAMETER": CLICK_RATE_PARAMETER},
        meta={"check": "order rate <= click rate"},
    )


def _derived_expectation(check: DerivedCheck) -> Expectation:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeNull(
        column=check.derived_column, meta={"column": check.column, "check": check.description, "derived": True},
    )


def table_expectations(
    table: TableSchema,
    present: set[str],
    limits: ContractLimits,
    derived: Sequence[DerivedCheck],
    with_order_rate: bool,
) -> list[Expectation]:
    """Every expectation for one table. Column existence is always checked; expectations on a missing
    column are left out so that the failure names the missing column rather than a GE exception."""
    candidates = _schema_expectations(table) + _value_expectations(table.name, limits)
    if with_order_rate:
        candidates.append(_order_rate_expectation())
    candidates += [_derived_expectation(c) for c in derived if c.table == table.name]
    return [
        e for e in candidates
        if e.expectation_type == "expect_column_to_exist" or all(c in present for c in _columns_of(e))
    ]
