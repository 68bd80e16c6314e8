"""Person segmenters for background replacement (``facectx.background``).

* :class:`GrabCutSegmenter` (default, offline): OpenCV GrabCut seeded with the face hull as
  sure foreground and the image border as sure background, united with a gradient-saliency
  outer contour (the paper's supplement §4).
* :class:`NetworkSegmenter`: a semantic segmentation network from ``facectx.pretrained``
  (DeepLabV3-MobileNetV3 "person" class by default); raises
  :class:`SegmenterNotAvailableError` with instructions when its weights are absent.

Every segmenter is ``Segmenter.__call__(image uint8 (H, W, 3), face_mask (H, W)) -> (H, W)
float32 in [0, 1]``. Importing this package loads no network.
"""

from facectx.segment.base import Segmenter, SegmenterNotAvailableError, check_inputs
from facectx.segment.grabcut import GrabCutSegmenter, saliency_region
from facectx.segment.network import NetworkSegmenter

__all__ = [
    "GrabCutSegmenter",
    "NetworkSegmenter",
    "Segmenter",
    "SegmenterNotAvailableError",
    "check_inputs",
    "saliency_region",
]
