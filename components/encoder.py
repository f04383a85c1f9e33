"""Component: train the image encoder and compute the catalogue features."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def train_encoder(
    world: Input[Dataset],
    encoder: Output[Model],
    metrics: Output[Metrics],
    preset: str = "default",
    config: dict = {},
):
    """Trains the multi-view image encoder; writes encoder.pt, encoder.json and the catalogue features.

    Args:
        world: The validated world tables.
        encoder: The encoder directory.
        metrics: final_loss and seconds.
        preset: "default" or "tiny".
        config: EncoderStepConfig overrides over the preset: {"model": EncoderConfig fields, "train": EncoderTrainConfig fields}.
    """
    from components.runtime import input_dir, log_scalars, output_dir, step_config
    from onevision.steps import train_encoder_step

    result = train_encoder_step(input_dir(world, "world"), output_dir(encoder),
                                step_config("encoder", preset, config), show_progress=False)
    final = {"final_loss": result.losses[-1]} if result.losses else {}
    encoder.metadata.update(log_scalars(metrics, {**final, "epochs": len(result.losses), "seconds": result.seconds}))
