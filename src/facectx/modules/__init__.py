"""LightningModules wrapping the plain models in facectx.zoo."""
