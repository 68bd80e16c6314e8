"""Prepared-face datasets, manifests and the Lightning data module."""
