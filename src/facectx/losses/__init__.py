"""Loss terms (pure functions) and the bundles that weight them."""

from facectx.losses.cascade import CascadeLoss
from facectx.losses.frozen import FrozenNets

__all__ = ["CascadeLoss", "FrozenNets"]
