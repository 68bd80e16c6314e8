"""Person segmentation with a pretrained network from the ``facectx.pretrained`` registry.

The default entry, ``deeplabv3-person``, is torchvision's DeepLabV3 with a MobileNetV3-Large
backbone trained on the COCO subset with the 20 Pascal VOC classes; class 15 is "person".
Its weight file (``deeplabv3_mobilenet_v3_large-fc3c493d.pth``, 42 MB) follows the registry's
rule: explicit ``path``, ``$FACECTX_WEIGHTS``, the torch hub cache, or a download when allowed.
Without it, :class:`NetworkSegmenter` raises :class:`SegmenterNotAvailableError` saying where
to put it and that ``segmenter=grabcut`` works offline.
"""

from __future__ import annotations

import numpy as np

from facectx.segment.base import Segmenter, SegmenterNotAvailableError, check_inputs

DEFAULT_ENTRY = "deeplabv3-person"
VOC_PERSON = 15


def _build_deeplab(fetch, **kwargs):
    """Registry builder: DeepLabV3-MobileNetV3-Large (21 VOC classes), logits (B, 21, H, W)."""
    import torch
    from torch import nn
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    from facectx.pretrained.registry import load_state_dict

    net = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True)
    path = fetch("weights")
    if path is not None:
        net.load_state_dict(load_state_dict(path))

    class Logits(nn.Module):
        """RGB in [0, 1] (B, 3, H, W) -> class logits (ImageNet normalisation inside)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def forward(self, x):
            return self.net((x - self.mean) / self.std)["out"]

    return Logits()


def ensure_registered() -> None:
    """Register ``deeplabv3-person`` in ``facectx.pretrained`` if it is not there yet."""
    from facectx.pretrained.registry import Entry, WeightsFile, get_entry, register

    try:
        get_entry(DEFAULT_ENTRY)
        return
    except KeyError:
        pass
    register(
        Entry(
            name=DEFAULT_ENTRY,
            builder=_build_deeplab,
            files={
                "weights": WeightsFile(
                    filename="deeplabv3_mobilenet_v3_large-fc3c493d.pth",
                    source="torchvision "
                    "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
                    url="https://download.pytorch.org/models/"
                    "deeplabv3_mobilenet_v3_large-fc3c493d.pth",
                    sha256="fc3c493d",
                )
            },
            summary="DeepLabV3-MobileNetV3-Large, VOC classes (15 = person)",
            input="RGB in [0, 1], (B, 3, H, W), any size",
            output="(B, 21, H, W) logits",
        )
    )


class NetworkSegmenter(Segmenter):
    """Person probability from a segmentation network (softmax of the person class).

    Args:
        name: ``facectx.pretrained`` entry returning (B, C, H, W) logits for RGB in [0, 1].
        path: explicit weight file; None = the registry's resolution rule.
        person_class: index of the person class in the logits (15 for VOC labels).
        input_size: the portrait is resized to this side before the network (DeepLab was
            trained on ~520 px images; 128 px portraits are too small for it); None = as is.
        device: torch device.
        allow_random_init: build with random weights when the file is missing (tests only).
        download: False never downloads; None follows ``FACECTX_OFFLINE``.
    """

    def __init__(
        self,
        name: str = DEFAULT_ENTRY,
        path: str | None = None,
        person_class: int = VOC_PERSON,
        input_size: int | None = 384,
        device: str = "cpu",
        allow_random_init: bool = False,
        download: bool | None = None,
    ) -> None:
        from facectx.pretrained import WeightsNotFoundError, load

        self.name = name
        if name == DEFAULT_ENTRY:
            ensure_registered()
        try:
            self.net = load(name, path, allow_random_init=allow_random_init, download=download)
        except KeyError as e:
            raise SegmenterNotAvailableError(
                f"segmentation network {name!r} is not in the facectx.pretrained registry ({e}). "
                "Use segmenter=grabcut (offline) or register the network first."
            ) from e
        except WeightsNotFoundError as e:
            raise SegmenterNotAvailableError(
                f"{e}\nThe network segmenter cannot run without these weights; "
                "segmenter=grabcut needs none."
            ) from e
        self.person_class = int(person_class)
        self.input_size = input_size
        self.device = device
        self.net = self.net.to(device)

    def __call__(self, image: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        image, face = check_inputs(image, face_mask)
        h, w = face.shape
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255.0).to(self.device)
        if self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear")
        with torch.inference_mode():
            logits = self.net(x)
            if logits.ndim != 4 or logits.shape[1] <= self.person_class:
                raise ValueError(
                    f"{self.name} returned {tuple(logits.shape)}; expected (B, C > "
                    f"{self.person_class}, H, W) logits"
                )
            prob = logits.softmax(1)[:, self.person_class : self.person_class + 1]
            prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)
        alpha = prob[0, 0].float().cpu().numpy().clip(0.0, 1.0)
        alpha[face] = 1.0
        return alpha.astype(np.float32)

    def __repr__(self) -> str:
        return f"NetworkSegmenter(name={self.name!r}, person_class={self.person_class})"
