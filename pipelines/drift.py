"""The `onevision-drift` pipeline: one Evidently drift report, meant to run as a recurring run."""
from kfp import dsl

from components.drift import drift_report
from components.features import materialize_features
from components.join import join_events
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
    events_uri: str = "",
    feature_repo: str = "",
    world_uri: str = "s3://onevision-data/world",
):
    """Args:
        reference_uri: The reference data (training-time request features).
        current_uri: The current request logs.
        report_uri: Where the report is also published (empty: only the KFP artifact).
        s3_endpoint: S3-compatible endpoint (MinIO), empty for AWS.
        s3_secret: Name of the Kubernetes Secret with awsAccessKeyID / awsSecretAccessKey.
        expected_canary_percent: The canary's configured split (% of users) for the sample-ratio check; 0: the log's.
        events_uri: The event sink's store (`onevision events serve --store`); when given, its payload logs and
            feedback are joined into the request log (GX-checked) that the report reads, first vs last window,
            and reference_uri / current_uri are not used.
        feature_repo: The Feast repo the servers read user features from; when given (with events_uri), the
            joined log's users are re-materialised into its online store. Empty: skipped.
        world_uri: The world whose items and users tables the materialised features are computed against.
    """
    # Never cached: the logs behind the same URI grow between runs. The request-log path comes first so its task
    # keeps the name drift-report.
    with dsl.If(events_uri == "", name="from-request-logs"):
        task = drift_report(reference_uri=reference_uri, current_uri=current_uri, report_uri=report_uri,
                            s3_endpoint=s3_endpoint, expected_canary_percent=expected_canary_percent)
        with_s3_secret(with_resources(task.set_display_name("drift report").set_caching_options(False)), s3_secret)
    with dsl.Else(name="from-the-event-sink"):
        joined = join_events(events_uri=events_uri, s3_endpoint=s3_endpoint)
        with_s3_secret(with_resources(joined.set_display_name("join events").set_caching_options(False)), s3_secret)
        log_uri = joined.outputs["log_uri"]
        task = drift_report(reference_uri=log_uri, current_uri=log_uri, report_uri=report_uri, s3_endpoint=s3_endpoint,
                            expected_canary_percent=expected_canary_percent)
        with_s3_secret(with_resources(task.set_display_name("drift report").set_caching_options(False)), s3_secret)
        with dsl.If(feature_repo != "", name="materialise-user-features"):
            features = materialize_features(log_uri=log_uri, world_uri=world_uri, feature_repo=feature_repo,
                                            s3_endpoint=s3_endpoint)
            with_s3_secret(with_resources(features.set_display_name("materialise user features")
                                          .set_caching_options(False)), s3_secret)
