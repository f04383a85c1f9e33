"""Component: user features re-materialised into the Feast online store from the joined request log, so the
served models personalise on what users did since training without a new archive."""
from kfp.dsl import Metrics, Output

from components.decorator import onevision_component


@onevision_component
def materialize_features(
    log_uri: str,
    world_uri: str,
    feature_repo: str,
    metrics: Output[Metrics],
    s3_endpoint: str = "",
):
    """Computes every logged user's online row (onevision.featurestore) and loads it into the repo's online store.

    Args:
        log_uri: The joined request log (requests.parquet + impressions.parquet), local path or s3:// URI.
        world_uri: The world whose items and users tables name the catalogue and the users' profiles.
        feature_repo: The Feast repo the servers read (--feature-repo); a shared volume path. Its
            feature_store.yaml names the online store (Redis on a cluster).
        metrics: Users materialised.
        s3_endpoint: S3-compatible endpoint (MinIO); keys come from the S3 secret.
    """
    import tempfile
    from pathlib import Path

    from components.runtime import fetch_dir, log_scalars, use_s3_endpoint
    from onevision.featurestore.logged import table_from_log
    from onevision.featurestore.materialize import materialize
    from onevision.featurestore.repo import STORE_YAML, FeatureRepoConfig

    use_s3_endpoint(s3_endpoint)
    repo = Path(feature_repo)
    config = FeatureRepoConfig.load(repo) if (repo / STORE_YAML).exists() else FeatureRepoConfig(repo)
    with tempfile.TemporaryDirectory(prefix="onevision-world-") as tmp:
        world = world_uri if "://" not in world_uri else str(fetch_dir(world_uri, Path(tmp)))
        table = table_from_log(log_uri, world)  # the served models' UserFeatureConfig defaults
    result = materialize(table, config)
    log_scalars(metrics, {"users": result.users})
