"""Component: one stage of the staged SID generator training (1, 2 or 3)."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.decorator import onevision_component


@onevision_component
def train_generator(
    world: Input[Dataset],
    encoder: Input[Model],
    vrq: Input[Model],
    generator: Output[Model],
    metrics: Output[Metrics],
    stage: int,
    init: Input[Model] = None,
    reward: Input[Model] = None,
    preset: str = "default",
    config: dict = {},
    trainer: str = "local",
    trainjob: dict = {},
    s3_endpoint: str = "",
    s3_secret: str = "onevision-s3",
):
    """Trains generator stage `stage`, starting from the previous stage's checkpoint.

    Args:
        world: The validated world tables.
        encoder: The trained encoder with catalogue features.
        vrq: The VRQ codebooks, SIDs and trie.
        generator: This stage's checkpoint.pt and config.json.
        metrics: stage, final_loss and seconds.
        stage: 1, 2 or 3.
        init: The previous stage's generator (required for stages 2 and 3).
        reward: Stage 3: the trained cascade whose ranker scores the model's own beam lists (the reward model).
        preset: "default" or "tiny".
        config: GeneratorTrainingConfig fields over the preset.
        trainer: "local" trains in this task; "kubeflow" runs the stage as a Kubeflow Trainer TrainJob.
        trainjob: TrainJobConfig fields (nodes, procs_per_node, cpu, memory, gpu, image, namespace, ...).
        s3_endpoint: S3 endpoint of the TrainJob's nodes (MinIO), empty for AWS.
        s3_secret: Kubernetes Secret with the TrainJob nodes' S3 credentials.
    """
    from components.runtime import input_dir, log_scalars, output_dir, step_config

    from components.trainjob import check_trainer

    if check_trainer(trainer):
        from components.trainjob import train_on_trainjob

        artifacts = {"world": (world, "world"), "encoder": (encoder, "encoder"), "vrq": (vrq, "vrq"),
                     "init": (init, f"generator stage {stage - 1}"), "reward": (reward, "reward model"),
                     "out": (generator, "generator")}
        train_on_trainjob(["train", "generator"], artifacts, step_config("generator", preset, config), generator,
                          metrics, trainjob, s3_endpoint, s3_secret, logged={"stage": stage}, stage=stage)
        return
    from onevision.steps import train_generator_step

    init_dir = input_dir(init, f"generator stage {stage - 1}") if init is not None else None
    reward_dir = input_dir(reward, "reward model") if reward is not None else None
    result = train_generator_step(
        input_dir(world, "world"), input_dir(encoder, "encoder"), input_dir(vrq, "vrq"), output_dir(generator),
        stage=stage, init_dir=init_dir, config=step_config("generator", preset, config), show_progress=False,
        reward_dir=reward_dir,
    )
    final = {"final_loss": result.losses[-1]} if result.losses else {}
    scalars = log_scalars(metrics, {"stage": stage, **final, "seconds": result.seconds})
    generator.metadata.update(scalars)
