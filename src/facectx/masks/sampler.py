"""A mixture of mask kinds, one kind drawn per sample, and batching of any mask callable."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from facectx.masks.ops import as_generator

MaskFn = Callable[..., Tensor]
"""``(size, landmarks=None, generator=None) -> (1, H, W)`` float keep mask."""


class MaskSampler:
    """Pick one mask kind per call with the given probabilities, then draw it.

    Both the choice and the drawn mask come from the same generator, so a seeded generator gives
    the same kind and mask every time. Example (SwapInpaint training, ``conf/mask/mixed.yaml``)::

        MaskSampler(kinds={"center": 0.5, "irregular": 0.5},
                    masks={"center": CenterMask(), "irregular": IrregularMask()})

    Args:
        kinds: name -> probability (>= 0, normalised to sum to 1; 0 disables a kind).
        masks: name -> mask callable; must have exactly the names in ``kinds``.
    """

    def __init__(self, kinds: Mapping[str, float], masks: Mapping[str, MaskFn]):
        kinds = {str(k): float(p) for k, p in kinds.items()}
        if set(kinds) != set(masks):
            raise ValueError(
                f"MaskSampler: kinds {sorted(kinds)} and masks {sorted(masks)} must name the same kinds"
            )
        if any(p < 0 for p in kinds.values()) or sum(kinds.values()) <= 0:
            raise ValueError(
                f"MaskSampler: probabilities must be >= 0 with a positive sum, got {kinds}"
            )
        self.names = sorted(kinds)  # sorted: the draw does not depend on the config's key order
        total = sum(kinds.values())
        self.probabilities = {k: kinds[k] / total for k in self.names}
        self.masks = dict(masks)
        self._cdf = torch.tensor(
            [self.probabilities[k] for k in self.names], dtype=torch.float64
        ).cumsum(0)

    def sample(
        self,
        size: int | tuple[int, int],
        landmarks: Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> tuple[str, Tensor]:
        """(kind name, (1, H, W) keep mask)."""
        generator = as_generator(generator, "MaskSampler")
        u = torch.rand((), generator=generator, dtype=torch.float64)
        i = min(int(torch.searchsorted(self._cdf, u, right=True)), len(self.names) - 1)
        name = self.names[i]
        return name, self.masks[name](size, landmarks, generator)

    def __call__(
        self,
        size: int | tuple[int, int],
        landmarks: Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> Tensor:
        """(1, H, W) keep mask of a randomly chosen kind."""
        return self.sample(size, landmarks, generator)[1]

    def __repr__(self) -> str:
        return f"MaskSampler(kinds={self.probabilities}, masks={self.masks})"


def sample_batch(
    mask: MaskFn,
    size: int | tuple[int, int],
    n: int | None = None,
    landmarks: Tensor | None = None,
    generator: torch.Generator | int | None = None,
) -> Tensor:
    """(B, 1, H, W) masks from any mask callable: one per row of ``landmarks`` (B, 68, 2), or
    ``n`` landmark-free masks. Draws in order from one generator (deterministic under a seed)."""
    if isinstance(generator, int) and not isinstance(generator, bool):
        generator = torch.Generator().manual_seed(generator)
    if landmarks is not None:
        if n is not None and n != len(landmarks):
            raise ValueError(f"sample_batch: n={n} but {len(landmarks)} landmark sets")
        return torch.stack([mask(size, lm, generator) for lm in landmarks])
    if n is None:
        raise ValueError("sample_batch: pass n (batch size) or landmarks (B, 68, 2)")
    return torch.stack([mask(size, None, generator) for _ in range(n)])
