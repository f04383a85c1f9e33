"""Component: the parity gate — may the generator replace the cascade?"""
from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Output

from components.decorator import onevision_component


@onevision_component
def parity_gate(
    generator_evaluation: Input[Artifact],
    cascade_evaluation: Input[Artifact],
    parity: Output[Artifact],
    report: Output[Markdown],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    epsilon: float = 0.02,
) -> NamedTuple("Outputs", passed=bool):
    """Passes when no gated metric of the generator falls more than epsilon (relative) below the cascade's.

    Args:
        generator_evaluation: The generator's evaluation (metrics.json).
        cascade_evaluation: The cascade's evaluation (metrics.json).
        parity: parity.json, parity.md and parity.html.
        report: The parity table and reasons, as Markdown.
        report_html: The parity table, as HTML.
        metrics: passed (0/1), epsilon and generator/cascade ratio of every gated metric.
        epsilon: Allowed relative shortfall (< 0 demands the generator beat the cascade).

    Returns:
        passed: Whether the generator may be archived and deployed.
    """
    from collections import namedtuple
    from pathlib import Path

    from components.runtime import input_dir, log_scalars, output_dir, write_text
    from onevision.steps import parity_step

    out = output_dir(parity)
    verdict = parity_step(input_dir(generator_evaluation, "generator_evaluation"),
                          input_dir(cascade_evaluation, "cascade_evaluation"), out, epsilon)
    write_text(report, (Path(out) / "parity.md").read_text())
    write_text(report_html, (Path(out) / "parity.html").read_text())
    ratios = {f"ratio.{c.metric}": c.ratio for c in verdict.checks() if c.gated and c.ratio is not None}
    log_scalars(metrics, {"passed": verdict.passed, "epsilon": verdict.epsilon, **ratios})
    parity.metadata.update({"passed": verdict.passed, "reasons": list(verdict.reasons)})
    print(verdict.summary())
    return namedtuple("Outputs", ["passed"])(verdict.passed)
