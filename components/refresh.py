"""Component: a new version of a bundle with newly listed items (catalogue refresh, no retrain)."""
from kfp.dsl import Dataset, Input, Model, Output

from components.decorator import onevision_component


@onevision_component
def refresh_catalogue(
    bundle: Input[Model],
    rows: Input[Dataset],
    refreshed: Output[Model],
    world: Input[Dataset] = None,
    preset: str = "default",
    config: dict = {},
    delisted: list = [],
):
    """Adds the new items to a generator or cascade bundle (SIDs + fine-tune, or ANN index + item tables).

    Args:
        bundle: The bundle to refresh.
        rows: items.parquet and item_views.parquet of the new items.
        refreshed: The new bundle version, with refresh_manifest.json.
        world: The world whose item_views are replayed in the generator's fine-tune (optional).
        preset: "default" or "tiny".
        config: RefreshConfig overrides over the preset, e.g. {"finetune": {"epochs": 4}}.
        delisted: Item ids to remove.
    """
    from pathlib import Path

    from components.runtime import input_dir, output_dir, step_config
    from onevision.bundle import read_bundle_meta
    from onevision.steps import refresh_step

    new = Path(input_dir(rows, "rows"))
    replay = None if world is None else Path(input_dir(world, "world")) / "item_views.parquet"
    result = refresh_step(input_dir(bundle, "bundle"), new / "items.parquet", new / "item_views.parquet",
                          output_dir(refreshed), delisted=[int(i) for i in delisted], replay_views_path=replay,
                          config=step_config("refresh", preset, config))
    meta = read_bundle_meta(result["bundle_dir"]).to_json()
    meta.pop("files", None)
    refreshed.metadata.update({**meta, "added": result["added"], "removed": result["removed"],
                               "seconds": result["seconds"]})
