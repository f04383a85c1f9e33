"""Component: what a failed parity gate reports instead of archiving and deploying."""
from kfp.dsl import Artifact, Input, Markdown, Output

from components.decorator import onevision_component


@onevision_component
def gate_failure_report(parity: Input[Artifact], reasons: Output[Markdown]):
    """Surfaces the parity gate's reasons (why the generator was neither archived nor deployed) as Markdown.

    Args:
        parity: The parity gate's report directory (parity.json).
        reasons: The verdict, its reasons and the parity table.
    """
    from components.reports import gate_failure_markdown
    from components.runtime import input_dir, write_text
    from onevision.evaluation import load_parity

    verdict = load_parity(input_dir(parity, "parity"))
    text = gate_failure_markdown(verdict)
    write_text(reasons, text)
    print(text)
