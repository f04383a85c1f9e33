"""The `onevision-drift` pipeline: one Evidently drift report, meant to run as a recurring run."""
from kfp import dsl

from components.drift import drift_report
from pipelines.resources import with_resources
from pipelines.s3 import DEFAULT_SECRET, with_s3_secret

PIPELINE_NAME = "onevision-drift"


@dsl.pipeline(name=PIPELINE_NAME, description="Drift report of served traffic against the training reference.")
def onevision_drift(
    reference_uri: str = "s3://onevision-data/reference",
    current_uri: str = "s3://onevision-logs/requests",
    report_uri: str = "s3://onevision-reports/drift",
    s3_endpoint: str = "",
    s3_secret: str = DEFAULT_SECRET,
    expected_canary_percent: float = 0.0,
):
    """Args:
        reference_uri: The reference data (training-time request features).
        current_uri: The current request logs.
        report_uri: Where the report is also published (empty: only the KFP artifact).
        s3_endpoint: S3-compatible endpoint (MinIO), empty for AWS.
        s3_secret: Name of the Kubernetes Secret with awsAccessKeyID / awsSecretAccessKey.
        expected_canary_percent: The canary's configured split (% of users) for the sample-ratio check; 0: the log's.
    """
    task = drift_report(reference_uri=reference_uri, current_uri=current_uri, report_uri=report_uri,
                        s3_endpoint=s3_endpoint, expected_canary_percent=expected_canary_percent)
    # Never cached: the logs behind the same URI grow between runs.
    with_s3_secret(with_resources(task.set_display_name("drift report").set_caching_options(False)), s3_secret)
