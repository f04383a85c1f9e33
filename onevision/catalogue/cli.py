"""`onevision catalogue …`: refresh a bundle with newly listed items, extract a world's new rows, and measure
recall on new vs old items. Registered as an entry point (pyproject.toml, group onevision.commands)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer

from onevision.catalogue.config import COLD_START, ListingEvalConfig, RefreshConfig
from onevision.cli_support import fail, input_path
from onevision.generator.finetune import FinetuneConfig

FT = FinetuneConfig()
RC = RefreshConfig()
EVAL = ListingEvalConfig()
catalogue_app = typer.Typer(help="Catalogue refresh: add newly listed items to a bundle without retraining it.",
                            no_args_is_help=True)


def _ids(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        fail(f"--delist must be item ids separated by commas, got {text!r}", 2)


@catalogue_app.command("refresh")
def refresh(
    bundle: str = typer.Option(..., help="Bundle to refresh (generator or cascade), directory or URI."),
    items: Path = typer.Option(..., help="New items: a Parquet table in the world's items schema."),
    views: Path = typer.Option(..., help="Their shop views: a Parquet table in the world's item_views schema."),
    out: Path = typer.Option(..., help="Directory for the new bundle version (must not exist)."),
    delist: Optional[str] = typer.Option(None, help="Item ids to remove, comma-separated."),
    replay_views: Optional[Path] = typer.Option(
        None, help="Shop views of listed items (item_views schema, e.g. the world's) replayed in the fine-tune."),
    finetune: bool = typer.Option(True, help="Generator: fine-tune on the new items' views (off: SIDs + trie only)."),
    epochs: int = typer.Option(FT.epochs, help="Fine-tune epochs."),
    lr: float = typer.Option(FT.lr, help="Fine-tune learning rate."),
    replay: float = typer.Option(FT.replay, help="Replayed old views per new view."),
    distill: float = typer.Option(FT.distill, help="Weight of the replayed views' KL to the frozen generator."),
    replay_ce: float = typer.Option(FT.replay_ce, help="Weight of the replayed views' cross-entropy to their own SIDs."),
    augmented_copies: int = typer.Option(FT.augmented_copies, help="Photo-like augmented copies of every view."),
    interpolation: float = typer.Option(FT.weight_interpolation, help="Keep this share of the fine-tuned weights, "
                                        "the rest the parent's (WiSE-FT; 1: the fine-tuned model)."),
    seed: int = typer.Option(FT.seed, help="Random seed of the fine-tune."),
    cold_start_clicks: str = typer.Option(RC.cold_start_clicks, help=f"Cascade: new items' click prior, one of "
                                          f"{', '.join(COLD_START)}."),
    cold_start_scale: float = typer.Option(RC.cold_start_scale, help="Cascade: the neighbours' click prior x this."),
    version: Optional[str] = typer.Option(None, help="Version of the new bundle (default: the time)."),
) -> None:
    """Write a new version of BUNDLE with the new items (and without the delisted ones), plus refresh_manifest.json."""
    from onevision import steps
    from onevision.bundle import BundleIntegrityError
    from onevision.catalogue.tables import CatalogueTableError
    from onevision.vrq.extend import SidSpaceFull

    if finetune and replay_views is None and replay > 0:
        typer.secho("warning: no --replay-views: the fine-tune sees only the new items' views and may forget old "
                    "ones", fg=typer.colors.YELLOW, err=True)
    try:
        tune = dataclasses.replace(FT, epochs=epochs, lr=lr, replay=replay, distill=distill, replay_ce=replay_ce,
                                   augmented_copies=augmented_copies, seed=seed,
                                   weight_interpolation=interpolation) if finetune else None
        config = RefreshConfig(tune, version, cold_start_clicks, cold_start_scale)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        result = steps.refresh_step(input_path(bundle), items, views, out, delisted=_ids(delist),
                                    replay_views_path=replay_views, config=config, show_progress=True)
    except (CatalogueTableError, SidSpaceFull, BundleIntegrityError, FileExistsError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(result, indent=2))


@catalogue_app.command("new-rows")
def new_rows(
    world: Path = typer.Option(..., help="World directory."),
    out: Path = typer.Option(..., help="Directory for items.parquet and item_views.parquet of the new items."),
    after_day: Optional[int] = typer.Option(None, help="Items first listed after this day (default: the last "
                                                       "training day, what the bundles were trained on)."),
    by_day: Optional[int] = typer.Option(None, help="... and by this day (default: any later day)."),
) -> None:
    """Extract the items a world lists after training (and their views): the input of `catalogue refresh`."""
    from onevision.catalogue.tables import listed_between
    from onevision.world import load_world

    try:
        w = load_world(world)
        after = w.for_training().listed_by if after_day is None else after_day
        if after is None:
            fail(f"{world} has no world.json: pass --after-day", 2)
        rows = listed_between(w, after, by_day)
    except FileNotFoundError as exc:
        fail(str(exc))
    rows.save(out)
    typer.echo(f"{len(rows.items)} new items ({len(rows.views)} views) listed after day {after} written to {out}")


@catalogue_app.command("evaluate")
def evaluate(
    bundle: str = typer.Option(..., help="Bundle directory or URI."),
    world: Path = typer.Option(..., help="World directory."),
    out: Optional[Path] = typer.Option(None, help="Directory for listing_recall.json."),
    split: str = typer.Option(EVAL.split, help="Query split."),
    k: int = typer.Option(EVAL.k, help="Cut-off of recall@k."),
    max_queries: Optional[int] = typer.Option(None, help="Evaluate only the first N queries."),
    listed_by: Optional[int] = typer.Option(None, help="Items listed after this day count as new (default: the "
                                                       "last training day)."),
) -> None:
    """Recall@k on queries for new vs old items, and for new items by days since listing."""
    from onevision import steps

    cfg = ListingEvalConfig(split=split, k=k, max_queries=max_queries)
    try:
        result = steps.listing_eval_step(input_path(bundle), world, out, cfg, listed_by=listed_by)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(result, indent=2))
