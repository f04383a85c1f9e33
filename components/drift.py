"""Component: Evidently drift report of served traffic against the training reference."""
from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Metrics, Output

from components.decorator import onevision_component


@onevision_component
def drift_report(
    reference_uri: str,
    current_uri: str,
    report: Output[Artifact],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    report_uri: str = "",
    s3_endpoint: str = "",
) -> NamedTuple("Outputs", drift_detected=bool):
    """Compares the current window of request logs with the reference and applies the monitoring rules.

    Args:
        reference_uri: The reference data (local path or s3:// URI).
        current_uri: The current request logs (local path or s3:// URI).
        report: The report directory (HTML report and JSON summary).
        report_html: The Evidently report, rendered in the KFP UI.
        metrics: Drift scores and alert counts.
        report_uri: Where to also publish the report (empty: only the KFP artifact).
        s3_endpoint: S3-compatible endpoint (MinIO); keys come from the S3 secret.

    Returns:
        drift_detected: Whether any drift rule fired.
    """
    from collections import namedtuple
    from pathlib import Path

    from components.runtime import log_scalars, output_dir, result_dict, use_s3_endpoint, write_text
    from monitoring.drift import run_drift_report

    use_s3_endpoint(s3_endpoint)
    out = output_dir(report)
    result = run_drift_report(reference_uri, current_uri, out, publish_uri=report_uri or None)
    values = result_dict(result)
    html_files = sorted(Path(out).rglob("*.html"))
    if html_files:
        write_text(report_html, html_files[0].read_text(encoding="utf-8"))
    log_scalars(metrics, values)
    report.metadata.update({k: v for k, v in values.items() if isinstance(v, (str, int, float, bool))})
    return namedtuple("Outputs", ["drift_detected"])(bool(values.get("drift_detected", False)))
