"""SwapInpaint's losses (paper eqs. 2–11): pure terms, and the bundle that weights them.

Content inference C (eq. 4 with the multi-level reconstruction of eq. 11)::

    L_C = λ_adv,C · L_gan + λ_rec,C · Σ_k mean|x̂^k − x^k| + λ_KL · KL(q(z | X̃, M) ‖ N(0, I))

Generative module G (eq. 6)::

    L_G = λ_adv · L_gan + λ1 · L_rec + λ2 · L_id + λ3 · L_att
    L_rec = ½ mean_{known}(Y_sp − X̂)²       over same-person pairs only (eq. 9, M = keep mask)
    L_id  = 1 − cos(I(Y_sp), I(R))                                        (eq. 7)
    L_id_out = 1 − cos(I(Y), I(R))     (not in the paper; off by default: the identity of the
                                        composite Y, the image a user gets and we score)
    L_att = ½ Σ_k mean(A_k(Y_sp) − A_k(X̂))² + ½ Σ_k mean(A_k(Y) − A_k(X̂))²   (eq. 10)
    L_hole = mean_{hole}|Y_sp − X|    (not in the paper; off by default: same-person pairs
                                        only, the real face X in the hole the identity fills)

Norms are means over elements (as PICNet's and FaceShifter's code do), not sums, so the weights
do not depend on the image size. ``SwapInpaintLoss`` follows ``CascadeLoss``'s contract: it holds
the frozen network its terms need (the identity encoder I), decides which terms run (a weight of
0 computes nothing), is the only place weights are applied, and logs every computed term raw
(``c/rec``) and weighted (``c/rec_w``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.losses import terms
from facectx.losses.frozen import FrozenNets
from facectx.zoo.pyramid import downsample_keep, weighted_blur

ADV_KINDS = ("bce", "hinge", "lsgan")
IDENTITY_GRADS = ("rgb", "gray")


# ---- pure terms -------------------------------------------------------------------------------
def kl_standard_normal(mu: Tensor, std: Tensor) -> Tensor:
    """KL(N(mu, std²) ‖ N(0, 1)) per latent element, averaged over all elements (eq. 5):
    ``mean(½(mu² + std² − 1) − log std)``. 0 exactly when mu = 0 and std = 1."""
    if mu.shape != std.shape:
        raise ValueError(f"kl_standard_normal: mu {tuple(mu.shape)} vs std {tuple(std.shape)}")
    return (0.5 * (mu.square() + std.square() - 1.0) - torch.log(std)).mean()


def downsample_image(x: Tensor, size: int) -> Tensor:
    """Bilinear antialiased downsampling to ``size``×``size`` (identity at the same size), as
    ``facectx.zoo.pyramid`` builds its levels."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def multiscale_l1(
    outputs: Sequence[Tensor], target: Tensor, weight: Tensor | None = None
) -> Tensor:
    """Multi-level reconstruction (eq. 11): Σ_k mean |x̂^k − x^k|, the target downsampled to each
    output's size. ``weight`` (B, 1, S, S), e.g. the valid-pixel mask, restricts every level to
    the pixels it covers (min-pooled: 1 only where the whole cell is 1)."""
    total = target.new_zeros(())
    for out in outputs:
        s = out.shape[-1]
        w = None if weight is None else downsample_keep(weight, s)
        total = total + terms.pixel_l1(out, downsample_image(target, s), w)
    return total


def _mean_over_same_pairs(err: Tensor, region: Tensor, same: Tensor) -> Tensor:
    """``err`` (B, C, S, S) averaged over ``region`` (B, 1, S, S) per image, then over the
    images with ``same`` = 1; 0 when there are none."""
    same = same.to(err.dtype).reshape(-1)
    w = region.expand_as(err)
    per_image = (err * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return (per_image * same).sum() / same.sum().clamp_min(1.0)


def masked_half_l2(pred: Tensor, target: Tensor, keep: Tensor, same: Tensor) -> Tensor:
    """Eq. 9: ``½ mean over known pixels of (pred − target)²`` per image, averaged over the
    same-person pairs (``same`` (B,) in {0, 1}); 0 when the batch has none.

    ``keep`` is the (B, 1, S, S) keep mask M: X̂ equals the real image only there (its hole was
    redrawn by C), so only there can a same-person Y_sp be asked to reproduce it.
    """
    return _mean_over_same_pairs(0.5 * (pred - target).square(), keep, same)


def hole_l1(pred: Tensor, target: Tensor, hole: Tensor, same: Tensor, blur: float = 0.0) -> Tensor:
    """``mean over hole pixels of |pred − target|`` per image, averaged over the same-person
    pairs (``same`` (B,) in {0, 1}); 0 when the batch has none.

    Only a same-person pair's real face is a fill the reference's identity agrees with; for
    another person's reference the real face is not the answer, so those pairs are left out.
    ``hole`` is (B, 1, S, S), 1 where the pixel was missing (and inside the photo). ``blur`` > 0
    compares Gaussian-blurred copies (σ in px, normalised at the image border): the term then
    ties the hole's colours and shading to the real face and leaves its detail to the other
    terms (a plain L1 pulls detail toward the mean of plausible faces, a smudge).
    """
    if blur > 0:
        both = torch.cat([pred, target])
        pred, target = weighted_blur(both, torch.ones_like(both[:, :1]), blur)[0].chunk(2)
    return _mean_over_same_pairs((pred - target).abs(), hole, same)


def gray_gradient(x: Tensor) -> Tensor:
    """``x`` unchanged in the forward pass; backward, each pixel's gradient is projected onto the
    gray axis (its mean over the channels, given to all three).

    A term computed on the result can make a pixel brighter or darker but cannot change its
    colour. Meant for the identity terms: a frozen recogniser's gradient asks for whatever
    moves its features, colour included, whether or not a face has that colour.
    """
    m = x.mean(dim=1, keepdim=True)
    return x.detach() + (m - m.detach())


def identity_cosine(feat_fake: Tensor, feat_ref: Tensor) -> Tensor:
    """Eq. 7: mean over the batch of ``1 − cos(feat_fake, feat_ref)``."""
    if feat_fake.shape != feat_ref.shape:
        raise ValueError(
            f"identity features differ in shape: {tuple(feat_fake.shape)} vs {tuple(feat_ref.shape)}"
        )
    return (1.0 - F.cosine_similarity(feat_fake, feat_ref, dim=1)).mean()


def attribute_l2(att_a: Sequence[Tensor], att_b: Sequence[Tensor]) -> Tensor:
    """Eq. 8: ``½ Σ_k mean (A_k(a) − A_k(b))²`` over the attribute levels."""
    if len(att_a) != len(att_b):
        raise ValueError(f"attribute_l2: {len(att_a)} vs {len(att_b)} levels")
    total = att_a[0].new_zeros(())
    for a, b in zip(att_a, att_b):
        total = total + (a - b).square().mean()
    return 0.5 * total


def double_attribute(
    att_swapped: Sequence[Tensor], att_output: Sequence[Tensor], att_content: Sequence[Tensor]
) -> Tensor:
    """Eq. 10: ``½(‖A(Y_sp) − A(X̂)‖² + ‖A(Y) − A(X̂)‖²)`` (each a level-wise mean, summed)."""
    return attribute_l2(att_swapped, att_content) + attribute_l2(att_output, att_content)


def _as_list(x: Tensor | Sequence[Tensor]) -> list[Tensor]:
    return [x] if isinstance(x, Tensor) else list(x)


def adversarial_generator(kind: str, d_fake: Tensor | Sequence[Tensor]) -> Tensor:
    """Generator GAN term, averaged over the discriminator's scales (and patches).

    ``bce``: non-saturating form of eq. 2, ``softplus(−D(G))``; ``hinge``: ``−D(G)``;
    ``lsgan``: ``(D(G) − 1)²``. ``d_fake`` holds raw logits.
    """
    outs = _as_list(d_fake)
    if kind == "bce":
        vals = [F.softplus(-o).mean() for o in outs]
    elif kind == "hinge":
        vals = [-o.mean() for o in outs]
    elif kind == "lsgan":
        vals = [terms.lsgan_generator(o, 1.0) for o in outs]
    else:
        raise ValueError(f"adversarial kind must be one of {ADV_KINDS}, got {kind!r}")
    return torch.stack(vals).mean()


def adversarial_discriminator(
    kind: str, d_real: Tensor | Sequence[Tensor], d_fake: Tensor | Sequence[Tensor]
) -> tuple[Tensor, Tensor]:
    """Discriminator GAN terms ``(real, fake)``, each averaged over scales and patches.

    ``bce`` (eq. 2): ``softplus(−D(x))``, ``softplus(D(G))``; ``hinge``: ``relu(1 − D(x))``,
    ``relu(1 + D(G))``; ``lsgan``: ``(D(x) − 1)²``, ``D(G)²``.
    """
    reals, fakes = _as_list(d_real), _as_list(d_fake)
    if kind == "bce":
        r = [F.softplus(-o).mean() for o in reals]
        f = [F.softplus(o).mean() for o in fakes]
    elif kind == "hinge":
        r = [F.relu(1.0 - o).mean() for o in reals]
        f = [F.relu(1.0 + o).mean() for o in fakes]
    elif kind == "lsgan":
        r = [terms.lsgan_discriminator(o, 1.0) for o in reals]
        f = [terms.lsgan_discriminator(o, 0.0) for o in fakes]
    else:
        raise ValueError(f"adversarial kind must be one of {ADV_KINDS}, got {kind!r}")
    return torch.stack(r).mean(), torch.stack(f).mean()


# ---- the bundle -------------------------------------------------------------------------------
class SwapInpaintLoss(FrozenNets):
    """Weights of both modules' losses, applied here and nowhere else.

    The loss holds the frozen identity encoder I (outside parameters and state dict) and
    computes I(Y_sp) itself; the module passes the outputs of trainable networks (discriminator
    logits, and G's attribute encoder for L_att) and asks ``uses_discriminator(part)`` whether
    to run a discriminator at all. A term whose weight is 0 is not computed.

    Args:
        lambda_content_rec: λ_rec of C, multi-level L1 (paper: 20).
        lambda_content_kl: λ_KL of C (paper: 20).
        lambda_content_adv: weight of C's GAN term (paper: 1, eq. 4).
        content_adv: GAN form for C: ``bce`` (eq. 2, non-saturating), ``hinge`` or ``lsgan``.
        lambda_adv: weight of G's GAN term (paper: 1, eq. 6).
        lambda_rec: λ1, same-person reconstruction of the known region (paper: 10).
        lambda_id: λ2, identity cosine distance of Y_sp (paper: 5).
        lambda_id_out: identity cosine distance of the composite Y (not in the paper, 0 = off).
            Eq. 7 scores the raw Y_sp, whose known region the attribute and reconstruction
            terms hold to the face; this term asks the hole itself to carry the reference.
        lambda_att: λ3, double attribute loss (paper: 10).
        lambda_hole: L1 of Y_sp to the real face inside the hole, same-person pairs only (not
            in the paper, 0 = off). Without it nothing ties the hole's colours to a real face:
            the identity term alone paints features that move the identity network (dark red
            blotches in mouths and nostrils at 1/8 width).
        hole_blur: σ in px of the Gaussian both sides of L_hole are blurred with (0 = plain
            L1): colours and shading only, see :func:`hole_l1`.
        adv: GAN form for G (FaceShifter: ``hinge``).
        swap_late: G's term weights that replace the ones above from iteration ``late_start``
            on, by term name (``adv``, ``rec``, ``id``, ``id_out``, ``att``, ``hole``), e.g.
            ``{id_out: 5}``: a last stage of one run (not in the paper). None = one set
            throughout. A term must be on from the start to be reweighted (a term off at first
            would need networks the module did not build for it).
        late_start: iteration from which ``swap_late`` (and ``late_identity_grad``) hold
            (required with either).
        identity_grad: what the identity terms (λ2, λ_id_out) may change in the fakes: ``rgb``
            (anything, the paper) or ``gray`` (brightness only, :func:`gray_gradient`; not in
            the paper). Their values are the same either way.
        late_identity_grad: ``identity_grad`` from ``late_start`` on (None = unchanged).
        use_valid_mask: restrict C's reconstruction to pixels inside the source photo.
        identity: the identity encoder I, canonical [-1, 1] faces in, (B, D) out. The model
            hands its own I over (``use_identity``): I also conditions G, so it is named once.
    """

    def __init__(
        self,
        lambda_content_rec: float = 20.0,
        lambda_content_kl: float = 20.0,
        lambda_content_adv: float = 1.0,
        content_adv: str = "bce",
        lambda_adv: float = 1.0,
        lambda_rec: float = 10.0,
        lambda_id: float = 5.0,
        lambda_att: float = 10.0,
        adv: str = "hinge",
        lambda_id_out: float = 0.0,
        lambda_hole: float = 0.0,
        hole_blur: float = 0.0,
        swap_late: Mapping[str, float] | None = None,
        late_start: int | None = None,
        identity_grad: str = "rgb",
        late_identity_grad: str | None = None,
        use_valid_mask: bool = True,
        identity: nn.Module | None = None,
    ) -> None:
        super().__init__()
        for k in (content_adv, adv):
            if k not in ADV_KINDS:
                raise ValueError(f"adversarial kind must be one of {ADV_KINDS}, got {k!r}")
        self.content_adv = content_adv
        self.adv = adv
        self.use_valid_mask = bool(use_valid_mask)
        if hole_blur < 0:
            raise ValueError(f"hole_blur must be >= 0 px, got {hole_blur}")
        self.hole_blur = float(hole_blur)
        self.weights = {
            "content": {
                "rec": float(lambda_content_rec),
                "kl": float(lambda_content_kl),
                "adv": float(lambda_content_adv),
            },
            "swap": {
                "adv": float(lambda_adv),
                "rec": float(lambda_rec),
                "id": float(lambda_id),
                "id_out": float(lambda_id_out),
                "att": float(lambda_att),
                "hole": float(lambda_hole),
            },
        }
        for part, ws in self.weights.items():
            if all(w == 0 for w in ws.values()):
                raise ValueError(f"every {part} loss weight is 0: nothing would train")
        for name, g in (
            ("identity_grad", identity_grad),
            ("late_identity_grad", late_identity_grad),
        ):
            if g is not None and g not in IDENTITY_GRADS:
                raise ValueError(f"{name} must be one of {IDENTITY_GRADS}, got {g!r}")
        self.identity_grad = identity_grad
        self.late_identity_grad = late_identity_grad
        self.swap_late, self.late_start = self._late(swap_late, late_start, late_identity_grad)
        self.use_identity(identity)

    def _late(
        self,
        swap_late: Mapping[str, float] | None,
        late_start: int | None,
        late_identity_grad: str | None = None,
    ) -> tuple[dict[str, float] | None, int | None]:
        """The checked late stage: G's full weight set from ``late_start`` on, or (None, None)."""
        if not swap_late and late_identity_grad is None:
            if late_start is not None:
                raise ValueError(
                    "late_start is set but swap_late names no weights and late_identity_grad is "
                    "not set"
                )
            return None, None
        swap_late = swap_late or {}
        base = self.weights["swap"]
        unknown = sorted(set(swap_late) - set(base))
        if unknown:
            raise ValueError(f"swap_late names unknown terms {unknown}; terms: {sorted(base)}")
        off = sorted(k for k in swap_late if base[k] == 0)
        if off:
            raise ValueError(
                f"swap_late reweights {off}, which are off (0) before late_start: switch them on "
                "from the start instead"
            )
        if late_start is None or int(late_start) < 0:
            what = "swap_late" if swap_late else "late_identity_grad"
            raise ValueError(f"{what} needs late_start >= 0 (an iteration), got {late_start}")
        late = {**base, **{k: float(v) for k, v in swap_late.items()}}
        if all(w == 0 for w in late.values()):
            raise ValueError("every swap weight is 0 in swap_late: nothing would train")
        return late, int(late_start)

    def _is_late(self, iteration: int | None) -> bool:
        """Whether ``iteration`` lies in the late stage (None = the first stage)."""
        return (
            self.late_start is not None and iteration is not None and iteration >= self.late_start
        )

    def swap_weights(self, iteration: int | None = None) -> dict[str, float]:
        """G's term weights at ``iteration`` (None = the first stage's)."""
        return self.swap_late if self._is_late(iteration) else self.weights["swap"]

    def identity_grad_at(self, iteration: int | None = None) -> str:
        """``identity_grad`` at ``iteration`` (None = the first stage's)."""
        if self.late_identity_grad is not None and self._is_late(iteration):
            return self.late_identity_grad
        return self.identity_grad

    def use_identity(self, net: nn.Module | None) -> None:
        """Hold ``net`` as the frozen identity encoder I (eval mode, no weight gradients)."""
        self.frozen("identity", net)

    @property
    def identity(self) -> nn.Module | None:
        """The frozen identity encoder I, or None."""
        return self.get_frozen("identity")

    def active(self, part: str, name: str) -> bool:
        """Whether the term ``name`` of ``part`` ("content" or "swap") has a nonzero weight."""
        return self.weights[part][name] != 0

    def uses_discriminator(self, part: str) -> bool:
        return self.active(part, "adv")

    def describe(self) -> str:
        """One line per part: the active terms and their weights (and L_hole's blur)."""

        def term(name: str, w: float) -> str:
            blur = f" (blur {self.hole_blur:g} px)" if name == "hole" and self.hole_blur else ""
            return f"{name}×{w:g}{blur}"

        lines = [
            f"  {part}: " + ", ".join(term(n, w) for n, w in ws.items() if w)
            for part, ws in self.weights.items()
        ]
        if self.identity_grad != "rgb":
            lines.append(f"  identity terms: {self.identity_grad} gradient")
        if self.swap_late is not None:
            grad = self.identity_grad_at(self.late_start)
            lines.append(
                f"  swap from iteration {self.late_start}: "
                + ", ".join(term(n, w) for n, w in self.swap_late.items() if w)
                + (f"; identity terms: {grad} gradient" if grad != self.identity_grad else "")
            )
        return "\n".join(lines)

    @staticmethod
    def _combine(
        part_prefix: str, raw: dict[str, Tensor], weights: dict[str, float]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for name, value in raw.items():
            weighted = weights[name] * value
            logs[f"{part_prefix}/{name}"] = value.detach()
            logs[f"{part_prefix}/{name}_w"] = weighted.detach()
            total = weighted if total is None else total + weighted
        if total is None:
            raise ValueError(f"{part_prefix}: no active loss term")
        logs[f"{part_prefix}/total"] = total.detach()
        return total, logs

    # ---- content inference C --------------------------------------------------------------
    def content_loss(
        self,
        scales: Sequence[Tensor],
        target: Tensor,
        mu: Tensor,
        std: Tensor,
        d_fake: Tensor | Sequence[Tensor] | None = None,
        valid: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """L_C: multi-level L1 of the raw outputs, KL of the latent, GAN on X̂ (``d_fake``)."""
        w = self.weights["content"]
        raw: dict[str, Tensor] = {}
        if w["rec"]:
            raw["rec"] = multiscale_l1(scales, target, valid if self.use_valid_mask else None)
        if w["kl"]:
            raw["kl"] = kl_standard_normal(mu, std)
        if w["adv"]:
            if d_fake is None:
                raise ValueError("content GAN term is on but no discriminator output was given")
            raw["adv"] = adversarial_generator(self.content_adv, d_fake)
        return self._combine("c", raw, w)

    def content_discriminator_loss(
        self, d_real: Tensor | Sequence[Tensor], d_fake: Tensor | Sequence[Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """C's discriminator: real + fake GAN terms (unweighted: D has a loss of its own)."""
        real, fake = adversarial_discriminator(self.content_adv, d_real, d_fake)
        total = real + fake
        return total, {
            "dc/real": real.detach(),
            "dc/fake": fake.detach(),
            "dc/total": total.detach(),
        }

    # ---- generative module G --------------------------------------------------------------
    def swap_loss(
        self,
        swapped: Tensor,
        content: Tensor,
        keep: Tensor,
        same: Tensor,
        id_swapped: Tensor | None = None,
        id_reference: Tensor | None = None,
        att_swapped: Sequence[Tensor] | None = None,
        att_output: Sequence[Tensor] | None = None,
        att_content: Sequence[Tensor] | None = None,
        d_fake: Tensor | Sequence[Tensor] | None = None,
        valid: Tensor | None = None,
        *,
        output: Tensor | None = None,
        attributes: Callable[[Tensor], Sequence[Tensor]] | None = None,
        real: Tensor | None = None,
        iteration: int | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """L_G from Y_sp (``swapped``), X̂ (``content``), the keep mask M, the same-person flags
        S, I(R) (``id_reference``, G's conditioning), A(X̂) (``att_content``) and D(Y_sp).

        I(Y_sp) comes from the loss's identity encoder, and A(Y_sp), A(Y) from ``attributes``
        (G's attribute encoder) applied to ``swapped`` and ``output`` (Y), each only when its
        term is on; ``id_swapped`` / ``att_swapped`` / ``att_output`` given as tensors are used
        as they are. ``valid`` (B, 1, S, S), when given and ``use_valid_mask`` is on, also
        removes pixels outside the source photo from L_rec (and L_hole). ``real`` is the real
        face X, needed only by L_hole. ``iteration`` picks the weights (:meth:`swap_weights`)."""
        w = self.swap_weights(iteration)
        seen = gray_gradient if self.identity_grad_at(iteration) == "gray" else (lambda x: x)
        # network features first, in this order (I, then A), then the terms
        if w["id"] and id_swapped is None and self.identity is not None:
            id_swapped = self.identity(seen(swapped))
        id_output = None
        if w["id_out"] and output is not None and self.identity is not None:
            id_output = self.identity(seen(output))
        if w["att"] and att_swapped is None and attributes is not None and output is not None:
            att_swapped, att_output = attributes(swapped), attributes(output)
        raw: dict[str, Tensor] = {}
        if w["adv"]:
            if d_fake is None:
                raise ValueError("swap GAN term is on but no discriminator output was given")
            raw["adv"] = adversarial_generator(self.adv, d_fake)
        if w["rec"]:
            if self.use_valid_mask and valid is not None:
                keep = keep * valid
            raw["rec"] = masked_half_l2(swapped, content, keep, same)
        if w["id"]:
            if id_swapped is None or id_reference is None:
                raise ValueError(
                    "identity term is on but the loss has no identity network and no identity "
                    "features were given"
                )
            raw["id"] = identity_cosine(id_swapped, id_reference)
        if w["id_out"]:
            if id_output is None or id_reference is None:
                raise ValueError(
                    "lambda_id_out is on but the composite Y, the identity network or I(R) is "
                    "missing"
                )
            raw["id_out"] = identity_cosine(id_output, id_reference)
        if w["att"]:
            if att_swapped is None or att_output is None or att_content is None:
                raise ValueError("attribute term is on but attribute maps are missing")
            raw["att"] = double_attribute(att_swapped, att_output, att_content)
        if w["hole"]:
            if real is None:
                raise ValueError("lambda_hole is on but the real face was not given")
            hole = 1.0 - keep
            if self.use_valid_mask and valid is not None:
                hole = hole * valid
            raw["hole"] = hole_l1(swapped, real, hole, same, self.hole_blur)
        return self._combine("g", raw, w)

    def swap_discriminator_loss(
        self, d_real: Tensor | Sequence[Tensor], d_fake: Tensor | Sequence[Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """G's discriminator: real + fake GAN terms."""
        real, fake = adversarial_discriminator(self.adv, d_real, d_fake)
        total = real + fake
        return total, {"d/real": real.detach(), "d/fake": fake.detach(), "d/total": total.detach()}


__all__ = [
    "ADV_KINDS",
    "SwapInpaintLoss",
    "adversarial_discriminator",
    "adversarial_generator",
    "attribute_l2",
    "double_attribute",
    "downsample_image",
    "hole_l1",
    "identity_cosine",
    "kl_standard_normal",
    "masked_half_l2",
    "multiscale_l1",
]
