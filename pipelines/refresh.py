"""The `onevision-refresh` pipeline: new products findable the day they list, without a retrain.

world (with the new rows) -> GX validation -> the new rows -> refresh both bundles -> recall on new vs old items,
before and after; like any model version, evaluation + parity gate of the refreshed generator against the refreshed
cascade -> refresh gate (the generator: new within 10% of old, old unchanged; it folds in the parity verdict)
-> archive + canary when it passes, the reasons when not."""

from kfp import dsl

from components.archive import build_archive
from components.deploy import deploy_canary
from components.evaluate import evaluate_model
from components.fetch_bundle import fetch_bundle
from components.gate_report import gate_failure_report
from components.ingest import ingest_world
from components.listing_eval import evaluate_listing
from components.new_rows import new_catalogue_rows
from components.parity import parity_gate
from components.refresh import refresh_catalogue
from components.refresh_gate import refresh_gate
from components.validate import validate_data
from onevision.catalogue.gate import RefreshGate
from onevision.evaluation.parity import ParityGate
from pipelines.resources import with_resources
from pipelines.s3 import DEFAULT_SECRET, with_s3_secret
from pipelines.train import DEFAULT_STORAGE_URI

PIPELINE_NAME = "onevision-refresh"


def _step(task: dsl.PipelineTask, display_name: str, cache: bool = True) -> dsl.PipelineTask:
    return with_resources(task.set_display_name(display_name).set_caching_options(cache))


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Add newly listed items to the generator and cascade bundles without retraining, gate on recall "
                "for new vs old items and on parity, and canary-deploy the refreshed generator.",
)
def onevision_refresh(
    data_uri: str,
    generator_bundle_uri: str,
    cascade_bundle_uri: str,
    listed_by: int = -1,
    preset: str = "default",
    refresh_config: dict = {},
    listing_config: dict = {},
    eval_config: dict = {},
    delisted: list = [],
    new_within: float = RefreshGate.new_within,
    old_tolerance: float = RefreshGate.old_tolerance,
    epsilon: float = ParityGate.epsilon,
    canary_percent: int = 10,
    storage_uri: str = DEFAULT_STORAGE_URI,
    model_name: str = "onevision",
    namespace: str = "onevision",
    deploy_target: str = "cluster",
    s3_endpoint: str = "",
    s3_secret: str = DEFAULT_SECRET,
):
    """Args:
        data_uri: The world with the new items (their rows in items and item_views) and queries to judge them on.
        generator_bundle_uri: The generator bundle to refresh (local path or s3:// URI).
        cascade_bundle_uri: The cascade bundle to refresh.
        listed_by: The bundles' training catalogue day: later items are new; -1: the world's last training day.
        preset: Step configs to start from: "default" or "tiny".
        refresh_config: RefreshConfig overrides (e.g. {"finetune": {"epochs": 4}}).
        listing_config: ListingEvalConfig overrides (split, k, ...).
        eval_config: EvalStepConfig overrides (the parity evaluation).
        delisted: Item ids to remove from both bundles.
        new_within: Refresh gate: allowed relative shortfall of new items' recall against old items'.
        old_tolerance: Refresh gate: allowed absolute change of old items' recall.
        epsilon: Parity gate: allowed relative shortfall of the generator against the cascade.
        canary_percent: Share of traffic for the refreshed model after both gates passed.
        storage_uri: Prefix for KServe's model store; each model goes under <storage_uri>/<bundle version>.
        model_name: InferenceService and TorchServe model name.
        namespace: InferenceService namespace.
        deploy_target: "cluster" patches the InferenceService; "local" only writes its manifest.
        s3_endpoint: S3-compatible endpoint (MinIO), empty for AWS.
        s3_secret: Name of the Kubernetes Secret with awsAccessKeyID / awsSecretAccessKey.
    """
    world_task = _step(ingest_world(data_uri=data_uri, preset=preset, s3_endpoint=s3_endpoint), "world")
    with_s3_secret(world_task, s3_secret)
    world = world_task.outputs["world"]
    validation = _step(validate_data(world=world), "validate data", cache=False)  # the GX gate, every run
    rows = _step(new_catalogue_rows(world=world, listed_by=listed_by), "new rows").after(validation)

    refreshed, before, after = {}, {}, {}
    for kind, uri in (("generator", generator_bundle_uri), ("cascade", cascade_bundle_uri)):
        parent = _step(fetch_bundle(uri=uri, s3_endpoint=s3_endpoint), f"{kind} bundle")
        with_s3_secret(parent, s3_secret)
        bundle = parent.outputs["bundle"]
        replay = {"world": world} if kind == "generator" else {}
        refreshed[kind] = _step(refresh_catalogue(bundle=bundle, rows=rows.outputs["rows"], preset=preset,
                                                  config=refresh_config, delisted=delisted, **replay),
                                f"refresh {kind}").outputs["refreshed"]
        for label, model, into in (("before", bundle, before), ("after", refreshed[kind], after)):
            into[kind] = _step(evaluate_listing(bundle=model, world=world, preset=preset, config=listing_config,
                                                listed_by=listed_by), f"new vs old items: {kind} {label}")

    evaluations = {kind: _step(evaluate_model(bundle=refreshed[kind], world=world, preset=preset, config=eval_config),
                               f"evaluate refreshed {kind}") for kind in refreshed}
    parity = _step(parity_gate(generator_evaluation=evaluations["generator"].outputs["evaluation"],
                               cascade_evaluation=evaluations["cascade"].outputs["evaluation"], epsilon=epsilon),
                   "parity gate")
    # One condition for the canary (kfp.local cannot resolve a condition nested in another): the generator's
    # refresh gate folds in the parity verdict.
    gate = _step(refresh_gate(before=before["generator"].outputs["evaluation"],
                              after=after["generator"].outputs["evaluation"], new_within=new_within,
                              old_tolerance=old_tolerance, parity_passed=parity.outputs["passed"]), "refresh gate")
    _step(refresh_gate(before=before["cascade"].outputs["evaluation"], after=after["cascade"].outputs["evaluation"],
                       new_within=new_within, old_tolerance=old_tolerance), "refresh gate (cascade, reported)")

    with dsl.If(gate.outputs["passed"] == True, name="refresh-passed"):  # noqa: E712 - a KFP condition
        archive = _step(build_archive(bundle=refreshed["generator"], parity=parity.outputs["parity"],
                                      model_name=model_name), "archive")
        deploy = _step(deploy_canary(model_store=archive.outputs["model_store"], storage_uri=storage_uri,
                                     canary_percent=canary_percent, name=model_name, namespace=namespace,
                                     target=deploy_target, s3_endpoint=s3_endpoint),
                       "deploy canary", cache=False)  # a side effect on the cluster: never skipped by the cache
        with_s3_secret(deploy, s3_secret)
    with dsl.Else(name="refresh-failed"):
        _step(gate_failure_report(parity=parity.outputs["parity"]), "gate failure reasons")
