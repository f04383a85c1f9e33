"""The Feast repo, defined in code: `feature_store.yaml` (project, provider local, a file registry, the online
store: SQLite inside the repo by default, or e.g. ``{"type": "redis", "connection_string": "redis:6379"}`` on a
cluster), an Entity `user` (join key user_id), a FileSource over the Parquet the materialiser writes, and one
FeatureView of the online rows (onevision.featurestore.rows.FIELDS).

The repo directory is the one thing servers are pointed at: its feature_store.yaml says where the online store
is, so a Redis store is chosen once, when the repo is first materialised.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onevision.featurestore.rows import FIELDS, FLOAT, FLOAT_ARRAY, INT, INT_ARRAY, USER_ID

if TYPE_CHECKING:
    from feast import FeatureStore

STORE_YAML = "feature_store.yaml"
REGISTRY_FILE = "registry.db"
ONLINE_DB = "online.db"  # the SQLite online store, inside the repo
ROWS_PARQUET = "data/user_features.parquet"
ENTITY = "user"
VIEW = "user_features"
EVENT_TS = "event_timestamp"
SQLITE = {"type": "sqlite", "path": ONLINE_DB}
ONLINE_STORE_TYPES = ("sqlite", "redis")


@dataclass(frozen=True)
class FeatureRepoConfig:
    repo_dir: Path
    project: str = "onevision"
    online_store: dict[str, Any] = field(default_factory=lambda: dict(SQLITE))  # relative sqlite path: in repo_dir
    ttl_days: int = 30  # the feature view's ttl: rows older than this are not served
    timeout_ms: int = 250  # deadline of one online read; past it the users are served non-personalised

    def __post_init__(self) -> None:
        object.__setattr__(self, "repo_dir", Path(self.repo_dir))
        kind = self.online_store.get("type")
        if kind not in ONLINE_STORE_TYPES:
            raise ValueError(f"online_store type must be one of {ONLINE_STORE_TYPES}, got {kind!r}")
        if kind == "redis" and not self.online_store.get("connection_string"):
            raise ValueError('a redis online store needs a connection_string, e.g. {"type": "redis", '
                             '"connection_string": "redis:6379"}')
        if self.ttl_days < 1 or self.timeout_ms < 1:
            raise ValueError(f"ttl_days and timeout_ms must be >= 1, got {self.ttl_days}, {self.timeout_ms}")

    def to_yaml_dict(self) -> dict[str, Any]:
        """feature_store.yaml's contents (paths relative to the repo)."""
        return {"project": self.project, "provider": "local", "registry": REGISTRY_FILE,
                "online_store": dict(self.online_store), "entity_key_serialization_version": 3,
                "onevision": {"ttl_days": self.ttl_days}}

    def write(self) -> Path:
        import yaml

        self.repo_dir.mkdir(parents=True, exist_ok=True)
        path = self.repo_dir / STORE_YAML
        path.write_text(yaml.safe_dump(self.to_yaml_dict(), sort_keys=True))
        return path

    @classmethod
    def load(cls, repo_dir: Path | str, timeout_ms: int | None = None) -> FeatureRepoConfig:
        """The config a materialised repo was written with (`timeout_ms`: the reader's, not stored)."""
        import yaml

        path = Path(repo_dir) / STORE_YAML
        if not path.exists():
            raise FileNotFoundError(f"no Feast feature repo at {repo_dir}: {path} is missing "
                                    "(write one with `onevision features materialize --repo ...`)")
        data = yaml.safe_load(path.read_text()) or {}
        extra = data.get("onevision") or {}
        timeout = {} if timeout_ms is None else {"timeout_ms": timeout_ms}
        return cls(Path(repo_dir), data.get("project", cls.project), dict(data.get("online_store") or SQLITE),
                   int(extra.get("ttl_days", cls.ttl_days)), **timeout)

    def replace(self, **changes: Any) -> FeatureRepoConfig:
        return dataclasses.replace(self, **changes)


def repo_config(config: FeatureRepoConfig) -> Any:
    """Feast's RepoConfig, with the repo's relative paths made absolute."""
    from feast import RepoConfig

    root = config.repo_dir.resolve()
    online = dict(config.online_store)
    if online["type"] == "sqlite":
        online["path"] = str(root / online.get("path", ONLINE_DB))
    return RepoConfig(project=config.project, provider="local", registry=str(root / REGISTRY_FILE),
                      online_store=online, entity_key_serialization_version=3, repo_path=root)


def open_store(config: FeatureRepoConfig) -> FeatureStore:
    from feast import FeatureStore

    return FeatureStore(repo_path=str(config.repo_dir.resolve()), config=repo_config(config))


def definitions(config: FeatureRepoConfig) -> tuple[Any, Any]:
    """(the user Entity, the user_features FeatureView over the rows' Parquet)."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Float32, Int64

    kinds = {FLOAT_ARRAY: Array(Float32), INT_ARRAY: Array(Int64), FLOAT: Float32, INT: Int64}
    user = Entity(name=ENTITY, join_keys=[USER_ID], value_type=ValueType.INT64, description="a shopper")
    source = FileSource(name=f"{VIEW}_source", path=str((config.repo_dir / ROWS_PARQUET).resolve()),
                        timestamp_field=EVENT_TS)
    view = FeatureView(name=VIEW, entities=[user], ttl=timedelta(days=config.ttl_days), online=True, source=source,
                       schema=[Field(name=USER_ID, dtype=Int64)] + [Field(name=n, dtype=kinds[k]) for n, k in FIELDS.items()],
                       description="per-user click/order lifts, profile, history and features (onevision)")
    return user, view


def feature_refs() -> list[str]:
    return [f"{VIEW}:{name}" for name in FIELDS]
