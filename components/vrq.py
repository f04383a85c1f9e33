"""Component: train the VRQ quantiser and assign semantic IDs (SIDs) to every item."""

from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def train_vrq(
    world: Input[Dataset],
    encoder: Input[Model],
    vrq: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
    preset: str = "default",
    config: dict = {},
):
    """Trains the vision-aligned residual quantiser; writes codebooks, SIDs, trie and vrq_report.json.

    Args:
        world: The validated world tables.
        encoder: The trained encoder with catalogue features.
        vrq: The VRQ directory.
        metrics: Code quality per method (vrq, and baselines when compared): view/photo consistency per level,
            collision rate, utilisation, perplexity, reconstruction MSE.
        report: The code quality table, as Markdown.
        preset: "default" or "tiny".
        config: VRQStepConfig overrides over the preset: {"quantizer": VRQConfig fields, "compare_baselines": bool}.
    """
    from pathlib import Path

    from components.runtime import input_dir, log_scalars, output_dir, step_config, write_text
    from onevision.steps import train_vrq_step

    out = output_dir(vrq)
    result = train_vrq_step(input_dir(world, "world"), input_dir(encoder, "encoder"), out,
                            step_config("vrq", preset, config), show_progress=False)
    scalars = log_scalars(metrics, {k: v for k, v in result.report.items() if k != "table"})
    log_scalars(metrics, {"seconds": result.seconds})
    vrq.metadata.update({k: v for k, v in scalars.items() if k.startswith("vrq.")})
    markdown = Path(out) / "vrq_report.md"
    write_text(report, markdown.read_text() if markdown.exists() else str(result.report.get("table", "")))
