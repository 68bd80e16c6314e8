"""Exemplar-guided context: retrieve training faces that match the input, then fit one's context
to the input face (colour transfer, seam correction) and paste it; the fitting is hand-set, and
an optional learned harmoniser (``facectx.zoo.harmoniser``) re-lights the result.

The real texture (hair, clothes, background) comes from the exemplar; the functions here only
fix what a plain paste gets wrong. Everything is a small pure function on batched tensors so a
learned version can replace one step at a time; :class:`ExemplarBank` holds the per-face
descriptors of the training set and ranks it for a batch of queries, and :class:`ExemplarModel`
is the whole path (describe the query, rank, pick, fit) over a bank and an
:class:`ExemplarSource` of its pixels (a prepared folder, or a packed bank file:
``facectx.pretrained.exemplar_bank``).

Retrieval scores (each z-scored over the bank per query, then weighted):

* ``identity``: cosine of identity features of the masked faces (the nearest-neighbour
  baseline's);
* ``shape``: minus the distance of the 68 landmarks after removing translation and scale
  (pose and face shape);
* ``colour``: minus the Lab distance of the mean visible-face colours;
* ``hull``: IoU of the face hulls (a matching outline means the pasted context fits it);
* ``coverage``: the fraction of the query's context that is valid in the exemplar (an
  exemplar whose photo ends where the query's continues would paste black);
* ``seam``: how well the two would meet at the face outline: the query's colours just inside
  its hull against the exemplar's just outside its own, per angular sector and each in units
  of its face's colour spread (what the colour transfer makes of them), so a dark collar
  under a dark jaw edge, skin above a bare forehead and background beside a cheek win over a
  fringe cut by the forehead or a bright neck under a shadowed jaw.

After fitting, :meth:`ExemplarModel.portraits` keeps, of ``pool`` × K fitted candidates, the K
whose fitted face differs least from the input's just inside the outline
(:func:`seam_residual`): the measured seam, where ``seam`` above only predicts it.

Images are (B, 3, S, S) in [-1, 1], masks (B, 1, S, S) in {0, 1}.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from facectx.zoo.pyramid import weighted_blur

GRID = 32  # px: side of the down-sampled hull / valid masks used for overlap scores
TERMS = ("identity", "shape", "colour", "hull", "coverage", "seam")
#: the shipped model's retrieval weights (chosen on LFW val, docs/results.md §4)
DEFAULT_WEIGHTS = {
    "identity": 1.0,
    "shape": 1.0,
    "colour": 1.0,
    "hull": 1.0,
    "coverage": 1.0,
    "seam": 2.0,
}
SECTORS = 12  # angular sectors of the seam descriptor around the face
RING = (1.0, 4.0)  # px from the hull outline: the band the seam descriptor averages

_RGB2XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_EPS = (6 / 29) ** 3


def rgb_to_lab(x: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [-1, 1] -> CIE Lab (L in [0, 100]), D65."""
    c = ((x + 1) / 2).clamp(0, 1)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,bjhw->bihw", _RGB2XYZ.to(x), lin) / _WHITE.to(x).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_lab`, clamped to [-1, 1]."""
    L, a, b = lab.unbind(1)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], 1)
    xyz = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    xyz = xyz * _WHITE.to(lab).view(1, 3, 1, 1)
    lin = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB2XYZ).to(lab), xyz).clamp(0, 1)
    c = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin.clamp_min(1e-8) ** (1 / 2.4) - 0.055)
    return (c * 2 - 1).clamp(-1, 1)


def shape_descriptor(landmarks: Tensor) -> Tensor:
    """(B, 68, 2) px -> (B, 136): centred on their mean, divided by their RMS radius."""
    p = landmarks - landmarks.mean(1, keepdim=True)
    scale = p.pow(2).sum(-1).mean(1).sqrt().clamp_min(1e-6)
    return (p / scale.view(-1, 1, 1)).flatten(1)


def region_stats(lab: Tensor, region: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std (B, 3) of ``lab`` over the weights ``region`` (B, 1, H, W)."""
    w = region / region.sum((2, 3), keepdim=True).clamp_min(1.0)
    mean = (lab * w).sum((2, 3))
    var = ((lab - mean[..., None, None]) ** 2 * w).sum((2, 3))
    return mean, var.sqrt()


def angular_sectors(region: Tensor, sectors: int) -> Tensor:
    """(B, H, W) long: each pixel's angular sector (0 .. ``sectors`` - 1) around the centroid
    of ``region`` (B, 1, H, W)."""
    _, _, h, w = region.shape
    ys, xs = torch.meshgrid(torch.arange(h).to(region), torch.arange(w).to(region), indexing="ij")
    area = region.sum((2, 3)).clamp_min(1.0)[:, 0]
    cy = (region[:, 0] * ys).sum((1, 2)) / area
    cx = (region[:, 0] * xs).sum((1, 2)) / area
    angle = torch.atan2(ys - cy[:, None, None], xs - cx[:, None, None])
    return ((angle + torch.pi) / (2 * torch.pi) * sectors).long().clamp(0, sectors - 1)


def sector_sums(
    values: Tensor, weight: Tensor, sector: Tensor, sectors: int
) -> tuple[Tensor, Tensor]:
    """Per angular sector (:func:`angular_sectors`, flattened to (B, HW)): the sum of ``weight``
    (B, HW), (B, sectors), and of ``values`` (B, C, HW) times it, (B, C, sectors)."""
    b, c, _ = values.shape
    count = weight.new_zeros(b, sectors).scatter_add_(1, sector, weight)
    index = sector[:, None].expand(-1, c, -1)
    total = values.new_zeros(b, c, sectors).scatter_add_(2, index, values * weight[:, None])
    return count, total


def ring_colours(image: Tensor, region: Tensor, valid: Tensor, outside: bool) -> Tensor:
    """(B, SECTORS, 3) Lab of the mean colour of the band :data:`RING` px inside (``outside``
    False) or outside ``region``'s outline of ``image`` ([-1, 1] RGB), per angular sector
    around the region's centroid; NaN where a sector has no valid band pixel."""
    dist = distance_to(region) if outside else distance_to(1 - region)
    side = (1 - region) if outside else region
    band = (((dist >= RING[0]) & (dist <= RING[1])).to(image) * side * valid).flatten(1)
    sector = angular_sectors(region, SECTORS).flatten(1)
    count, total = sector_sums(image.flatten(2), band, sector, SECTORS)
    mean = total / count.clamp_min(1e-6)[:, None]  # (B, 3, K) mean RGB per sector
    lab = rgb_to_lab(mean[..., None]).squeeze(-1).transpose(1, 2)  # (B, K, 3)
    return torch.where(count[..., None] > 0, lab, torch.full_like(lab, float("nan")))


def seam_cost(
    query_ring: Tensor,
    query_stats: tuple[Tensor, Tensor],
    bank_ring: Tensor,
    bank_stats: tuple[Tensor, Tensor],
) -> Tensor:
    """(B, N) mean over sectors of the L1 distance between the query's inner ring and each
    exemplar's outer ring, each in units of its own face's Lab (mean, std); sectors missing on
    either side are left out (a pair with none scores the worst finite cost)."""
    zq = (query_ring - query_stats[0][:, None]) / query_stats[1][:, None].clamp_min(1e-3)
    zb = (bank_ring - bank_stats[0][:, None]) / bank_stats[1][:, None].clamp_min(1e-3)
    d = (zq[:, None] - zb[None]).abs().sum(-1)  # (B, N, K)
    ok = torch.isfinite(d)
    cost = torch.where(ok, d, 0).sum(-1) / ok.sum(-1).clamp_min(1)
    worst = torch.where(ok.any(-1), cost, -1).amax(1, keepdim=True).clamp_min(0)
    return torch.where(ok.any(-1), cost, worst)


def small_mask(mask: Tensor, grid: int = GRID) -> Tensor:
    """(B, 1, S, S) -> (B, grid * grid) area fractions."""
    return F.adaptive_avg_pool2d(mask.float(), grid).flatten(1)


def soft_iou(a: Tensor, b: Tensor) -> Tensor:
    """(B, P) x (N, P) soft masks -> (B, N) intersection over union."""
    inter = a @ b.T
    union = a.sum(1, keepdim=True) + b.sum(1)[None] - inter
    return inter / union.clamp_min(1e-6)


def coverage(context: Tensor, valid: Tensor) -> Tensor:
    """(B, P) query context x (N, P) exemplar valid -> (B, N) covered fraction of the context."""
    return (context @ valid.T) / context.sum(1, keepdim=True).clamp_min(1e-6)


def standardise(x: Tensor) -> Tensor:
    """Z-score each row, so terms of different units can be weighted against each other."""
    finite = torch.isfinite(x)
    mean = torch.where(finite, x, 0).sum(1, keepdim=True) / finite.sum(1, keepdim=True)
    var = torch.where(finite, (x - mean) ** 2, 0).sum(1, keepdim=True) / finite.sum(1, keepdim=True)
    return torch.where(finite, (x - mean) / var.sqrt().clamp_min(1e-6), x)


def distance_to(region: Tensor) -> Tensor:
    """(B, 1, S, S) {0,1} -> Euclidean px distance of every pixel to the nearest region pixel."""
    import cv2
    import numpy as np

    outside = (region[:, 0] < 0.5).cpu().numpy().astype(np.uint8)
    d = [cv2.distanceTransform(o, cv2.DIST_L2, 5) for o in outside]
    return torch.from_numpy(np.stack(d))[:, None].to(region)


def similarity(src: Tensor, dst: Tensor) -> Tensor:
    """(B, 68, 2) x (B, 68, 2) -> (B, 2, 3) least-squares similarity (Umeyama) taking src to dst."""
    src, dst = src.double(), dst.double()
    ms, md = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    a, b = src - ms, dst - md
    cov = b.transpose(1, 2) @ a / src.shape[1]
    u, sig, vt = torch.linalg.svd(cov)
    d = torch.ones_like(sig)
    d[:, 1] = torch.sign(torch.det(u @ vt))
    rot = u @ torch.diag_embed(d) @ vt
    scale = (sig * d).sum(1) / a.pow(2).sum((1, 2)).div(src.shape[1])
    lin = scale[:, None, None] * rot
    shift = md.transpose(1, 2) - lin @ ms.transpose(1, 2)
    return torch.cat([lin, shift], 2).float()


def warp(x: Tensor, matrix: Tensor, border_value: float = 0.0) -> Tensor:
    """Warp (B, C, S, S) by (B, 2, 3) pixel-space affine matrices (bilinear, constant border)."""
    import cv2
    import numpy as np

    arr = x.permute(0, 2, 3, 1).cpu().numpy()
    s = x.shape[-1]
    out = [
        cv2.warpAffine(
            np.ascontiguousarray(a),
            m.numpy().astype(np.float64),
            (s, s),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=border_value,
        ).reshape(s, s, -1)
        for a, m in zip(arr, matrix)
    ]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x)


#: landmarks on a face hull's outline (jaw 0-16, brows 17-26): where the exemplar's face
#: outline must meet the input's
OUTLINE = tuple(range(27))


def _tps_kernel(a: Tensor, b: Tensor) -> Tensor:
    """U(r) = r² log r² between point sets (…, N, 2) and (…, M, 2); 0 at r = 0."""
    r2 = torch.cdist(a, b).square()
    return r2 * torch.log(r2.clamp_min(1e-12))


def outline_grid(
    src: Tensor,
    dst: Tensor,
    size: int,
    inset: float = 0.0,
    anchors: int = 5,
    smooth: float = 1.0,
) -> Tensor:
    """(B, S, S, 2) ``grid_sample`` grid that moves the face outline ``src`` (B, 68, 2) px of
    the exemplar onto the input's ``dst``: a thin-plate spline through the outline landmarks
    and ``anchors`` fixed points per image edge, so the exemplar's jaw and brows land on the
    input's hull while its photo's edges stay put (no crescent of the exemplar's own cheek, no
    second jaw line outside the input's). ``inset`` px moves the target outline toward the
    face's centre, so the exemplar's own jaw edge and the shadow under it fall inside the
    input's hull, where the input face covers them. ``smooth`` regularises the spline (px²)."""
    idx = list(OUTLINE)
    s = float(size)
    t = torch.linspace(0.0, s - 1.0, anchors + 1, dtype=torch.float64)[:-1]
    edge = torch.cat(
        [
            torch.stack([t, torch.zeros_like(t)], 1),
            torch.stack([torch.full_like(t, s - 1), t], 1),
            torch.stack([s - 1 - t, torch.full_like(t, s - 1)], 1),
            torch.stack([torch.zeros_like(t), s - 1 - t], 1),
        ]
    )
    b = src.shape[0]
    edge = edge.expand(b, -1, -1)
    target = dst.double()[:, idx]
    if inset:
        centre = dst.double().mean(1, keepdim=True)
        towards = centre - target
        target = target + inset * towards / towards.norm(dim=2, keepdim=True).clamp_min(1e-6)
    p = torch.cat([target, edge], 1)  # where points sit in the output
    q = torch.cat([src.double()[:, idx], edge], 1)  # where to read them in the exemplar
    n = p.shape[1]
    ones = torch.ones(b, n, 1, dtype=torch.float64)
    pa = torch.cat([ones, p], 2)
    top = torch.cat([_tps_kernel(p, p) + smooth * torch.eye(n, dtype=torch.float64), pa], 2)
    bottom = torch.cat([pa.transpose(1, 2), torch.zeros(b, 3, 3, dtype=torch.float64)], 2)
    rhs = torch.cat([q, torch.zeros(b, 3, 2, dtype=torch.float64)], 1)
    coef = torch.linalg.solve(torch.cat([top, bottom], 1), rhs)  # (B, n + 3, 2)
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float64),
        torch.arange(size, dtype=torch.float64),
        indexing="ij",
    )
    x = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(b, -1, -1)
    xa = torch.cat([torch.ones(b, x.shape[1], 1, dtype=torch.float64), x], 2)
    mapped = _tps_kernel(x, p) @ coef[:, :n] + xa @ coef[:, n:]
    grid = (mapped + 0.5) / s * 2 - 1  # px centres -> grid_sample (align_corners=False)
    return grid.reshape(b, size, size, 2).float()


def sample_grid(x: Tensor, grid: Tensor) -> Tensor:
    """Bilinear ``grid_sample`` with zeros outside (pair a warped image with its warped valid)."""
    return F.grid_sample(x, grid.to(x), mode="bilinear", padding_mode="zeros", align_corners=False)


def fill_invalid(image: Tensor, valid: Tensor, radius: float = 5.0) -> Tensor:
    """Inpaint (``cv2.inpaint`` Telea) where ``valid`` is 0: where the exemplar's photo ended,
    so its black border is not pasted into the input's context."""
    import cv2
    import numpy as np

    from facectx.pixels import from_uint8, to_uint8

    holes = (valid[:, 0] < 0.5).cpu().numpy()
    if not holes.any():
        return image
    rgb = to_uint8(image)
    out = [
        cv2.inpaint(np.ascontiguousarray(im), h.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
        if h.any()
        else im
        for im, h in zip(rgb, holes)
    ]
    filled = from_uint8(np.stack(out)).to(image)
    return torch.where(valid > 0.5, image, filled)


def dark_border(image: Tensor, level: float = 16 / 255) -> Tensor:
    """(B, 1, S, S) 1 where a pixel is near-black (every channel below ``level`` in [0, 1]) and
    joined to the image's edge through such pixels: black hair, a dark suit or a studio
    background that reaches the frame (and the rare black bar along a photo's edge).

    Only the ``seam`` descriptor of bank faces leaves these pixels out (:func:`describe_faces`):
    with them in, retrieval turned to bald and light-haired heads and lost identity match on
    LFW val (docs/results.md §4, tenth round). The fit pastes them like any other context: it
    used to take them for alignment margins and inpaint them, which smeared over 100 px of hair
    or background in 1,243 of the 3,363 photos of the shipped bank."""
    import cv2
    import numpy as np

    dark = (((image + 1) / 2).amax(1) < level).cpu().numpy().astype(np.uint8)
    out = np.zeros_like(dark)
    for i, d in enumerate(dark):
        if not d.any():
            continue
        _, labels = cv2.connectedComponents(d, connectivity=4)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        edge = edge[edge > 0]
        out[i] = np.isin(labels, edge)
    return torch.from_numpy(out)[:, None].to(image)


def transfer_colour(
    lab: Tensor,
    src: tuple[Tensor, Tensor],
    dst: tuple[Tensor, Tensor],
    strength: Tensor,
    max_gain: float = 2.0,
) -> Tensor:
    """Move ``lab`` from the statistics ``src`` toward ``dst`` ((mean, std), each (B, 3)),
    blended per pixel by ``strength`` (B, 1, H, W) in [0, 1]. The std ratio is clamped to
    [1/max_gain, max_gain] so a flat or tiny face region cannot blow the contrast up."""
    gain = (dst[1] / src[1].clamp_min(1e-3)).clamp(1 / max_gain, max_gain)[..., None, None]
    moved = (lab - src[0][..., None, None]) * gain + dst[0][..., None, None]
    return lab + strength * (moved - lab)


#: Lab distance between the input and the exemplar above which a band pixel is left out of the
#: seam offset (:func:`seam_offset`): the two show different things there (hair against skin)
SEAM_LIMIT = 20.0


def seam_offset(
    fill: Tensor,
    masked: Tensor,
    mask: Tensor,
    trust: Tensor,
    band: float,
    falloff: float,
    outside: Tensor | None = None,
    limit: float = SEAM_LIMIT,
) -> Tensor:
    """Shift ``fill`` in the hole so it meets the known face at the hull border.

    The offset ``masked - fill`` is measured on the known pixels within ``band`` px of the hole
    where ``trust`` (B, 1, S, S) is 1 (the exemplar shows skin there too), spread by normalised
    Gaussian smoothing, and added in the hole with weight exp(-distance / ``falloff``): a cheap
    membrane (Poisson-like) correction that fades into the exemplar's own colours. Band pixels
    where input and exemplar are more than ``limit`` apart in Lab (0 = no limit) show different
    things (the input's own fringe against the exemplar's forehead) and are left out: spread,
    their difference drew a dark or light arc into the context. ``outside``:
    ``distance_to(mask)`` when the caller has it already.
    """
    hole = 1.0 - mask
    near_hole = (distance_to(hole) <= band).to(fill) * mask * trust
    if limit > 0:
        apart = (rgb_to_lab(masked) - rgb_to_lab(fill)).norm(dim=1, keepdim=True)
        near_hole = near_hole * (apart <= limit).to(fill)
    average, den = weighted_blur(masked - fill, near_hole, max(band, 1.0) * 2)
    offset = average * (den > 1e-2)
    outside = distance_to(mask) if outside is None else outside
    return fill + offset * torch.exp(-outside / falloff) * hole


@dataclass
class ExemplarBank:
    """Descriptors of N training faces (row j = training face j).

    Args:
        ids: face ids; a query never gets its own id back.
        persons: person labels ("" unknown); with ``exclude_same_person`` never retrieved for
            a query of the same person.
        identity: (N, D) L2-normalised identity features of the masked faces.
        shape: (N, 136) :func:`shape_descriptor` of the landmarks.
        colour_mean: (N, 3) Lab mean of the visible face (hull and valid).
        colour_std: (N, 3) Lab std of the same region.
        hull: (N, GRID²) :func:`small_mask` of the face hulls.
        valid: (N, GRID²) :func:`small_mask` of the valid pixels.
        ring: (N, SECTORS, 3) :func:`ring_colours` just outside the hulls (the ``seam``
            term); None = no seam term.
    """

    ids: list[str]
    persons: list[str]
    identity: Tensor
    shape: Tensor
    colour_mean: Tensor
    colour_std: Tensor
    hull: Tensor
    valid: Tensor
    ring: Tensor | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
        """(B, N) weighted sum of z-scored retrieval terms (higher = better).

        ``query`` holds the same descriptors for B inputs (``identity``, ``shape``,
        ``colour_mean``, ``hull``, ``valid``); ``weights`` maps names of ``TERMS`` to weights,
        terms with weight 0 are not computed.
        """
        unknown = set(weights) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown retrieval terms {sorted(unknown)}; known: {TERMS}")
        total = 0
        for name, w in weights.items():
            if not w:
                continue
            if name == "identity":
                term = query["identity"] @ self.identity.T
            elif name == "shape":
                term = -torch.cdist(query["shape"], self.shape)
            elif name == "colour":
                term = -torch.cdist(query["colour_mean"], self.colour_mean)
            elif name == "hull":
                term = soft_iou(query["hull"], self.hull)
            elif name == "seam":
                if self.ring is None:
                    raise ValueError("the seam term needs the bank's outer rings (ring=...)")
                term = -seam_cost(
                    query["ring"],
                    (query["colour_mean"], query["colour_std"]),
                    self.ring,
                    (self.colour_mean, self.colour_std),
                )
            else:
                term = coverage(query["valid"] * (1 - query["hull"]), self.valid)
            total = total + w * standardise(term)
        if not torch.is_tensor(total):
            raise ValueError("every retrieval weight is 0")
        return total

    def banned(self, face_ids: list[str], persons: list[str], same_person: bool) -> Tensor:
        """(B, N) bool: the query's own id and, with ``same_person``, its person's faces."""
        if not hasattr(self, "_rows"):  # label -> bank rows, built once
            self._rows: dict[str, list[int]] = {}
            for j, (i, p) in enumerate(zip(self.ids, self.persons)):
                self._rows.setdefault(f"id:{i}", []).append(j)
                if p:
                    self._rows.setdefault(f"person:{p}", []).append(j)
        out = torch.zeros(len(face_ids), len(self), dtype=torch.bool)
        for k, (fid, person) in enumerate(zip(face_ids, persons)):
            out[k, self._rows.get(f"id:{fid}", [])] = True
            if same_person and person:
                out[k, self._rows.get(f"person:{person}", [])] = True
        return out


def describe_faces(
    image: Tensor,
    mask: Tensor,
    valid: Tensor,
    landmarks: Tensor | None,
    exemplar: bool = False,
) -> dict[str, Tensor]:
    """Retrieval descriptors (all but ``identity``) of a batch of faces. As queries (the
    default) ``image`` only needs to be right where ``mask`` is 1 (a masked input works) and
    ``ring`` is the band inside the hull; as bank faces (``exemplar``) ``image`` is the whole
    picture and ``ring`` the band outside. Without ``landmarks`` there is no ``shape``."""
    face = mask * valid
    mean, std = region_stats(rgb_to_lab(image), face)
    out = {} if landmarks is None else {"shape": shape_descriptor(landmarks.float())}
    return {
        **out,
        "colour_mean": mean,
        "colour_std": std,
        "hull": small_mask(mask),
        "valid": small_mask(valid),
        # dark regions reaching the frame (hair, a dark background) count as no colour here
        "ring": ring_colours(
            image, mask, valid * (1 - dark_border(image)) if exemplar else valid, exemplar
        ),
    }


def choose(
    scores: Tensor, banned: Tensor, k: int, top: int, generator: torch.Generator | None
) -> Tensor:
    """(B, k) exemplar indices: the best k (``top`` <= k or no generator), else k drawn without
    replacement from the best ``top``, in rank order."""
    s = scores.masked_fill(banned, -float("inf"))
    top = max(top, k)
    best = s.topk(min(top, s.shape[1]), dim=1).indices
    if generator is None or top == k:
        return best[:, :k]
    picks = torch.stack([torch.randperm(best.shape[1], generator=generator)[:k] for _ in best])
    return best.gather(1, picks.sort(1).values)


def fit_exemplar(
    exemplar: Tensor,
    exemplar_stats: tuple[Tensor, Tensor],
    exemplar_hull: Tensor,
    masked: Tensor,
    mask: Tensor,
    valid: Tensor,
    harmonise: float = 1.0,
    harmonise_far: float = 0.5,
    harmonise_radius: float = 16.0,
    seam_band: float = 3.0,
    seam_falloff: float = 8.0,
    black_invalid: bool = True,
    exemplar_valid: Tensor | None = None,
    face_band: float = 0.0,
    seam_limit: float = SEAM_LIMIT,
    with_fill: bool = False,
    face_source: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Fit exemplar images to the inputs and composite; known pixels (mask 1) stay exact.

    Args:
        exemplar: (B, 3, S, S) the chosen training images.
        exemplar_stats: their face-region Lab (mean, std), each (B, 3).
        exemplar_hull: (B, 1, S, S) their face hulls (where the seam offset can be trusted).
        masked, mask, valid: the inputs.
        harmonise: colour-transfer strength at the input's hull (0 = off).
        harmonise_far: strength far from the hull (the whole photo's white balance).
        harmonise_radius: px, e-folding distance from ``harmonise`` to ``harmonise_far``.
        seam_band: px of known face measured for the seam offset (0 = no seam correction).
        seam_falloff: px, e-folding distance of the seam offset into the hole.
        seam_limit: Lab distance above which a band pixel does not count for the seam offset
            (:func:`seam_offset`; 0 = no limit). A module constant, not a bank setting.
        black_invalid: black (-1) where the input's photo has no pixels, as in the originals.
        exemplar_valid: (B, 1, S, S) where the exemplar's photo has pixels; the rest is
            inpainted first. None = all valid.
        face_band: px, e-folding width of a ring outside the input's hull where the input
            face, extended outward by inpainting, replaces the exemplar (0 = off): the
            exemplar's own brows, glasses rims or hairline never touch the input face.
        with_fill: also return the fitted exemplar before the face ring and the composite,
            whose pixels under the input face tell how well the two meet (:func:`seam_residual`).
        face_source: (B, 1, S, S) the input pixels the face ring extends outward (None = mask
            × valid).

    Returns:
        (B, 3, S, S) composites, or (composites, fitted exemplars) with ``with_fill``.
    """
    fill = exemplar if exemplar_valid is None else fill_invalid(exemplar, exemplar_valid)
    outside = distance_to(mask)  # px from the input's hull, shared by the three steps below
    if harmonise or harmonise_far:
        lab = rgb_to_lab(fill)  # the inpainted picture (the transfer used to drop the fill)
        dst = region_stats(rgb_to_lab(masked), mask * valid)
        w = torch.exp(-outside / harmonise_radius)
        strength = harmonise_far + (harmonise - harmonise_far) * w
        fill = lab_to_rgb(transfer_colour(lab, exemplar_stats, dst, strength))
    if seam_band > 0:
        fill = seam_offset(
            fill, masked, mask, exemplar_hull, seam_band, seam_falloff, outside, seam_limit
        )
        fill = fill.clamp(-1, 1)
    fitted = fill
    if face_band > 0:
        w = torch.exp(-outside / face_band)
        source = mask * valid if face_source is None else face_source
        fill = w * fill_invalid(masked, source) + (1 - w) * fill
    if black_invalid:
        fill = torch.where(valid > 0.5, fill, torch.full_like(fill, -1.0))
    out = mask * masked + (1.0 - mask) * fill
    return (out, fitted) if with_fill else out


#: px inside the kept face's edge: the band where :func:`seam_residual` compares the fitted
#: exemplar with the input
RESIDUAL_RING = (1.0, 3.0)


def seam_residual(fitted: Tensor, masked: Tensor, kept: Tensor, sectors: int = 0) -> Tensor:
    """(B,) how visibly a fitted exemplar would meet the face: the mean Lab distance between the
    fitted exemplar (``fit_exemplar(..., with_fill=True)``) and the input over the kept pixels
    :data:`RESIDUAL_RING` px inside the kept region's edge.

    The exemplar's context continues its *own* face naturally, so where its fitted face looks
    like the input's just inside the outline, the composite has no seam; where it does not (an
    overexposed forehead, the input's fringe against the exemplar's skin, a darker cheek), the
    step shows as a band or a halo. Colour offsets the seam correction removes do not count,
    since it is measured after the fit. A face with no such band scores 0.

    ``sectors`` > 0: the mean of the worst of that many angular sectors around the kept
    region's centroid (sectors with fewer than 4 ring pixels do not count) instead of the whole
    ring's. A seam is local (a forehead band, a halo down one cheek), and a ring-wide mean
    dilutes it with the clean rest of the outline.
    """
    inside = distance_to(1.0 - kept)
    ring = ((inside >= RESIDUAL_RING[0]) & (inside <= RESIDUAL_RING[1])).to(fitted) * kept
    apart = (rgb_to_lab(masked) - rgb_to_lab(fitted)).norm(dim=1, keepdim=True)
    if sectors <= 0:
        return (apart * ring).sum((1, 2, 3)) / ring.sum((1, 2, 3)).clamp_min(1.0)
    sector = angular_sectors(kept, sectors).flatten(1)
    count, total = sector_sums(apart.flatten(2), ring.flatten(1), sector, sectors)
    total = total[:, 0]
    mean = torch.where(count >= 4, total / count.clamp_min(1.0), torch.zeros_like(total))
    return mean.amax(1)


#: the shipped rim trim: px from the hull edge; how much darker (CIE L*) than the face beside it
#: a rim pixel must be to count as shadow or hair, and how much lighter to count as a light
#: background blended into the edge, the latter only from this fraction of the mask's height
#: down (see :func:`trim_rim`)
RIM = 2.0
RIM_DARKER = 12.0
RIM_LIGHTER = 12.0
LIGHT_FROM = 0.2
#: the shipped candidates fitted per portrait (:meth:`ExemplarModel.portraits`), with
#: :data:`ACCEPT`: fewer seams. Alone it cost identity match on Caltech; with the bank's context
#: harmoniser, which raises it, the two became the default (docs/results.md §4, thirteenth round)
POOL = 4
#: :class:`ExemplarModel`'s ``accept`` test: the worst of this many angular sectors of
#: :func:`seam_residual`, and the residual (Lab) up to which a fitted candidate counts as meeting
#: the face, chosen on LFW val (docs/results.md §4, eighth round); the shipped default with
#: :data:`POOL`.
ACCEPT_SECTORS = 12
ACCEPT = 26.0


def trim_rim(
    masked: Tensor,
    mask: Tensor,
    depth: float = RIM,
    darker: float = RIM_DARKER,
    lighter: float = RIM_LIGHTER,
    sigma: float = 3.0,
    light_from: float = LIGHT_FROM,
) -> Tensor:
    """The keep-mask without the rim pixels that are not face.

    A landmark hull drawn on a pixel grid reaches past the real jaw and temples in a staircase:
    its outermost pixels often hold the shadow under the chin or dark hair, or a light
    background blended into the cheek's edge, and kept exactly they draw a dotted dark or a thin
    light line between the face and the context. Within ``depth`` px of the mask's edge, a pixel
    is dropped (:meth:`ExemplarModel.render` inpaints it from the face and the context around
    it) when its lightness L* is

    - more than ``darker`` below the face next to it (a normalised Gaussian average, ``sigma``
      px, of the kept pixels further in), or
    - more than ``lighter`` above it, in the mask's rows from ``light_from`` of its height
      down: below the brows (temples, cheeks, jaw), where a light wall blends into the edge.
      The hull's top edge runs along the brows, and the skin there would count as foreign.

    Every pixel further in stays. :meth:`ExemplarModel.render` also leaves the light ones out
    of the face ring it extends outward, or the ring would carry the light line out again.
    Chosen on LFW val (docs/results.md §4, eleventh round): the light rule keeps ρ and FID.
    An earlier light rule (the average over the pixels lighter than the face's median, at every
    height) missed shadowed cheeks and, with the face ring taken from every kept pixel, cost ρ
    0.0003. Dropping every unlike pixel (a Lab distance to the plain average) removed about
    twice as many and cost ρ 0.004.

    Args:
        masked: (B, 3, S, S) inputs in [-1, 1].
        mask: (B, 1, S, S) {0, 1} keep-masks.
        depth: px from the edge that may be dropped (0 = the mask as given).
        darker: L* (0–100) below the nearby face from which a rim pixel is dropped.
        lighter: L* above the nearby face from which a rim pixel low enough is dropped (0 =
            never).
        light_from: fraction of the mask's height, from its top row, where the light rule
            starts.
    Returns:
        (B, 1, S, S) {0, 1}, a subset of ``mask``.
    """
    dark, light = rim_drops(masked, mask, depth, darker, lighter, sigma, light_from)
    return mask - torch.maximum(dark, light)


def rim_drops(
    masked: Tensor,
    mask: Tensor,
    depth: float = RIM,
    darker: float = RIM_DARKER,
    lighter: float = RIM_LIGHTER,
    sigma: float = 3.0,
    light_from: float = LIGHT_FROM,
) -> tuple[Tensor, Tensor]:
    """The rim pixels :func:`trim_rim` drops as (dark, light), each (B, 1, S, S) {0, 1}: the
    face ring extends every kept or dark-dropped pixel outward but not the light ones
    (:meth:`ExemplarModel.trimmed`)."""
    none = torch.zeros_like(mask)
    if depth <= 0:
        return none, none
    inside = distance_to(1.0 - mask)  # px to the nearest pixel not kept: 1 on the edge
    rim = (inside <= depth).to(mask) * mask
    core = mask - rim
    lightness = rgb_to_lab(masked)[:, :1]
    face, den = weighted_blur(lightness, core, sigma)  # L* of the face nearby
    dark = rim * (((face - lightness) > darker) & (den > 1e-3)).to(mask)
    if lighter <= 0:
        return dark, none
    row = torch.arange(mask.shape[2]).to(mask).view(1, 1, -1, 1)
    covered = mask.amax(3, keepdim=True) > 0.5  # (B, 1, S, 1) the rows the mask covers
    top = torch.where(covered, row, torch.full_like(row, float("inf"))).amin(2, keepdim=True)
    bottom = torch.where(covered, row, torch.full_like(row, -1.0)).amax(2, keepdim=True)
    low = row >= top + light_from * (bottom - top)
    light = rim * (((lightness - face) > lighter) & (den > 1e-3) & low).to(mask)
    return dark, light


#: the revision of the fitting code, part of ``ExemplarHallucinator.digest`` (what output
#: folders record, so a resumed job never mixes portraits of two revisions). Raise it when a
#: change alters the portraits a given bank file gives. 2: dark hair or background reaching the
#: exemplar's frame is pasted, no longer inpainted; 3: rim pixels below the brows that are
#: lighter than the face beside them get context (docs/results.md §4, eleventh round).
FIT_REVISION = 3

#: :class:`ExemplarModel`'s fit settings and their defaults, what a packed bank records
#: (``black_invalid`` is not among them: it is the caller's, see :class:`ExemplarModel`).
FIT_DEFAULTS: dict[str, float | bool] = {
    "harmonise": 1.0,
    "harmonise_far": 0.5,
    "harmonise_radius": 16.0,
    "seam_band": 3.0,
    "seam_falloff": 8.0,
    "face_band": 2.0,
    "inpaint_invalid": True,
    "align": False,
    "outline": True,
    "outline_inset": 0.0,
}


def model_settings(
    weights: Mapping[str, float] | None, fit: Mapping[str, float | bool] | None
) -> tuple[dict[str, float], dict[str, float | bool]]:
    """An exemplar model's retrieval weights (None = :data:`DEFAULT_WEIGHTS`) and fit settings (over
    :data:`FIT_DEFAULTS`), typed; ValueError when either names an unknown key."""
    weights = dict(DEFAULT_WEIGHTS) if weights is None else dict(weights)
    fit = {**FIT_DEFAULTS, **(fit or {})}
    if set(weights) - set(TERMS) or set(fit) - set(FIT_DEFAULTS):
        raise ValueError(
            f"weights must name terms of {TERMS} and fit settings of {tuple(FIT_DEFAULTS)}; "
            f"got {sorted(weights)} and {sorted(fit)}"
        )
    typed = {k: type(FIT_DEFAULTS[k])(v) for k, v in fit.items()}
    return {k: float(v) for k, v in weights.items()}, typed


class ExemplarSource(Protocol):
    """Where the pixels of bank rows come from (a prepared folder, a packed bank file)."""

    def exemplars(self, rows: Tensor) -> dict[str, Tensor]:
        """``image`` (k, 3, S, S) in [-1, 1], ``hull`` and ``valid`` (k, 1, S, S) {0, 1} and
        ``landmarks`` (k, 68, 2) of bank rows ``rows`` (k,), on the CPU."""
        ...


class FaceItems:
    """:class:`ExemplarSource` over a dataset whose items hold ``image``, ``mask`` (the face
    hull), ``valid`` and ``landmarks`` (``facectx.data.datasets.PreparedFaces``), row j = item j.
    """

    def __init__(self, faces) -> None:
        self.faces = faces

    def exemplars(self, rows: Tensor) -> dict[str, Tensor]:
        items = [self.faces[int(j)] for j in rows]
        keys = {"image": "image", "hull": "mask", "valid": "valid", "landmarks": "landmarks"}
        return {k: torch.stack([it[v] for it in items]) for k, v in keys.items()}


class ExemplarModel:
    """Retrieval and fitting over a bank: the one path from masked faces to exemplar contexts,
    shared by the ``exemplar`` evaluation method and ``ExemplarHallucinator``.

    Args:
        bank: descriptors of the exemplars (row j = exemplar j).
        source: the exemplars' pixels (:class:`ExemplarSource`).
        identity: network embedding masked faces for the ``identity`` term (called on the
            inputs' device); None = no identity term (its weight must then be 0).
        weights: retrieval term -> weight (see :class:`ExemplarBank`); None =
            :data:`DEFAULT_WEIGHTS`.
        exclude_same_person: never retrieve a face of the query's person (its own id never).
        top: draw the candidates at random among the best ``top`` (<= k: the best k by rank).
        seed: seed of those draws; a face's draw depends only on it and the face's key.
        fit: fit settings over :data:`FIT_DEFAULTS`: ``harmonise``, ``harmonise_far``,
            ``harmonise_radius``, ``seam_band``, ``seam_falloff`` (as in :func:`fit_exemplar`),
            ``inpaint_invalid`` (inpaint where the exemplar's photo has no pixels before
            pasting), ``align`` (warp the exemplar by the similarity that best maps its
            landmarks onto the query's; queries without landmarks are not warped), ``outline``
            (bend the exemplar with :func:`outline_grid` so its jaw and brows land on the
            query's; queries without landmarks are not bent).
        black_invalid: black (-1) where the query's photo has no pixels (``valid`` 0), as in
            the evaluation's originals; False fills the context there too.
        rim: px of the keep-mask's edge where pixels darker than the face, or below the brows
            lighter, get context (:func:`trim_rim`; 0 = every kept pixel stays). Like
            ``black_invalid`` the caller's, not a bank setting.
        pool: candidates fitted per portrait: :meth:`portraits` fits up to ``pool`` × K
            exemplars and keeps K of them (see ``accept``); 1 = the first K candidates as they
            come. Also the caller's, like ``rim``.
        accept: with ``pool`` > 1, the worst-sector :func:`seam_residual`
            (:data:`ACCEPT_SECTORS`) at or below which a candidate meets the face: the K
            portraits are the first K such candidates in retrieval's order, then (when fewer
            meet it) the others, also in retrieval's order; candidates are fitted only until
            every face has K. None = all ``pool`` × K are fitted and the K with the lowest
            whole-ring residuals kept, whatever retrieval's order.
        harmoniser: a network re-lighting each fitted portrait's context to its face, called
            as ``harmoniser(portraits, kept, valid)`` after the fit and returning the kept face
            pixels exact (``facectx.zoo.harmoniser.ContextHarmoniser``); None = the fit's
            portraits as they are. The caller's, like ``rim``. :func:`seam_residual`, which
            ``pool`` and ``accept`` read, is measured on the fit before it, and with ``pool``
            > 1 it runs only on the portraits kept.
    """

    def __init__(
        self,
        bank: ExemplarBank,
        source: ExemplarSource,
        identity: Callable[[Tensor], Tensor] | None = None,
        weights: Mapping[str, float] | None = None,
        exclude_same_person: bool = True,
        top: int = 1,
        seed: int = 0,
        fit: Mapping[str, float | bool] | None = None,
        black_invalid: bool = True,
        rim: float = 0.0,
        pool: int = 1,
        accept: float | None = None,
        harmoniser: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        if accept is not None and not accept >= 0:
            raise ValueError(f"accept must be a seam residual >= 0 (or None), got {accept}")
        if rim < 0:
            raise ValueError(f"rim must be >= 0 px, got {rim}")
        if pool < 1:
            raise ValueError(f"pool must be >= 1 candidate per portrait, got {pool}")
        self.rim = float(rim)
        self.pool = int(pool)
        self.accept = None if accept is None else float(accept)
        self.harmoniser = harmoniser
        self.weights, self.settings = model_settings(weights, fit)
        if self.weights.get("identity") and identity is None:
            raise ValueError("the identity term needs an identity network (or weight 0)")
        self.bank, self.source, self.identity = bank, source, identity
        self.exclude_same_person = bool(exclude_same_person)
        self.top, self.seed = int(top), int(seed)
        # fit_exemplar's keyword arguments
        self.fit = {
            k: v
            for k, v in self.settings.items()
            if k not in ("inpaint_invalid", "align", "outline", "outline_inset")
        }
        self.fit["black_invalid"] = bool(black_invalid)

    def query(
        self, masked: Tensor, mask: Tensor, valid: Tensor, landmarks: Tensor | None
    ) -> dict[str, Tensor]:
        """Descriptors of a batch of inputs (on the CPU); no ``shape`` without landmarks."""
        lm = None if landmarks is None else landmarks.cpu()
        query = describe_faces(masked.cpu(), mask.cpu(), valid.cpu(), lm)
        if self.identity is not None and self.weights.get("identity"):
            query["identity"] = F.normalize(self.identity(masked).float().cpu(), dim=1)
        return query

    @torch.inference_mode()
    def candidates(
        self,
        query: Mapping[str, Tensor],
        k: int,
        keys: Sequence[str],
        persons: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> Tensor:
        """(B, k) bank rows: the best k, or k drawn among the best ``top`` per face (seeded by
        ``seed``, default the model's, and the face's ``keys`` entry, its id: a face gets the
        same draw in any batch). A query without ``shape`` is ranked without that term."""
        weights = {
            n: w for n, w in self.weights.items() if n not in ("shape", "identity") or n in query
        }
        scores = self.bank.scores(query, weights)
        persons = list(persons) if persons else [""] * len(keys)
        banned = self.bank.banned(list(keys), persons, self.exclude_same_person)
        seed = self.seed if seed is None else int(seed)
        rows = []
        for i, key in enumerate(keys):
            gen = None
            if self.top > k:
                gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
            rows.append(choose(scores[i : i + 1], banned[i : i + 1], k, self.top, gen)[0])
        return torch.stack(rows)

    def kept(self, masked: Tensor, mask: Tensor) -> Tensor:
        """(B, 1, S, S): the pixels of ``mask`` that outputs keep (all but the rim's foreign
        pixels, :func:`trim_rim`)."""
        return trim_rim(masked, mask, self.rim)

    def trimmed(self, masked: Tensor, mask: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`kept`, and the input pixels the face ring extends outward: the photo's face
        pixels but the rim pixels dropped as light, which it would carry out again as a line
        (:func:`rim_drops`). Computed once per batch, whatever the number of candidates."""
        dark, light = rim_drops(masked, mask, self.rim)
        return mask - torch.maximum(dark, light), mask * valid * (1 - light)

    @torch.inference_mode()
    def render(
        self,
        rows: Tensor,
        masked: Tensor,
        mask: Tensor,
        valid: Tensor,
        landmarks: Tensor | None,
        kept: Tensor | None = None,
        ring_source: Tensor | None = None,
        with_residual: bool = False,
        harmonise: bool = True,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """(B, 3, S, S) outputs with bank row ``rows[i]`` as face i's exemplar; the pixels of
        :meth:`kept` are the input's exactly (``kept``, ``ring_source``: :meth:`trimmed`, when
        the caller has them already, as for K samples of the same faces). ``with_residual``:
        also each output's (B,) :func:`seam_residual`. ``harmonise=False`` leaves out the
        :attr:`harmoniser` (:meth:`portraits` runs it only on the candidates it keeps)."""
        if kept is None or ring_source is None:
            trim = self.trimmed(masked, mask, valid)
            kept = trim[0] if kept is None else kept
            ring_source = trim[1] if ring_source is None else ring_source
        dev = masked.device
        ex = {k: v.to(dev) for k, v in self.source.exemplars(rows).items()}
        exemplar, hull, ex_valid = ex["image"], ex["hull"], ex["valid"]
        lm = ex["landmarks"].cpu()  # the exemplars' landmarks, moved along with every warp
        if self.settings["align"] and landmarks is not None:
            m = similarity(lm, landmarks.cpu())
            exemplar, hull, ex_valid = warp(exemplar, m), warp(hull, m), warp(ex_valid, m)
            hull, ex_valid = (hull > 0.5).float(), (ex_valid > 0.99).float()
            lm = lm @ m[:, :, :2].transpose(1, 2) + m[:, :, 2][:, None]
        if self.settings["outline"] and landmarks is not None:
            inset = float(self.settings["outline_inset"])
            grid = outline_grid(lm, landmarks.cpu(), exemplar.shape[-1], inset).to(dev)
            exemplar, hull, ex_valid = (sample_grid(t, grid) for t in (exemplar, hull, ex_valid))
            hull, ex_valid = (hull > 0.5).float(), (ex_valid > 0.99).float()
        stats = (self.bank.colour_mean[rows].to(dev), self.bank.colour_std[rows].to(dev))
        out, fitted = fit_exemplar(
            exemplar,
            stats,
            hull,
            masked,
            mask,
            valid,
            exemplar_valid=ex_valid if self.settings["inpaint_invalid"] else None,
            with_fill=True,
            face_source=ring_source,
            **self.fit,
        )
        dropped = (mask - kept) * valid  # beyond the photo fit_exemplar decides (black or fill)
        if dropped.any():
            # from the face inside and the context outside alike: the outline stays where the
            # hull put it (filling from the face alone moved the jaw out and cost identity)
            out = fill_invalid(out, 1.0 - dropped, radius=2.0)
        if harmonise and self.harmoniser is not None:
            out = self.harmoniser(out, kept, valid)
        if with_residual:
            sectors = 0 if self.accept is None else ACCEPT_SECTORS
            return out, seam_residual(fitted, masked, kept, sectors)
        return out

    @torch.inference_mode()
    def portraits(
        self,
        query: Mapping[str, Tensor],
        k: int,
        keys: Sequence[str],
        masked: Tensor,
        mask: Tensor,
        valid: Tensor,
        landmarks: Tensor | None,
        persons: Sequence[str] | None = None,
        seed: int | None = None,
        kept: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """K portraits per face: (B, K, 3, S, S) outputs and their (B, K) bank rows.

        With :attr:`pool` > 1, the choice among good matches is made on how the fitted context
        actually meets the face (:func:`seam_residual`), which retrieval's ring colours only
        estimate. With :attr:`accept` set, a candidate is skipped when its worst sector's
        residual is above ``accept`` and later ones meet it: retrieval's order stands
        otherwise. Candidates are fitted one rank at a time, each rank only for the faces still
        short of K that meet it (most faces need only their first K). A face none of whose candidates meets it
        keeps retrieval's order, since its seam is then its own (glasses, a hand, hair across
        the face) and another context would not remove it. Without ``accept``, all ``pool`` ×
        K are fitted and the K with the lowest residuals kept, best first. ``query``:
        :meth:`query` of the inputs."""
        trim = self.trimmed(masked, mask, valid)  # once for all candidates
        kept, source = (trim[0] if kept is None else kept), trim[1]
        n = max(k, min(k * self.pool, len(self.bank)))
        rows = self.candidates(query, n, keys, persons, seed)
        inputs = (masked, mask, valid, landmarks, kept, source)
        if n == k:  # no choice to make
            outs = [self.render(rows[:, c], *inputs) for c in range(k)]
            return torch.stack(outs, 1), rows
        outs = masked.new_zeros(len(rows), n, *masked.shape[1:])
        res = torch.full((len(rows), n), float("inf"))  # never fitted: never accepted
        need = torch.ones(len(rows), dtype=torch.bool)  # faces still short of K accepted fits
        for c in range(n):
            i = need.nonzero()[:, 0]
            part = (
                inputs
                if bool(need.all())
                else [t if t is None else t[i.to(t.device)] for t in inputs]
            )
            out, r = self.render(rows[i, c], *part, with_residual=True, harmonise=False)
            outs[i.to(outs.device), c], res[i, c] = out, r.cpu()
            if self.accept is not None and c + 1 >= k:
                need &= (res <= self.accept).sum(1) < k
                if not need.any():
                    break
        if self.accept is None:
            order = res
        else:  # accepted candidates in rank order, then the others in rank order too
            rank = torch.arange(res.shape[1], dtype=res.dtype).expand_as(res)
            order = torch.where(res <= self.accept, rank - res.shape[1], rank)
        best = order.argsort(dim=1, stable=True)[:, :k]
        chosen = outs[torch.arange(len(best))[:, None], best.to(outs.device)]
        if self.harmoniser is not None:  # only the K kept of the pool's fits
            flat = self.harmoniser(
                chosen.flatten(0, 1), kept.repeat_interleave(k, 0), valid.repeat_interleave(k, 0)
            )
            chosen = flat.view_as(chosen)
        return chosen, rows.gather(1, best)


__all__ = [
    "ACCEPT",
    "ACCEPT_SECTORS",
    "DEFAULT_WEIGHTS",
    "FIT_DEFAULTS",
    "FIT_REVISION",
    "GRID",
    "LIGHT_FROM",
    "OUTLINE",
    "POOL",
    "RESIDUAL_RING",
    "RIM",
    "RIM_DARKER",
    "RIM_LIGHTER",
    "RING",
    "SEAM_LIMIT",
    "SECTORS",
    "TERMS",
    "ExemplarBank",
    "ExemplarModel",
    "ExemplarSource",
    "FaceItems",
    "angular_sectors",
    "choose",
    "coverage",
    "dark_border",
    "describe_faces",
    "distance_to",
    "fill_invalid",
    "fit_exemplar",
    "lab_to_rgb",
    "model_settings",
    "outline_grid",
    "region_stats",
    "rgb_to_lab",
    "rim_drops",
    "ring_colours",
    "sample_grid",
    "seam_cost",
    "seam_offset",
    "seam_residual",
    "sector_sums",
    "shape_descriptor",
    "similarity",
    "small_mask",
    "soft_iou",
    "standardise",
    "transfer_colour",
    "trim_rim",
    "warp",
]
