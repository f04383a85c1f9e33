"""User features served online through Feast: the per-user rows the serving paths read, a Feast repo defined in
code (local provider, SQLite online store by default, Redis for clusters), the materialiser that writes them and
a reader with a deadline that falls back to the non-personalised path.

Importing this package does not import feast (a second of start-up and more); the modules that talk to Feast
(`repo`, `materialize`, `reader`) import it inside their functions.
"""
from onevision.featurestore.source import UserFeatureSource

__all__ = ["UserFeatureSource"]
