"""Component: upload the model store and start a KServe canary (or, locally, write what it would apply)."""
from kfp.dsl import Artifact, Input, Model, Output

from components.decorator import onevision_component


@onevision_component
def deploy_canary(
    model_store: Input[Model],
    deployment: Output[Artifact],
    storage_uri: str,
    canary_percent: int = 10,
    name: str = "onevision",
    namespace: str = "onevision",
    target: str = "cluster",
    s3_endpoint: str = "",
):
    """Uploads the model store to `storage_uri`/<bundle version> and sends the canary to KServe.

    Args:
        model_store: The archive in KServe's storage layout (with the parity.json it passed).
        deployment: The InferenceService manifest applied (or, with target "local", to apply) and a summary.
        storage_uri: Prefix the model store goes under (s3://bucket/prefix, or a local directory).
        canary_percent: Share of traffic (0-100) sent to the new model.
        name: InferenceService name.
        namespace: InferenceService namespace.
        target: "cluster" patches the InferenceService; "local" only writes the manifest and the model store.
        s3_endpoint: S3-compatible endpoint (MinIO); keys come from the S3 secret.
    """
    from components.runtime import input_dir, output_dir, result_dict, use_s3_endpoint
    from serving.deploy import deploy_canary as deploy

    if target not in ("cluster", "local"):
        raise ValueError(f"deploy target must be 'cluster' or 'local', got {target!r}")
    use_s3_endpoint(s3_endpoint)
    version = str(model_store.metadata.get("bundle_version") or "latest")
    uri = f"{storage_uri.rstrip('/')}/{version}"
    result = deploy(input_dir(model_store, "model_store"), uri, out_dir=output_dir(deployment),
                    canary_percent=canary_percent, name=name, namespace=namespace, apply=target == "cluster")
    deployment.metadata.update({"target": target, "storage_uri": uri, **result_dict(result)})
