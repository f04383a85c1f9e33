"""Synthetic multi-view e-commerce world: catalogue, users, sessions, ground-truth behaviour.

Names are imported on first use, so the configs (`onevision.world.config`) load without numpy and pandas: the
CLI takes its defaults from them and `onevision --help` stays fast."""
from onevision.lazy import lazy_exports

_EXPORTS = {
    "DriftConfig": "onevision.world.config", "WorldConfig": "onevision.world.config",
    "parse_discrepancy": "onevision.world.config",
    "World": "onevision.world.io", "generate_world": "onevision.world.io", "load_world": "onevision.world.io",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
