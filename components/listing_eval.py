"""Component: recall@K of a bundle on queries for new vs old items."""
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def evaluate_listing(
    bundle: Input[Model],
    world: Input[Dataset],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    preset: str = "default",
    config: dict = {},
    listed_by: int = -1,
):
    """Writes listing_recall.json: recall@k for new and old items, and for new items by days since listing.

    Args:
        bundle: A generator or cascade bundle.
        world: The world with the queries (test split) and every item's first_day.
        evaluation: The directory with listing_recall.json (the refresh gate's input).
        metrics: recall on new and old items, logged for the KFP UI.
        preset: "default" or "tiny".
        config: ListingEvalConfig overrides over the preset.
        listed_by: Items listed after this day are new; -1: the world's last training day.
    """
    from components.runtime import input_dir, log_scalars, output_dir, step_config
    from onevision.steps import listing_eval_step

    values = listing_eval_step(input_dir(bundle, "bundle"), input_dir(world, "world"), output_dir(evaluation),
                               step_config("listing", preset, config), listed_by=None if listed_by < 0 else listed_by)
    evaluation.metadata["kind"] = bundle.metadata.get("kind", "")
    log_scalars(metrics, {"new": values["new"], "old": values["old"], "n_new": values["n_new"],
                          "n_old": values["n_old"]})
