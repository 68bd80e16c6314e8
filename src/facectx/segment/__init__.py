"""Person segmenters for background replacement (``facectx.background``).

* :class:`GrabCutSegmenter` (default, offline): OpenCV GrabCut seeded with the face hull as
  sure foreground and the image border as sure background, united with a gradient-saliency
  outer contour (the paper's supplement §4).
* :class:`NetworkSegmenter`: a semantic segmentation network from ``facectx.pretrained``
  (DeepLabV3-MobileNetV3 "person" class by default); raises
  :class:`SegmenterNotAvailableError` with instructions when its weights are absent.

:func:`replace_background` puts a portrait on a new background under a segmenter's alpha.

Every segmenter is ``Segmenter.__call__(image uint8 (H, W, 3), face_mask (H, W)) -> (H, W)
float32 in [0, 1]``. Importing this package loads no network.
"""

from facectx.segment.base import Segmenter, SegmenterNotAvailableError, check_inputs
from facectx.segment.grabcut import GrabCutSegmenter, saliency_region
from facectx.segment.network import NetworkSegmenter
from facectx.segment.replace import Replaced, laplacian_blend, replace_background

__all__ = [
    "GrabCutSegmenter",
    "NetworkSegmenter",
    "Replaced",
    "Segmenter",
    "SegmenterNotAvailableError",
    "check_inputs",
    "laplacian_blend",
    "replace_background",
    "saliency_region",
]
