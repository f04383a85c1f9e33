"""Synthetic multi-view e-commerce world: catalogue, users, sessions, ground-truth behaviour."""
from onevision.world.config import DriftConfig, WorldConfig, parse_discrepancy
from onevision.world.io import World, generate_world, load_world

__all__ = ["DriftConfig", "World", "WorldConfig", "generate_world", "load_world", "parse_discrepancy"]
