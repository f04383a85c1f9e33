"""Component: train the VRQ quantiser and assign semantic IDs (SIDs) to every item."""
from typing import Optional

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def train_vrq(
    world: Input[Dataset],
    encoder: Input[Model],
    vrq: Output[Model],
    metrics: Output[Metrics],
    preset: str = "default",
    config: Optional[dict] = None,
):
    """Trains the residual quantiser with multi-view alignment; writes codebooks, SIDs, trie, vrq_report.json.

    Args:
        world: The validated world tables.
        encoder: The trained encoder with catalogue features.
        vrq: The VRQ directory.
        metrics: VRQ quality scalars (collisions, code usage, reconstruction) of the step result.
        preset: "default" or "tiny".
        config: VRQStepConfig fields over the preset.
    """
    from components.runtime import input_dir, log_scalars, output_dir, step_config
    from onevision.steps import train_vrq_step

    result = train_vrq_step(input_dir(world, "world"), input_dir(encoder, "encoder"), output_dir(vrq),
                            step_config("vrq", preset, config))
    vrq.metadata.update(log_scalars(metrics, result.to_dict()))
