"""Component: Evidently drift report of served traffic against the reference window."""
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
    expected_canary_percent: float = 0.0,
) -> NamedTuple("Outputs", drift_detected=bool, recommendation=str):
    """Compares the current request-log windows with the reference, per arm, and applies the monitoring rules.

    Args:
        reference_uri: The reference request log (local path or s3:// URI).
        current_uri: The current request log (may equal reference_uri: first vs last window).
        report: This run's report directory (index.html, Evidently reports per arm, summary.json).
        report_html: The overview page, rendered in the KFP UI.
        metrics: Drifted share per arm and test family, alerts, CTR/CVR lift of the canary.
        report_uri: The persistent report store (alerts, latest.json); empty keeps the report in the artifact only.
        s3_endpoint: S3-compatible endpoint (MinIO); keys come from the S3 secret.
        expected_canary_percent: The configured canary split (% of users) for the sample-ratio check; 0 reads it
            from the log's metadata.

    Returns:
        drift_detected: Whether any test family drifted in any arm.
        recommendation: promote, hold or rollback.
    """
    from collections import namedtuple
    from pathlib import Path

    from components.reports import drift_scalars
    from components.runtime import log_scalars, output_dir, use_s3_endpoint, write_text
    from monitoring.report import run_drift_report
    from onevision.storage import open_store

    use_s3_endpoint(s3_endpoint)
    out = output_dir(report)
    summary = run_drift_report(reference_uri, current_uri, report_uri or str(out),
                               expected_canary_percent=expected_canary_percent or None)
    if report_uri:
        open_store(report_uri).download_dir(summary.run_id, Path(out) / summary.run_id)
    write_text(report_html, (Path(out) / summary.run_id / "index.html").read_text(encoding="utf-8"))
    log_scalars(metrics, drift_scalars(summary))
    action = summary.recommendation.action
    report.metadata.update({"run_id": summary.run_id, "recommendation": action})
    return namedtuple("Outputs", ["drift_detected", "recommendation"])(summary.drift_detected, action)
