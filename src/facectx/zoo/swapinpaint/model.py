"""The trainable part of SwapInpaint as one module: content inference C + generative module G.

The identity encoder I is a frozen pretrained network (``facectx.pretrained.load``) and lives
outside, so checkpoints hold only what is trained. Inference (paper Fig. 3)::

    X̂   = C(X̃, M)                 known pixels kept exactly
    Y_sp = G(X̂, z_id),  z_id = I(R)
    Y    = M·X̂ + (1 − M)·Y_sp      the training output (the prediction blends Y_sp instead)
"""

from __future__ import annotations

from torch import Tensor, nn

from facectx.zoo.swapinpaint.aad import SwapGenerator
from facectx.zoo.swapinpaint.content import ContentInference


class SwapInpaint(nn.Module):
    """C and G together.

    Args:
        content: the content inference VAE C.
        swap: the generative module G (attribute encoder + AAD generator); same size as C.
    """

    def __init__(self, content: ContentInference, swap: SwapGenerator) -> None:
        super().__init__()
        if content.size != swap.size:
            raise ValueError(
                f"SwapInpaint: content size {content.size} != generator size {swap.size}"
            )
        self.content = content
        self.swap = swap

    @property
    def size(self) -> int:
        return self.content.size

    @property
    def config(self) -> dict:
        """Constructor arguments of C and G, to rebuild from a checkpoint."""
        return {"content": self.content.config, "swap": self.swap.config}

    @classmethod
    def from_config(cls, config: dict) -> SwapInpaint:
        return cls(ContentInference(**config["content"]), SwapGenerator(**config["swap"]))

    def forward(self, masked: Tensor, mask: Tensor, z_id: Tensor) -> dict[str, Tensor]:
        """``{"content": X̂, "swapped": Y_sp, "output": Y}``, each (B, 3, S, S) in [-1, 1].

        Runs C in whatever mode the module is in: call ``.eval()`` for the deterministic mean.
        """
        x_hat = self.content(masked, mask).image
        y_sp = self.swap(x_hat, z_id).swapped
        return {"content": x_hat, "swapped": y_sp, "output": self.swap.compose(y_sp, x_hat, mask)}


__all__ = ["SwapInpaint"]
