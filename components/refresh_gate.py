"""Component: the refresh gate — are new items found almost as well as old ones, and old ones as before?"""
from typing import NamedTuple

from kfp.dsl import Artifact, Input, Markdown, Output

from components.decorator import onevision_component


@onevision_component
def refresh_gate(
    before: Input[Artifact],
    after: Input[Artifact],
    gate: Output[Artifact],
    report: Output[Markdown],
    new_within: float = 0.10,
    old_tolerance: float = 0.01,
    parity_passed: bool = True,
) -> NamedTuple("Outputs", passed=bool):
    """Passes when new items' recall is within `new_within` (relative) of old items' after the refresh, and old
    items' recall moved by at most `old_tolerance` (absolute).

    Args:
        before: The listing evaluation of the bundle before the refresh.
        after: The listing evaluation of the refreshed bundle.
        gate: refresh_gate.json (verdict, reasons, both evaluations).
        report: The verdict, as Markdown.
        new_within: Allowed relative shortfall of new items' recall against old items'.
        old_tolerance: Allowed absolute change of old items' recall.
        parity_passed: The refreshed bundle's parity verdict; the gate passes only with it (one condition
            for the canary).

    Returns:
        passed: Whether the refreshed bundle may go on to the canary (both gates passed).
    """
    from collections import namedtuple

    from components.runtime import input_dir, output_dir, write_text
    from onevision.steps import refresh_gate_step

    verdict = refresh_gate_step(input_dir(before, "before"), input_dir(after, "after"), output_dir(gate),
                                new_within, old_tolerance)
    passed = bool(verdict["passed"] and parity_passed)
    reasons = verdict["reasons"] + ([] if parity_passed else ["the refreshed bundle failed the parity gate"])
    write_text(report, verdict["markdown"])
    gate.metadata.update({"passed": passed, "refresh_passed": verdict["passed"], "reasons": reasons})
    print(verdict["markdown"])
    return namedtuple("Outputs", ["passed"])(passed)
