"""Component: a published model bundle (local path, file:// or s3:// URI) as a pipeline artifact."""
from kfp.dsl import Model, Output

from components.decorator import onevision_component


@onevision_component
def fetch_bundle(uri: str, bundle: Output[Model], s3_endpoint: str = ""):
    """Copies the bundle at `uri` and checks it against its manifest (bundle.json).

    Args:
        uri: Where the bundle is (a directory with bundle.json).
        bundle: The bundle, verified.
        s3_endpoint: S3-compatible endpoint (MinIO) for an s3:// uri; keys come from the S3 secret.
    """
    from components.runtime import fetch_dir, output_dir, use_s3_endpoint
    from onevision.bundle import verify_bundle

    use_s3_endpoint(s3_endpoint)
    out = fetch_dir(uri, output_dir(bundle))
    bundle.metadata.update({"source": uri, **verify_bundle(out, require_manifest=False).to_json()})
    bundle.metadata.pop("files", None)
