"""The cascaded GAN's loss (paper eq. 6): the one place where loss weights are applied.

For every block size s, with G_s the pasted output, I_s the ground truth and D_s its
discriminator::

    L_s = lambda_pixel * L_pixel + lambda_pc * L_pc + lambda_adv * L_adv
          + lambda_id * L_id + lambda_tv * L_tv [+ lambda_fm * L_fm + lambda_ssim * L_ssim]

and the generator total is the sum over blocks. A term whose weight is 0, or whose network is
None, is not computed at all. Every computed term is logged raw (``g{s}/<term>``) and weighted
(``g{s}/<term>_w``); discriminator terms as ``d{s}/real`` and ``d{s}/fake``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from facectx.losses import terms
from facectx.losses.frozen import FrozenNets
from facectx.zoo.patch_discriminator import as_scales, patch_weights


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
        adversarial: "lsgan" (paper eq. 3, on D's output as it is) or "hinge" (on raw logits;
            use with a logit discriminator such as ``PatchDiscriminator``).
        lambda_fm: weight of the discriminator feature-matching term (0 = off; needs a
            discriminator that returns its features).
        adv_min_size: adversarial and feature-matching terms only on blocks at least this large
            (smaller blocks only guide the next one; paper: all, 8).
        adv_context_only: weight every patch's adversarial term by the fraction of the patch
            that is context (mask = 0), so face patches, pasted from the input, do not count.
        identity_batch: identity term on the first N images of each batch only (None = all):
            the identity network is the most expensive loss network on a CPU, and the face,
            which carries most of the identity, is pasted from the input anyway.
        lambda_ssim: weight of 1 - SSIM (0 = off; not in the paper): pulls the context
            towards the structure the evaluation's SSIM rewards (docs/results.md).
        ssim_min_size: SSIM term only on blocks at least this large (its window is 11 px).
        ssim_start: training iteration from which the SSIM term is on (0 = from the start);
            ``lfw_cpu`` adds it for the last 2,000 iterations only.
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
        adversarial: str = "lsgan",
        lambda_fm: float = 0.0,
        adv_min_size: int = 8,
        adv_context_only: bool = False,
        identity_batch: int | None = None,
        lambda_ssim: float = 0.0,
        ssim_min_size: int = 64,
        ssim_start: int = 0,
    ) -> None:
        super().__init__()
        if adversarial not in ("lsgan", "hinge"):
            raise ValueError(f"adversarial must be 'lsgan' or 'hinge', got {adversarial!r}")
        if pixel not in terms.PIXEL_LOSSES:
            raise ValueError(f"pixel must be one of {sorted(terms.PIXEL_LOSSES)}, got {pixel!r}")
        self.pixel = pixel
        self.weights = {
            "pixel": float(lambda_pixel),
            "pc": float(lambda_pc),
            "adv": float(lambda_adv),
            "id": float(lambda_id),
            "tv": float(lambda_tv),
            "fm": float(lambda_fm),
            "ssim": float(lambda_ssim),
        }
        if ssim_min_size < 11:
            raise ValueError(f"ssim_min_size must be >= 11 (the SSIM window), got {ssim_min_size}")
        self.ssim_min_size = ssim_min_size
        if ssim_start < 0:
            raise ValueError(f"ssim_start must be >= 0, got {ssim_start}")
        # iteration from which a term is on (terms not listed: from the start)
        self.starts = {"ssim": int(ssim_start)}
        self.frozen("lpips", lpips if self.weights["pc"] > 0 else None)
        self.frozen("identity", identity if self.weights["id"] > 0 else None)
        self.lpips_min_size = lpips_min_size
        self.identity_min_size = identity_min_size
        self.adv_target = adv_target
        self.real_label = real_label
        self.fake_label = fake_label
        self.use_valid_mask = use_valid_mask
        self.adversarial = adversarial
        self.adv_min_size = adv_min_size
        self.adv_context_only = adv_context_only
        if identity_batch is not None and identity_batch < 1:
            raise ValueError(f"identity_batch must be >= 1 or null, got {identity_batch}")
        self.identity_batch = identity_batch

    @property
    def uses_adversarial(self) -> bool:
        """Whether any discriminator runs (adversarial or feature-matching term)."""
        return self.weights["adv"] > 0 or self.weights["fm"] > 0

    def uses_discriminator_at(self, size: int) -> bool:
        """Whether block ``size`` has adversarial/feature-matching terms (and so a D step)."""
        return self.uses_adversarial and size >= self.adv_min_size

    def _scale_mean(self, d_out: Tensor | list, region: Tensor | None, term) -> Tensor:
        """``term(logits, weight)`` averaged over the discriminator's scales; the weight is each
        patch's share of context when ``adv_context_only``."""
        scales = as_scales(d_out)
        total = 0.0
        for feats in scales:
            logits = feats[-1]
            w = (
                patch_weights(region, logits)
                if region is not None and self.adv_context_only
                else None
            )
            total = total + term(logits, w)
        return total / len(scales)

    def _adv_g(self, d_fake: Tensor | list, region: Tensor | None) -> Tensor:
        if self.adversarial == "hinge":
            return self._scale_mean(d_fake, region, terms.hinge_generator)
        return self._scale_mean(
            d_fake, region, lambda x, w: terms.weighted_lsgan(x, self.adv_target, w)
        )

    def _adv_d(self, d_out: Tensor | list, real: bool, region: Tensor | None) -> Tensor:
        if self.adversarial == "hinge":
            return self._scale_mean(
                d_out, region, lambda x, w: terms.hinge_discriminator(x, real, w)
            )
        target = self.real_label if real else self.fake_label
        return self._scale_mean(d_out, region, lambda x, w: terms.weighted_lsgan(x, target, w))

    def active_terms(
        self, size: int, adversarial: bool = True, iteration: int | None = None
    ) -> list[str]:
        """Names of the terms computed for a block of this size (``adversarial=False``: without
        the discriminator's terms, e.g. during a warm start; ``iteration``: leave out terms
        that start later, see ``starts``; None = every term that is switched on)."""
        out = []
        if self.weights["pixel"] > 0:
            out.append("pixel")
        if self.get_frozen("lpips") is not None and size >= self.lpips_min_size:
            out.append("pc")
        if adversarial and self.weights["adv"] > 0 and size >= self.adv_min_size:
            out.append("adv")
        if adversarial and self.weights["fm"] > 0 and size >= self.adv_min_size:
            out.append("fm")
        if self.get_frozen("identity") is not None and size >= self.identity_min_size:
            out.append("id")
        if self.weights["tv"] > 0:
            out.append("tv")
        if self.weights["ssim"] > 0 and size >= self.ssim_min_size:
            out.append("ssim")
        if iteration is not None:
            out = [t for t in out if iteration >= self.starts.get(t, 0)]
        return out

    def block_terms(
        self,
        size: int,
        fake: Tensor,
        real: Tensor,
        d_fake: Tensor | list | None,
        valid: Tensor | None,
        d_real: Tensor | list | None = None,
        region: Tensor | None = None,
        adversarial: bool = True,
        iteration: int | None = None,
    ) -> dict[str, Tensor]:
        """Raw (unweighted) terms of one block. ``d_real`` (D on the real image) is needed by
        the feature-matching term; ``region`` (B,1,H,W) is the context (1 - mask) for
        ``adv_context_only``; ``iteration`` switches scheduled terms on (``starts``)."""
        raw: dict[str, Tensor] = {}
        photo = valid if self.use_valid_mask else None  # pixel weights: those from the photo
        for name in self.active_terms(size, adversarial, iteration):
            if name == "pixel":
                raw[name] = terms.PIXEL_LOSSES[self.pixel](fake, real, photo)
            elif name == "pc":
                raw[name] = terms.perceptual(self.get_frozen("lpips"), fake, real)
            elif name == "adv":
                if d_fake is None:
                    raise ValueError(f"block {size}: adversarial term active but no D output given")
                raw[name] = self._adv_g(d_fake, region)
            elif name == "fm":
                if d_fake is None or d_real is None:
                    raise ValueError(f"block {size}: feature matching needs D on fake and real")
                raw[name] = terms.feature_matching(as_scales(d_fake), as_scales(d_real))
            elif name == "id":
                net = self.get_frozen("identity")
                n = self.identity_batch or fake.shape[0]
                with torch.no_grad():
                    target = net(real[:n])
                raw[name] = terms.identity_mse(net(fake[:n]), target)
            elif name == "tv":
                raw[name] = terms.total_variation(fake)
            elif name == "ssim":
                raw[name] = terms.ssim_distance(fake, real, photo)
        return raw

    def generator_loss(
        self,
        fake: dict[int, Tensor],
        real: dict[int, Tensor],
        d_fake: dict[int, Tensor] | None = None,
        valid: dict[int, Tensor] | None = None,
        d_real: dict[int, Tensor] | None = None,
        context: dict[int, Tensor] | None = None,
        adversarial: bool = True,
        iteration: int | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted sum over blocks and terms, and the raw/weighted logs (``adversarial=False``
        leaves out the discriminator's terms; ``iteration`` the terms scheduled to start
        later, None = none left out).

        ``d_real`` (D outputs on the real images) feeds feature matching; ``context``
        ({size: 1 - mask}) the ``adv_context_only`` weighting."""
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for size, out in fake.items():
            raw = self.block_terms(
                size,
                out,
                real[size],
                None if d_fake is None else d_fake.get(size),
                None if valid is None else valid.get(size),
                None if d_real is None else d_real.get(size),
                None if context is None else context.get(size),
                adversarial,
                iteration,
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
        self,
        d_real: dict[int, Tensor],
        d_fake: dict[int, Tensor],
        context: dict[int, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Sum over blocks of the real and fake terms (separate minibatches; LSGAN with the
        smoothed labels, or hinge), each averaged over the discriminator's scales."""
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for size in d_real:
            region = None if context is None else context.get(size)
            real_t = self._adv_d(d_real[size], True, region)
            fake_t = self._adv_d(d_fake[size], False, region)
            logs[f"d{size}/real"] = real_t.detach()
            logs[f"d{size}/fake"] = fake_t.detach()
            logs[f"d{size}/out_real"] = as_scales(d_real[size])[0][-1].detach().mean()
            logs[f"d{size}/out_fake"] = as_scales(d_fake[size])[0][-1].detach().mean()
            block = 0.5 * (real_t + fake_t)
            total = block if total is None else total + block
        assert total is not None, "no discriminators"
        logs["d/total"] = total.detach()
        return total, logs
