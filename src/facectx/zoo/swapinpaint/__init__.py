"""SwapInpaint (Li et al., IEEE TCSVT 2022): identity-specific face inpainting with a reference.

Plain ``nn.Module``s, no Lightning (``facectx.modules.swapinpaint`` trains them):

* ``ContentInference`` (C): one-path PICNet-style VAE with partial convolutions, 4 output scales;
* ``SwapGenerator`` (G): attribute U-Net A + 8 AAD residual blocks (FaceShifter's AEI-Net);
* ``MultiScalePatchDiscriminator``: pix2pixHD/FaceShifter multi-scale PatchGAN, for C and G;
* ``SwapInpaint``: C and G together, for inference.

See docs/swapinpaint.md.
"""

from facectx.zoo.swapinpaint.aad import (
    AADGenerator,
    AADLayer,
    AADResBlock,
    AttributeEncoder,
    SwapGenerator,
    SwapOutput,
)
from facectx.zoo.swapinpaint.content import ContentInference, ContentOutput, paste
from facectx.zoo.swapinpaint.discriminator import MultiScalePatchDiscriminator, PatchDiscriminator
from facectx.zoo.swapinpaint.model import SwapInpaint
from facectx.zoo.swapinpaint.partial import PartialConv2d, partial_avg_pool2

__all__ = [
    "AADGenerator",
    "AADLayer",
    "AADResBlock",
    "AttributeEncoder",
    "ContentInference",
    "ContentOutput",
    "MultiScalePatchDiscriminator",
    "PartialConv2d",
    "PatchDiscriminator",
    "SwapGenerator",
    "SwapInpaint",
    "SwapOutput",
    "partial_avg_pool2",
    "paste",
]
