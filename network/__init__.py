"""The DLKUNet-S/M/L models; see ``network.dlkunet``."""

from network.dlkunet import MODELS, DLKUNet, canonical_name, get_model

__all__ = ["MODELS", "DLKUNet", "canonical_name", "get_model"]
