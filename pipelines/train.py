"""The `onevision-train` pipeline: data -> encoder -> VRQ -> {cascade, generator 1->2->3 (stage 3 reads the cascade's
ranker as its reward model)} -> evaluation -> parity gate -> archive + canary when it passes, the gate's reasons when
it does not."""

from kfp import dsl

from components.archive import build_archive
from components.bundle import package_bundle
from components.cascade import train_cascade
from components.deploy import deploy_canary
from components.encoder import train_encoder
from components.evaluate import evaluate_model
from components.gate_report import gate_failure_report
from components.generator import train_generator
from components.ingest import ingest_world
from components.parity import parity_gate
from components.validate import validate_data
from components.vrq import train_vrq
from onevision.evaluation.parity import ParityGate
from pipelines.resources import with_resources
from pipelines.s3 import DEFAULT_SECRET, with_s3_secret

PIPELINE_NAME = "onevision-train"
DEFAULT_STORAGE_URI = "s3://onevision-models/generator"


def _step(task: dsl.PipelineTask, display_name: str, cache: bool = True) -> dsl.PipelineTask:
    return with_resources(task.set_display_name(display_name).set_caching_options(cache))


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train the VRQ semantic-ID generator and the cascade baseline, gate on parity, archive and canary-deploy.",
)
def onevision_train(
    data_uri: str = "",
    world_seed: int = 0,
    world_config: dict = {},
    preset: str = "default",
    encoder_config: dict = {},
    vrq_config: dict = {},
    cascade_config: dict = {},
    generator_config: dict = {},
    eval_config: dict = {},
    trainer: str = "local",
    trainjob_config: dict = {},
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
        data_uri: World to train on (local path or s3:// URI); empty generates one from world_seed/world_config.
        world_seed: Seed of the generated world.
        world_config: WorldConfig fields of the generated world (items, users, days, ...).
        preset: Step configs to start from: "default" (the demo) or "tiny" (seconds, for tests).
        encoder_config: EncoderStepConfig overrides.
        vrq_config: VRQStepConfig overrides.
        cascade_config: CascadeConfig overrides.
        generator_config: GeneratorTrainingConfig overrides (all three stages).
        eval_config: EvalStepConfig overrides.
        trainer: Where the encoder and generator stages train: "local" (in their task) or "kubeflow" (a Kubeflow
            Trainer TrainJob each, on the torch-distributed runtime; needs an S3 pipeline root, docs/training.md).
        trainjob_config: TrainJobConfig fields of those TrainJobs: nodes, procs_per_node, cpu, memory, gpu, image, ...
        epsilon: Parity gate: allowed relative shortfall of the generator against the cascade.
        canary_percent: Share of traffic for the new model after a passed gate.
        storage_uri: Prefix for KServe's model store; each model goes under <storage_uri>/<bundle version>.
        model_name: InferenceService and TorchServe model name.
        namespace: InferenceService namespace.
        deploy_target: "cluster" patches the InferenceService; "local" only writes its manifest.
        s3_endpoint: S3-compatible endpoint (MinIO), empty for AWS.
        s3_secret: Name of the Kubernetes Secret with awsAccessKeyID / awsSecretAccessKey.
    """
    world_task = _step(ingest_world(data_uri=data_uri, seed=world_seed, preset=preset, config=world_config,
                                    s3_endpoint=s3_endpoint), "world")
    with_s3_secret(world_task, s3_secret)
    world = world_task.outputs["world"]

    # Validation is never cached: the same world must pass the current contract on every run.
    validation = _step(validate_data(world=world), "validate data", cache=False)

    trainjob = {"trainer": trainer, "trainjob": trainjob_config, "s3_endpoint": s3_endpoint, "s3_secret": s3_secret}
    encoder = _step(train_encoder(world=world, preset=preset, config=encoder_config, **trainjob),
                    "encoder").after(validation)
    enc = encoder.outputs["encoder"]
    vrq = _step(train_vrq(world=world, encoder=enc, preset=preset, config=vrq_config), "VRQ")
    cascade = _step(train_cascade(world=world, encoder=enc, preset=preset, config=cascade_config), "cascade")

    stage = None
    for n in (1, 2, 3):
        init = {} if stage is None else {"init": stage.outputs["generator"]}
        if n == 3:  # stage 3 ranks its own beam lists with the cascade's ranker (a reward model of the logs)
            init["reward"] = cascade.outputs["cascade"]
        stage = _step(train_generator(world=world, encoder=enc, vrq=vrq.outputs["vrq"], stage=n, preset=preset,
                                      config=generator_config, **init, **trainjob), f"generator stage {n}")

    generator_bundle = _step(package_bundle(kind="generator", encoder=enc, vrq=vrq.outputs["vrq"],
                                            generator=stage.outputs["generator"]), "generator bundle")
    cascade_bundle = _step(package_bundle(kind="cascade", encoder=enc, cascade=cascade.outputs["cascade"]),
                           "cascade bundle")
    evaluations = {
        kind: _step(evaluate_model(bundle=bundle.outputs["bundle"], world=world, preset=preset, config=eval_config),
                    f"evaluate {kind}")
        for kind, bundle in (("generator", generator_bundle), ("cascade", cascade_bundle))
    }
    gate = _step(parity_gate(generator_evaluation=evaluations["generator"].outputs["evaluation"],
                             cascade_evaluation=evaluations["cascade"].outputs["evaluation"], epsilon=epsilon),
                 "parity gate")

    with dsl.If(gate.outputs["passed"] == True, name="parity-passed"):  # noqa: E712 - a KFP condition, not Python
        archive = _step(build_archive(bundle=generator_bundle.outputs["bundle"], parity=gate.outputs["parity"],
                                      model_name=model_name), "archive")
        deploy = _step(deploy_canary(model_store=archive.outputs["model_store"], storage_uri=storage_uri,
                                     canary_percent=canary_percent, name=model_name, namespace=namespace,
                                     target=deploy_target, s3_endpoint=s3_endpoint),
                       "deploy canary", cache=False)  # a side effect on the cluster: never skipped by the cache
        with_s3_secret(deploy, s3_secret)
    with dsl.Else(name="parity-failed"):
        _step(gate_failure_report(parity=gate.outputs["parity"]), "gate failure reasons")
