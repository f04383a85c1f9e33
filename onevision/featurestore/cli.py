"""`onevision features …`: user features online through Feast. Registered as an `onevision.commands` entry
point (pyproject.toml); feast is imported inside the command."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from onevision.cli_support import fail
from onevision.featurestore.repo import STORE_YAML, FeatureRepoConfig
from onevision.featurestore.rows import DEFAULT_HISTORY
from onevision.userfeatures import UserFeatureConfig

USER = UserFeatureConfig()
REPO = FeatureRepoConfig(Path("feature_repo"))

features_app = typer.Typer(
    help="User features online (Feast): materialise them from what production logged.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@features_app.command("materialize")
def materialize_command(
    world: Annotated[str, typer.Option("--world", help="World directory or URI (catalogue items and users tables).")],
    log: Annotated[Optional[str], typer.Option("--log", help="A replay or `events join` output (requests.parquet + impressions.parquet), directory or s3:// URI; default: the world's training split.")] = None,
    repo: Annotated[Path, typer.Option("--repo", help="The Feast feature repo (created if missing; servers take it as --feature-repo).")] = REPO.repo_dir,
    redis: Annotated[str, typer.Option("--redis", help="Redis connection string (host:port) for the online store; empty: SQLite inside the repo. Used when the repo is first written.")] = "",
    project: Annotated[str, typer.Option("--project", help="Feast project name.")] = REPO.project,
    smoothing: Annotated[float, typer.Option("--smoothing", help="Pseudo-events pulling a user's shares towards the population's (the served model's).")] = USER.smoothing,
    history_len: Annotated[int, typer.Option("--history-len", help="Clicked items kept per user (at least the models' history lengths).")] = DEFAULT_HISTORY,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Event timestamp of the rows, ISO 8601 (default: now, UTC).")] = None,
) -> None:
    """Compute every user's online row from the log and load it into the repo's online store."""
    from onevision.cli_support import input_path
    from onevision.featurestore.logged import table_from_log
    from onevision.featurestore.materialize import materialize

    try:
        stamp = None if as_of is None else datetime.fromisoformat(as_of)
    except ValueError:
        fail(f"--as-of must be an ISO 8601 timestamp, got {as_of!r}", 2)
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    try:
        config = (FeatureRepoConfig.load(repo) if (repo / STORE_YAML).exists() and not redis
                  else FeatureRepoConfig(repo, project, {"type": "redis", "connection_string": redis} if redis
                                         else REPO.online_store))
        table = table_from_log(log, input_path(world), UserFeatureConfig(smoothing, USER.history_len))
        result = materialize(table, config, stamp, history_len)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{result.users} users materialised into {result.repo_dir} ({config.online_store['type']} online "
               f"store) as of {result.as_of.isoformat()}; rows in {result.parquet}")
