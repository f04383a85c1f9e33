"""Component: the data validation gate (Great Expectations suites of the world's Parquet contract)."""
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from components.decorator import onevision_component


@onevision_component
def validate_data(
    world: Input[Dataset],
    report: Output[Artifact],
    summary: Output[Markdown],
    metrics: Output[Metrics],
):
    """Validates every world table; fails the task naming each failed expectation.

    Args:
        world: The world tables.
        report: validation_result.json and the GE data docs (data_docs/index.html).
        summary: Per-table counts and the failed expectations, as Markdown.
        metrics: rows, expectations and failures per table.
    """
    import json
    from pathlib import Path

    from components.reports import validation_markdown, validation_scalars
    from components.runtime import input_dir, log_scalars, output_dir, write_text
    from onevision.steps import validate_step
    from onevision.validation.report import RESULT_FILE

    out = output_dir(report)
    try:
        validate_step(input_dir(world, "world"), out)  # raises DataValidationError naming each failure
    finally:  # the report is written whether or not the data passed
        result_file = Path(out) / RESULT_FILE
        if result_file.exists():
            result = json.loads(result_file.read_text())
            write_text(summary, validation_markdown(result))
            log_scalars(metrics, validation_scalars(result))
