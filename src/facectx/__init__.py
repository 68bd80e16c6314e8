"""facectx: face hallucination research library.

Importing the package is cheap: heavy submodules (torch models, Lightning, dlib) load on use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
