"""S3 credentials of the tasks that read or write object storage: a Kubernetes Secret, never a parameter."""
from __future__ import annotations

from kfp.dsl import PipelineTask

from onevision.s3secret import DEFAULT_SECRET, SECRET_KEY_TO_ENV  # noqa: F401 - the Secret's name and keys


def with_s3_secret(task: PipelineTask, secret_name: str | object = DEFAULT_SECRET) -> PipelineTask:
    """Expose the Secret's keys as AWS_* env vars of the task's pod (ignored by local runs)."""
    from kfp import kubernetes

    return kubernetes.use_secret_as_env(task, secret_name=secret_name, secret_key_to_env=SECRET_KEY_TO_ENV)
