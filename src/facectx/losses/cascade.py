"""The cascaded GAN's loss (paper eq. 6): the one place where loss weights are applied.

For every block size s, with G_s the pasted output, I_s the ground truth and D_s its
discriminator::

    L_s = lambda_pixel * L_pixel + lambda_pc * L_pc + lambda_adv * L_adv
          + lambda_id * L_id + lambda_tv * L_tv

and the generator total is the sum over blocks. A term whose weight is 0, or whose network is
None, is not computed at all. Every computed term is logged raw (``g{s}/<term>``) and weighted
(``g{s}/<term>_w``); discriminator terms as ``d{s}/real`` and ``d{s}/fake``.
"""

from __future__ import annotations

from torch import Tensor, nn

from facectx.losses import terms
from facectx.losses.frozen import FrozenNets


class CascadeLoss(FrozenNets):
    """Per-block weighted loss for the cascaded GAN.

    Args:
        pixel: "l1" (paper) or "l2" (ablation).
        lambda_pixel: weight of the pixel term (1 in the paper's eq. 6).
        lambda_pc: lambda_1, LPIPS perceptual term (paper: 1).
        lambda_adv: lambda_2, LSGAN generator term (paper: 0.1).
        lambda_id: lambda_3, identity-feature MSE (paper: 10).
        lambda_tv: lambda_4, total variation (paper: 1e-6).
        lpips: network ``(a, b) -> (B,)`` distances on [-1, 1] images, or None to disable.
        identity: network ``x -> (B, D)`` features on canonical [-1, 1] images, or None.
        lpips_min_size: LPIPS only on blocks at least this large (paper: 32).
        identity_min_size: identity term only on blocks at least this large (paper: all, 8).
        adv_target: c in eq. 3 (1 = "real").
        real_label: smoothed target for real images in the discriminator loss (one-sided).
        fake_label: target for fake images in the discriminator loss.
        use_valid_mask: restrict the pixel term to pixels that came from the source photo.
    """

    def __init__(
        self,
        pixel: str = "l1",
        lambda_pixel: float = 1.0,
        lambda_pc: float = 1.0,
        lambda_adv: float = 0.1,
        lambda_id: float = 10.0,
        lambda_tv: float = 1e-6,
        lpips: nn.Module | None = None,
        identity: nn.Module | None = None,
        lpips_min_size: int = 32,
        identity_min_size: int = 8,
        adv_target: float = 1.0,
        real_label: float = 0.9,
        fake_label: float = 0.0,
        use_valid_mask: bool = True,
    ) -> None:
        super().__init__()
        if pixel not in terms.PIXEL_LOSSES:
            raise ValueError(f"pixel must be one of {sorted(terms.PIXEL_LOSSES)}, got {pixel!r}")
        self.pixel = pixel
        self.weights = {
            "pixel": float(lambda_pixel),
            "pc": float(lambda_pc),
            "adv": float(lambda_adv),
            "id": float(lambda_id),
            "tv": float(lambda_tv),
        }
        self.frozen("lpips", lpips if self.weights["pc"] > 0 else None)
        self.frozen("identity", identity if self.weights["id"] > 0 else None)
        self.lpips_min_size = lpips_min_size
        self.identity_min_size = identity_min_size
        self.adv_target = adv_target
        self.real_label = real_label
        self.fake_label = fake_label
        self.use_valid_mask = use_valid_mask

    @property
    def uses_adversarial(self) -> bool:
        return self.weights["adv"] > 0

    def active_terms(self, size: int) -> list[str]:
        """Names of the terms computed for a block of this size."""
        out = []
        if self.weights["pixel"] > 0:
            out.append("pixel")
        if self.get_frozen("lpips") is not None and size >= self.lpips_min_size:
            out.append("pc")
        if self.uses_adversarial:
            out.append("adv")
        if self.get_frozen("identity") is not None and size >= self.identity_min_size:
            out.append("id")
        if self.weights["tv"] > 0:
            out.append("tv")
        return out

    def block_terms(
        self, size: int, fake: Tensor, real: Tensor, d_fake: Tensor | None, valid: Tensor | None
    ) -> dict[str, Tensor]:
        """Raw (unweighted) terms of one block."""
        raw: dict[str, Tensor] = {}
        for name in self.active_terms(size):
            if name == "pixel":
                w = valid if self.use_valid_mask else None
                raw[name] = terms.PIXEL_LOSSES[self.pixel](fake, real, w)
            elif name == "pc":
                raw[name] = terms.perceptual(self.get_frozen("lpips"), fake, real)
            elif name == "adv":
                if d_fake is None:
                    raise ValueError(f"block {size}: adversarial term active but no D output given")
                raw[name] = terms.lsgan_generator(d_fake, self.adv_target)
            elif name == "id":
                net = self.get_frozen("identity")
                raw[name] = terms.identity_mse(net(fake), net(real).detach())
            elif name == "tv":
                raw[name] = terms.total_variation(fake)
        return raw

    def generator_loss(
        self,
        fake: dict[int, Tensor],
        real: dict[int, Tensor],
        d_fake: dict[int, Tensor] | None = None,
        valid: dict[int, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted sum over blocks and terms, and the raw/weighted logs."""
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for size, out in fake.items():
            raw = self.block_terms(
                size,
                out,
                real[size],
                None if d_fake is None else d_fake.get(size),
                None if valid is None else valid.get(size),
            )
            block_total = None
            for name, value in raw.items():
                weighted = self.weights[name] * value
                logs[f"g{size}/{name}"] = value.detach()
                logs[f"g{size}/{name}_w"] = weighted.detach()
                block_total = weighted if block_total is None else block_total + weighted
            if block_total is None:
                raise ValueError("every loss term is switched off; nothing to train")
            logs[f"g{size}/total"] = block_total.detach()
            total = block_total if total is None else total + block_total
        assert total is not None, "no blocks"
        logs["g/total"] = total.detach()
        return total, logs

    def discriminator_loss(
        self, d_real: dict[int, Tensor], d_fake: dict[int, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Sum over blocks of the LSGAN real and fake terms (separate minibatches)."""
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for size in d_real:
            real_t = terms.lsgan_discriminator(d_real[size], self.real_label)
            fake_t = terms.lsgan_discriminator(d_fake[size], self.fake_label)
            logs[f"d{size}/real"] = real_t.detach()
            logs[f"d{size}/fake"] = fake_t.detach()
            logs[f"d{size}/out_real"] = d_real[size].detach().mean()
            logs[f"d{size}/out_fake"] = d_fake[size].detach().mean()
            block = 0.5 * (real_t + fake_t)
            total = block if total is None else total + block
        assert total is not None, "no discriminators"
        logs["d/total"] = total.detach()
        return total, logs
