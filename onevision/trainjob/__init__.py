"""Training on a cluster as a Kubeflow Trainer TrainJob (`trainer.kubeflow.org/v1alpha1`, the
`torch-distributed` ClusterTrainingRuntime), created and watched through the Kubeflow SDK (`kubeflow.trainer`).

`config`: the typed sizing (no Kubernetes imports); `build`: the TrainJob object, built by the SDK's own
Kubernetes backend; `submit`: create it through `TrainerClient`, wait with progress, fail with its own error.
"""
