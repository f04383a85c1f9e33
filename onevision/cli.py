"""The `onevision` command. Heavy libraries (torch, great_expectations, evidently, kfp, kserve) are
imported inside the commands that need them, so `onevision --help` stays fast."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from onevision.cli_support import fail
from onevision.commands import evaluate_app, train_app
from onevision.world.config import DISCREPANCY_LEVELS, WorldConfig

WORLD = WorldConfig()  # the defaults of `world generate`

app = typer.Typer(
    help="OneVision: generative visual product search — world, training, evaluation, pipelines, serving, monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
world_app = typer.Typer(help="Generate the synthetic multi-view world.", no_args_is_help=True)
data_app = typer.Typer(help="Validate data against the world's Parquet contract.", no_args_is_help=True)
app.add_typer(world_app, name="world")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
COMMANDS_GROUP = "onevision.commands"  # entry points: name = "package.module:typer_app" (pyproject.toml)


def _add_registered_groups(root: typer.Typer) -> None:
    """The packages built on the core (pipelines, serving, monitoring) register their command groups as entry
    points, so the core's command never imports them."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        root.add_typer(ep.load(), name=ep.name)


_add_registered_groups(app)


@world_app.command("generate")
def world_generate(
    out: Path = typer.Option(..., "--out", help="Directory to write the world's Parquet tables to."),
    seed: int = typer.Option(WORLD.seed, help="Random seed; the same seed gives byte-identical tables."),
    items: int = typer.Option(WORLD.items, help="Number of products."),
    users: int = typer.Option(WORLD.users, help="Number of users."),
    days: int = typer.Option(WORLD.days, help="Days of sessions (train/val/test split by time)."),
    queries_per_day: int = typer.Option(WORLD.queries_per_day, help="Query sessions per day."),
    train_days: int = typer.Option(WORLD.train_days, help="Days in the training split."),
    val_days: int = typer.Option(WORLD.val_days, help="Days in the validation split; the rest is test."),
    discrepancy: str = typer.Option(
        next((name for name, v in DISCREPANCY_LEVELS.items() if v == WORLD.discrepancy), str(WORLD.discrepancy)),
        help=f"User-photo discrepancy: {'|'.join(DISCREPANCY_LEVELS)} or 0..1."),
    image_size: int = typer.Option(WORLD.image_size, help="Image side in pixels."),
    brands: int = typer.Option(WORLD.brands, help="Number of brands (VRQ's attribute level codes brand x price band)."),
    drift_start_day: Optional[int] = typer.Option(None, help="First day with drift (default: no drift)."),
    preference_shift: float = typer.Option(0.0, help="Drift: share of brand/price preference moved (0..1)."),
    camera_degradation: float = typer.Option(0.0, help="Drift: extra photo discrepancy from the drift day."),
    new_item_share: float = typer.Option(0.0, help="Drift: share of items launched on the drift day."),
) -> None:
    """Generate a reproducible world: items, item_views, users, queries, impressions (+ truth/)."""
    from onevision.steps import generate_world_step
    from onevision.world import DriftConfig, WorldConfig, parse_discrepancy

    try:
        cfg = WorldConfig(
            seed=seed, items=items, users=users, days=days, queries_per_day=queries_per_day,
            train_days=train_days, val_days=val_days, discrepancy=parse_discrepancy(discrepancy),
            image_size=image_size, brands=brands,
            drift=DriftConfig(drift_start_day, preference_shift, camera_degradation, new_item_share),
        )
    except ValueError as exc:
        fail(str(exc), 2)
    result = generate_world_step(out, cfg, show_progress=True)
    typer.echo(f"world written to {out} in {result.seconds:.1f}s "
               f"({items} items, {users} users, {result.queries} queries)")


@data_app.command("validate")
def data_validate(
    world_dir: Path = typer.Argument(..., help="World directory holding the Parquet tables."),
    report_dir: Optional[Path] = typer.Option(None, help="Where to write the validation result (default: WORLD_DIR/validation)."),
) -> None:
    """Run the Great Expectations suites on every table; exit 1 naming each failed expectation."""
    from onevision.steps import validate_step
    from onevision.validation import DataValidationError

    try:
        result = validate_step(world_dir, report_dir)
    except (DataValidationError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(result.summary)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
