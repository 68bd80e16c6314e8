"""facectx: face hallucination research library.

Importing the package is cheap: heavy submodules (torch models, Lightning, dlib) load on use.
"""

from facectx._version import __version__

__all__ = ["Hallucinator", "Inpainter", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import facectx` stays cheap (no torch import).
    if name == "Hallucinator":
        from facectx.inference import Hallucinator

        return Hallucinator
    if name == "Inpainter":
        from facectx.inference import Inpainter

        return Inpainter
    raise AttributeError(f"module 'facectx' has no attribute {name!r}")
