"""Component: offline evaluation of one model bundle on the world's test queries."""

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def evaluate_model(
    bundle: Input[Model],
    world: Input[Dataset],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    preset: str = "default",
    config: dict = {},
):
    """Evaluates a bundle: recall/NDCG/MRR/hit rate @K, conversion proxies and latency (metrics.json).

    Args:
        bundle: A generator or cascade bundle.
        world: The validated world tables (test split and oracle behaviour).
        evaluation: The evaluation directory with metrics.json (the parity gate's input).
        metrics: The same metrics, logged for the KFP UI.
        preset: "default" or "tiny".
        config: EvalStepConfig overrides over the preset: {"harness": EvalConfig fields, "decode": {"beam_width", "pruning"}}.
    """
    from components.runtime import input_dir, log_scalars, output_dir, step_config
    from onevision.steps import evaluate_step

    values = evaluate_step(input_dir(bundle, "bundle"), input_dir(world, "world"), output_dir(evaluation),
                           step_config("eval", preset, config), show_progress=False)
    evaluation.metadata["model"] = values.get("model", bundle.metadata.get("kind", ""))
    log_scalars(metrics, values)
