"""Component: build the TorchServe model archive (.mar) in KServe's storage layout."""
from kfp.dsl import Input, Model, Output

from components.decorator import onevision_component


@onevision_component
def build_archive(
    bundle: Input[Model],
    model_store: Output[Model],
    model_name: str = "onevision",
):
    """Archives the generator bundle as `model-store/<model_name>.mar` plus `config/config.properties`.

    Args:
        bundle: The generator bundle that passed the parity gate.
        model_store: KServe's PyTorch storage layout (config/, model-store/), ready to upload.
        model_name: The TorchServe model name (the InferenceService's model).
    """
    from components.runtime import input_dir, output_dir, result_dict
    from serving.archive import build_archive as build

    result = build(input_dir(bundle, "bundle"), output_dir(model_store), model_name=model_name)
    model_store.metadata.update({"model_name": model_name, **result_dict(result)})
