"""Component: the items a world lists after the training catalogue, and their views (a refresh's input)."""
from kfp.dsl import Dataset, Input, Output

from components.decorator import onevision_component


@onevision_component
def new_catalogue_rows(world: Input[Dataset], rows: Output[Dataset], listed_by: int = -1):
    """Writes items.parquet and item_views.parquet (the world's schema) of the items first listed after `listed_by`.

    Args:
        world: The validated world.
        rows: The new items and their shop views.
        listed_by: The training catalogue's last listing day; -1: the world's last training day.
    """
    from components.runtime import input_dir, output_dir
    from onevision.catalogue.tables import listed_between
    from onevision.world import load_world

    w = load_world(input_dir(world, "world"))
    after = w.for_training().listed_by if listed_by < 0 else listed_by
    if after is None:
        raise ValueError("the world has no world.json: pass listed_by, the training catalogue's last day")
    new = listed_between(w, after)
    if new.items.empty:
        raise ValueError(f"the world lists no item after day {after}: nothing to refresh")
    new.save(output_dir(rows))
    rows.metadata.update({"items": len(new.items), "views": len(new.views), "listed_after": after})
