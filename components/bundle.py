"""Component: package trained parts into one self-contained model bundle (bundle.json + parts)."""
from kfp.dsl import Input, Model, Output

from components.decorator import onevision_component


@onevision_component
def package_bundle(
    kind: str,
    encoder: Input[Model],
    bundle: Output[Model],
    vrq: Input[Model] = None,
    generator: Input[Model] = None,
    cascade: Input[Model] = None,
):
    """Bundles the encoder with the generator (+ VRQ) or with the cascade, as one servable directory.

    Args:
        kind: "generator" or "cascade".
        encoder: The trained encoder.
        bundle: The bundle directory (bundle.json, encoder/, userfeatures/, vrq/ + generator/ or cascade/).
        vrq: The VRQ directory (kind generator).
        generator: The final generator stage (kind generator).
        cascade: The cascade directory (kind cascade).
    """
    from components.runtime import input_dir, output_dir
    from onevision.bundle import read_bundle_meta
    from onevision.steps import make_bundle_step

    parts = {"generator": {"vrq": vrq, "generator": generator}, "cascade": {"cascade": cascade}}
    if kind not in parts:
        raise ValueError(f"bundle kind must be 'generator' or 'cascade', got {kind!r}")
    dirs = {f"{name}_dir": input_dir(artifact, name) for name, artifact in parts[kind].items()}
    out = make_bundle_step(kind, output_dir(bundle), encoder_dir=input_dir(encoder, "encoder"), **dirs)
    bundle.metadata.update(read_bundle_meta(out).to_json())
