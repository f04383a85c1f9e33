"""Component: upload the model store and start a KServe canary (or, locally, write what it would apply)."""
from kfp.dsl import Artifact, Input, Model, Output

from components.decorator import onevision_component


@onevision_component
def deploy_canary(
    model_store: Input[Model],
    parity: Input[Artifact],
    deployment: Output[Artifact],
    storage_uri: str,
    canary_percent: int = 10,
    name: str = "onevision",
    namespace: str = "onevision",
    target: str = "cluster",
    s3_endpoint: str = "",
):
    """Uploads the model store with its parity report to `storage_uri` and sends the canary to KServe.

    Args:
        model_store: The archive in KServe's storage layout.
        parity: The parity report (parity.json travels with the model, `onevision canary promote` reads it).
        deployment: The InferenceService manifest applied (or, with target "local", to apply) and a summary.
        storage_uri: Where the model store goes (s3://bucket/prefix, or a local directory).
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
    if not 0 <= canary_percent <= 100:
        raise ValueError(f"canary_percent must lie in [0, 100], got {canary_percent}")
    use_s3_endpoint(s3_endpoint)
    result = deploy(
        input_dir(model_store, "model_store"), storage_uri, parity_dir=input_dir(parity, "parity"),
        out_dir=output_dir(deployment), canary_percent=canary_percent, name=name, namespace=namespace,
        apply=target == "cluster",
    )
    deployment.metadata.update({"target": target, **result_dict(result)})
