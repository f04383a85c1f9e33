"""Component: the world a run trains on — downloaded from `data_uri`, or generated when it is empty."""

from kfp.dsl import Dataset, Output

from components.decorator import onevision_component


@onevision_component
def ingest_world(
    world: Output[Dataset],
    data_uri: str = "",
    seed: int = 0,
    preset: str = "default",
    config: dict = {},
    s3_endpoint: str = "",
):
    """Materialises the world tables as a Dataset: a copy of `data_uri`, or a generated synthetic world.

    Data under a URI is treated as immutable (cached by URI): publish a new world under a new URI.

    Args:
        world: Output directory with the Parquet tables (items, item_views, users, queries, impressions, truth/).
        data_uri: Local path, file:// or s3:// URI of an existing world; empty generates one.
        seed: Random seed of the generated world (ignored with data_uri).
        preset: "default" (the demo world) or "tiny" (a few seconds, for tests).
        config: Further WorldConfig fields over the preset, e.g. {"items": 500, "users": 100}.
        s3_endpoint: S3-compatible endpoint (MinIO) for an s3:// data_uri; keys come from the S3 secret.
    """
    from components.runtime import fetch_dir, output_dir, step_config, use_s3_endpoint

    out = output_dir(world)
    if data_uri:
        use_s3_endpoint(s3_endpoint)
        fetch_dir(data_uri, out)
        world.metadata["source"] = data_uri
        return
    from onevision.steps import generate_world_step

    result = generate_world_step(out, step_config("world", preset, {**config, "seed": seed}))
    world.metadata.update({"source": "generated", **result.to_dict()})
