"""Component: build the TorchServe model archive (.mar) in KServe's storage layout."""
from kfp.dsl import Artifact, Input, Model, Output

from components.decorator import onevision_component


@onevision_component
def build_archive(
    bundle: Input[Model],
    parity: Input[Artifact],
    model_store: Output[Model],
    model_name: str = "onevision",
):
    """Archives the generator bundle: model-store/<model_name>.mar, config/config.properties and parity.json.

    Args:
        bundle: The generator bundle that passed the parity gate.
        parity: The parity report it passed (parity.json travels with the model; canary promote reads it).
        model_store: KServe's PyTorch storage layout, ready to upload as an InferenceService storageUri.
        model_name: The TorchServe model name.
    """
    from pathlib import Path

    from components.runtime import input_dir, output_dir, result_dict
    from serving.archive import build_archive as build

    result = build(input_dir(bundle, "bundle"), output_dir(model_store), model_name=model_name,
                   parity_path=Path(input_dir(parity, "parity")) / "parity.json")
    info = result_dict(result)
    model_store.metadata.update({"model_name": model_name, "bundle_version": str(bundle.metadata.get("version", "")),
                                 "mar_path": info.get("mar_path", "")})
