"""OneVision: generative visual product search (VRQ semantic IDs + a SID generator)."""
__version__ = "0.1.0"
