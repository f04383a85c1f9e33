"""The Parquet contract of a world: table names, columns, Arrow types.

The same schema is the contract for bringing real data (see docs/data.md). The `truth/`
tables are the simulator's oracle (latent preferences); training code never reads them.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def filename(self) -> str:
        return f"{self.name}.parquet"


ITEMS = TableSchema(
    name="items",
    key=("item_id",),
    description="One row per product in the catalogue.",
    columns=(
        Column("item_id", pa.int64(), "Product id, unique."),
        Column("category", pa.int32(), "Category id in [0, n_categories)."),
        Column("brand", pa.int32(), "Brand id in [0, n_brands)."),
        Column("price_band", pa.int32(), "Price band in [0, n_price_bands), 0 = cheapest."),
        Column("price", pa.float64(), "Unit price, > 0."),
        Column("colour", pa.int32(), "Primary colour id (palette index)."),
        Column("shape", pa.int32(), "Shape id; determined by category."),
        Column("pattern", pa.int32(), "Surface pattern id (solid, stripes, dots, ...)."),
        Column("family_id", pa.int64(), "Near-duplicate family: same shape and pattern, other colour/brand."),
        Column("first_day", pa.int32(), "First day the item is on sale (new items appear later)."),
    ),
)

ITEM_VIEWS = TableSchema(
    name="item_views",
    key=("view_id",),
    description="Shop images: several views per product, PNG bytes.",
    columns=(
        Column("view_id", pa.int64(), "Image id, unique."),
        Column("item_id", pa.int64(), "Product shown (foreign key to items)."),
        Column("view", pa.string(), "front | side | back | detail | zoom."),
        Column("image", pa.binary(), "PNG bytes, RGB, image_size x image_size."),
    ),
)

USERS = TableSchema(
    name="users",
    key=("user_id",),
    description="Users with observable profile features.",
    columns=(
        Column("user_id", pa.int64(), "User id, unique."),
        Column("signup_day", pa.int32(), "Day the user joined."),
        Column("age_band", pa.int32(), "Age band in [0, 5)."),
        Column("declared_category", pa.int32(), "Category the user declared as favourite (noisy)."),
        Column("price_sensitivity", pa.float64(), "Observed share of cheap purchases in [0, 1]."),
    ),
)

QUERIES = TableSchema(
    name="queries",
    key=("query_id",),
    description="Query sessions: a user photographs a product.",
    columns=(
        Column("query_id", pa.int64(), "Query id, unique."),
        Column("user_id", pa.int64(), "User who searched (foreign key to users)."),
        Column("day", pa.int32(), "Day index of the session."),
        Column("ts", pa.int64(), "Timestamp in seconds since the world's epoch."),
        Column("split", pa.string(), "train | val | test, by time."),
        Column("target_item_id", pa.int64(), "Product that was photographed (foreign key to items)."),
        Column("image", pa.binary(), "The user's photo, PNG bytes."),
    ),
)

IMPRESSIONS = TableSchema(
    name="impressions",
    key=("query_id", "position"),
    description="The slate the logged (cascade) policy showed, with clicks and orders.",
    columns=(
        Column("query_id", pa.int64(), "Query (foreign key to queries)."),
        Column("position", pa.int32(), "0-based slot in the slate."),
        Column("item_id", pa.int64(), "Item shown (foreign key to items)."),
        Column("clicked", pa.bool_(), "User clicked the item."),
        Column("ordered", pa.bool_(), "User ordered the item (implies clicked)."),
    ),
)

TABLES: tuple[TableSchema, ...] = (ITEMS, ITEM_VIEWS, USERS, QUERIES, IMPRESSIONS)
TABLES_BY_NAME: dict[str, TableSchema] = {t.name: t for t in TABLES}

# Oracle tables, under truth/: used by the click/order model and the session simulator only.
USER_TRUTH = TableSchema(
    name="user_truth",
    key=("user_id",),
    description="Latent user preferences (oracle).",
    columns=(
        Column("user_id", pa.int64(), "User id."),
        Column("brand_pref", pa.list_(pa.float32()), "Affinity per brand, sums to 1."),
        Column("category_pref", pa.list_(pa.float32()), "Affinity per category, sums to 1."),
        Column("price_pref", pa.list_(pa.float32()), "Affinity per price band, sums to 1."),
    ),
)
ITEM_TRUTH = TableSchema(
    name="item_truth",
    key=("item_id",),
    description="Latent item parameters used to render and to simulate (oracle).",
    columns=(
        Column("item_id", pa.int64(), "Item id."),
        Column("secondary_colour", pa.int32(), "Secondary colour id."),
        Column("pattern_freq", pa.float32(), "Pattern frequency."),
        Column("pattern_angle", pa.float32(), "Pattern angle in radians."),
        Column("aspect", pa.float32(), "Width/height ratio of the shape."),
        Column("popularity", pa.float32(), "Base popularity weight."),
    ),
)
TRUTH_TABLES: tuple[TableSchema, ...] = (USER_TRUTH, ITEM_TRUTH)


def schema_markdown() -> str:
    """Render the schema as Markdown (docs/data.md is generated from this)."""
    lines: list[str] = []
    for table in TABLES + TRUTH_TABLES:
        where = "truth/" if table in TRUTH_TABLES else ""
        lines.append(f"## `{where}{table.filename}`\n")
        lines.append(f"{table.description} Key: `{', '.join(table.key)}`.\n")
        lines.append("| column | Arrow type | description |")
        lines.append("|---|---|---|")
        for c in table.columns:
            lines.append(f"| `{c.name}` | `{c.type}` | {c.description} |")
        lines.append("")
    return "\n".join(lines)
