"""Component: train the retrieval cascade baseline (ANN recall -> pre-rank -> rank)."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def train_cascade(
    world: Input[Dataset],
    encoder: Input[Model],
    cascade: Output[Model],
    metrics: Output[Metrics],
    preset: str = "default",
    config: dict = {},
):
    """Trains the cascade baseline the generator must match.

    Args:
        world: The validated world tables.
        encoder: The trained encoder with catalogue features.
        cascade: The cascade directory (one sub-directory per stage).
        metrics: Training time (seconds).
        preset: "default" or "tiny".
        config: CascadeConfig fields over the preset.
    """
    from components.runtime import input_dir, log_scalars, output_dir, step_config
    from onevision.steps import train_cascade_step

    settings = step_config("cascade", preset, config)
    result = train_cascade_step(input_dir(world, "world"), input_dir(encoder, "encoder"), output_dir(cascade), settings,
                                show_progress=False)  # no tqdm bars in task logs
    cascade.metadata.update(log_scalars(metrics, {"seconds": result.seconds}))
