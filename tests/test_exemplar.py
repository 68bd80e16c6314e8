"""Exemplar-guided context on the embedded sample: the sample is both the bank and the query."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from facectx.evaluation.exemplar import Exemplar
from facectx.zoo.exemplar import (
    distance_to,
    fit_exemplar,
    lab_to_rgb,
    rgb_to_lab,
    seam_offset,
    shape_descriptor,
    trim_rim,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def batch():
    from torch.utils.data import DataLoader

    from facectx.assets import sample_root
    from facectx.data.datasets import PreparedFaces

    faces = PreparedFaces(sample_root(), split="train")
    b = next(iter(DataLoader(faces, batch_size=8, shuffle=False)))
    b["person_name"] = [faces.rows[int(i)]["person"] for i in b["index"]]
    return b


NO_ID = {"shape": 1.0, "colour": 1.0, "hull": 1.0, "coverage": 1.0}


@pytest.fixture(scope="module")
def method(tmp_path_factory):
    """Every term but identity (the identity network is slow on one thread)."""
    m = Exemplar(weights=NO_ID, cache_dir=str(tmp_path_factory.mktemp("exemplar_cache")))
    m.setup(128, torch.device("cpu"))
    return m


def test_known_pixels_are_kept_exactly_and_context_filled(method, batch):
    pred = method.predict(batch)
    out, mask, masked = pred.images, batch["mask"], batch["masked"]
    assert out.shape == masked.shape and out.dtype == torch.float32
    assert pred.problems == [None] * len(out)
    assert out.min() >= -1 and out.max() <= 1
    kept = method.model.kept(masked, mask)
    assert ((kept <= mask).all()) and kept.sum() > 0.95 * mask.sum()  # only rim pixels go
    face = kept.expand_as(out) > 0.5
    assert torch.equal(out[face], masked[face])
    core = (distance_to(1 - mask) > 2).expand_as(out)  # beyond the rim: always kept
    assert torch.equal(out[core], masked[core])
    ctx = ~face & (batch["valid"].expand_as(out) > 0.5)
    assert (out[ctx] != -1).float().mean() > 0.9  # context filled
    assert (out[batch["valid"].expand_as(out) < 0.5] == -1).all()  # black_invalid


def test_same_face_and_person_are_never_retrieved(method, batch):
    rows = method.candidates(batch, 5)
    for face_id, person, r in zip(batch["id"], batch["person_name"], rows):
        for j in r.tolist():
            assert method.bank.ids[j] != face_id
            assert method.bank.persons[j] != person


def test_k_candidates_differ_and_draws_are_reproducible(method, batch, tmp_path):
    outs, rows = method.samples(batch, 3)
    assert outs.shape == (len(batch["id"]), 3, 3, 128, 128)
    assert all(len(set(r.tolist())) == 3 for r in rows)  # three distinct exemplars
    hole = (batch["mask"] < 0.5) & (batch["valid"] > 0.5)
    a, b = outs[:, 0], outs[:, 1]
    assert ((a - b).abs().sum(1, keepdim=True)[hole] > 0.05).float().mean() > 0.5

    def drawn(seed: int) -> torch.Tensor:
        m = Exemplar(weights=NO_ID, top=10, seed=seed, cache_dir=method.cache_dir)
        m.setup(128, torch.device("cpu"))
        return m.candidates(batch, 3)

    first = drawn(0)
    assert torch.equal(first, drawn(0))
    assert not torch.equal(first, drawn(1))
    # a face's draw does not depend on the rest of its batch
    single = {k: v[2:3] for k, v in batch.items()}
    m = Exemplar(weights=NO_ID, top=10, seed=0, cache_dir=method.cache_dir)
    m.setup(128, torch.device("cpu"))
    assert torch.equal(m.candidates(single, 3)[0], first[2])


def test_colour_transfer_moves_the_context_toward_the_face_colour(batch):
    masked, mask, valid = batch["masked"][:1], batch["mask"][:1], batch["valid"][:1]
    exemplar = torch.full_like(masked, 0.6)  # a flat, too bright exemplar
    exemplar[:, :, :20] = -0.2  # with some structure so its std is not 0
    region = mask * valid
    lab = rgb_to_lab(exemplar)
    w = region / region.sum()
    mean = (lab * w).sum((2, 3))
    std = ((lab - mean[..., None, None]) ** 2 * w).sum((2, 3)).sqrt()
    kw = dict(seam_band=0, black_invalid=False)
    plain = fit_exemplar(exemplar, (mean, std), mask, masked, mask, valid, harmonise=0, **kw)
    fitted = fit_exemplar(
        exemplar, (mean, std), mask, masked, mask, valid, harmonise=1, harmonise_far=1, **kw
    )
    face_mean = (masked * region).sum((2, 3)) / region.sum()
    ring = (mask < 0.5) & (valid > 0.5)
    ring = ring & torch.roll(mask > 0.5, 4, dims=3)  # context pixels 4 px from the face

    def gap(x):
        return (x.permute(1, 0, 2, 3)[:, ring[:, 0]].mean(1) - face_mean[0]).abs().sum()

    assert gap(fitted) < 0.5 * gap(plain)


def test_lab_round_trip_and_shape_descriptor_invariance():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-3)
    lm = torch.rand(1, 68, 2) * 100
    moved = lm * 2.5 + torch.tensor([7.0, -3.0])
    assert torch.allclose(shape_descriptor(lm), shape_descriptor(moved), atol=1e-5)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="weights"):
        Exemplar(weights={"hair": 1.0})
    with pytest.raises(ValueError, match="sample"):
        Exemplar(sample=-1)


def test_aligned_exemplar_keeps_known_pixels(method, batch):
    aligned = Exemplar(weights=NO_ID, align=True, cache_dir=method.cache_dir)
    aligned.setup(128, torch.device("cpu"))
    out = aligned.predict(batch).images
    face = aligned.model.kept(batch["masked"], batch["mask"]).expand_as(out) > 0.5
    assert torch.equal(out[face], batch["masked"][face])
    assert not torch.equal(out, method.predict(batch).images)  # the warp moved the context


def test_similarity_recovers_a_known_transform():
    from facectx.zoo.exemplar import similarity

    src = torch.rand(1, 68, 2) * 100
    angle = torch.tensor(0.1)
    rot = 1.2 * torch.tensor([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]])
    dst = src @ rot.T + torch.tensor([3.0, -5.0])
    m = similarity(src, dst)[0]
    assert torch.allclose(m[:, :2], rot, atol=1e-4)
    assert torch.allclose(m[:, 2], torch.tensor([3.0, -5.0]), atol=1e-3)


def test_dark_border_flags_dark_regions_joined_to_the_frame_only():
    """Near-black pixels joined to the frame (hair or a background reaching the edge), not
    those inside it (a dark shirt, a black blob)."""
    from facectx.zoo.exemplar import dark_border

    img = torch.zeros(1, 3, 16, 16)  # mid grey in [-1, 1]
    img[..., :, :3] = -1.0  # black margin on the left edge
    img[..., 6:9, 6:9] = -1.0  # a black blob inside
    d = dark_border(img)
    assert d.shape == (1, 1, 16, 16)
    assert d[0, 0, :, :3].all() and not d[0, 0, 6:9, 6:9].any()
    assert d.sum() == 16 * 3


def test_dark_context_reaching_the_frame_is_pasted_not_inpainted(ranked, batch):
    """Black hair or a dark background that reaches the exemplar's frame is context. The fit
    once took it for an alignment margin and inpainted it from the lighter pixels around it,
    which drew smears and strokes beside the head."""
    from facectx.zoo.exemplar import ExemplarModel

    m, query, args, keys, persons = ranked
    rows = m.candidates(query, 1, keys, persons)[:, 0]

    class DarkTop:
        """The bank's pictures with a black band (hair) across the top, joined to the frame."""

        def exemplars(self, r):
            ex = dict(m.source.exemplars(r))
            ex["image"] = ex["image"].clone()
            ex["image"][..., :24, :] = -1.0
            return ex

    dark = ExemplarModel(m.bank, DarkTop(), None, m.weights, fit=m.settings, rim=m.rim)
    out, plain = dark.render(rows, *args), m.render(rows, *args)
    top = torch.zeros_like(batch["mask"], dtype=torch.bool)
    top[..., 2:12, 16:-16] = True  # well away from every face and its seam offset
    top &= batch["valid"] > 0.5
    assert top.sum() > 0
    sel = top.expand_as(out)
    # the band stays far darker than the picture it replaced (inpainted, it took its colours)
    assert out[sel].mean() < plain[sel].mean() - 0.3
    assert out[sel].mean() < -0.6


def test_a_light_rim_on_the_cheeks_is_not_carried_into_the_context(ranked, batch):
    """A light wall blended into the hull's edge on the cheeks and jaw draws a thin light line
    if kept, or if the face ring extends it outward; both the dropped pixels and the ring next
    to them must take the face's and the context's colours instead."""
    from facectx.zoo.exemplar import rgb_to_lab

    m, query, _, keys, persons = ranked
    masked, mask, valid = batch["masked"], batch["mask"], batch["valid"]
    rows = m.candidates(query, 1, keys, persons)[:, 0]
    edge = (distance_to(1 - mask) <= 1) & (mask > 0.5)
    row = torch.arange(mask.shape[2]).view(1, 1, -1, 1)
    low = edge & (row >= 80) & (valid > 0.5)  # the lower cheeks and jaw of the aligned faces
    white = torch.where(low.expand_as(masked), torch.ones_like(masked), masked)
    out = m.render(rows, white, mask, valid, batch["landmarks"])
    kept = m.kept(white, mask)
    assert ((mask - kept) >= low.float()).all()  # every white edge pixel there was dropped
    ring = (distance_to(low.float()) <= 1.5) & (mask < 0.5) & (valid > 0.5)  # just outside
    lightness, skin = rgb_to_lab(out)[:, :1], rgb_to_lab(masked)[:, :1][low].mean()
    assert low.sum() > 20 and ring.sum() > 20
    # about the face's own edge (white is L* 100; the ring from the white pixels was ~20 above)
    assert lightness[low].mean() < skin + 8 and lightness[ring].mean() < skin + 8


def test_the_colour_transfer_keeps_the_inpainted_exemplar():
    """Where the exemplar's photo has no pixels it is inpainted before the colour transfer,
    which must work on the inpainted picture (it once started again from the raw exemplar, so
    the black margins came back)."""
    from facectx.zoo.exemplar import fit_exemplar, region_stats, rgb_to_lab

    s = 32
    exemplar = torch.full((1, 3, s, s), 0.2)
    exemplar[..., :, :8] = -1.0  # black margin where the exemplar's photo ended
    ex_valid = torch.ones(1, 1, s, s)
    ex_valid[..., :, :8] = 0
    hull = torch.zeros(1, 1, s, s)
    hull[..., 10:22, 12:24] = 1
    mask, valid = hull.clone(), torch.ones(1, 1, s, s)
    masked = (mask * 0.1 + (1 - mask) * -1.0).expand(1, 3, s, s)
    stats = region_stats(rgb_to_lab(exemplar), hull)
    out = fit_exemplar(exemplar, stats, hull, masked, mask, valid, exemplar_valid=ex_valid)
    assert out[..., :, :8].amin() > -0.5  # filled from the exemplar's grey, not black
    face = mask.expand_as(out) > 0
    assert torch.equal(out[face], masked[face])  # the face is the input's exactly


def test_outline_grid_is_the_identity_for_equal_outlines_and_moves_the_jaw():
    """Equal outlines leave the exemplar where it is; a shifted input jaw reads the exemplar's
    jaw at the input's jaw points; the photo's corners stay put."""
    from facectx.zoo.exemplar import outline_grid

    gen = torch.Generator().manual_seed(0)
    lm = torch.rand(1, 68, 2, generator=gen) * 60 + 34
    s = 128
    ys, xs = torch.meshgrid(torch.arange(s + 0.0), torch.arange(s + 0.0), indexing="ij")
    ident = torch.stack([(xs + 0.5) / s * 2 - 1, (ys + 0.5) / s * 2 - 1], -1)
    assert torch.allclose(outline_grid(lm, lm, s)[0], ident, atol=1e-5)
    moved = lm.clone()
    moved[:, :17, 0] += 6.0
    px = (outline_grid(lm, moved, s)[0] + 1) / 2 * s - 0.5  # where each output px reads
    for j in (3, 8, 13):
        x, y = moved[0, j].round().long().tolist()
        assert (px[y, x] - lm[0, j]).abs().max() < 1.6  # within the rounding and smoothing
    assert torch.allclose(px[0, 0], torch.zeros(2), atol=0.5)
    assert torch.allclose(px[-1, -1], torch.full((2,), s - 1.0), atol=0.5)


def test_outline_warp_keeps_known_pixels_and_changes_the_context(method, batch):
    assert method.model.settings["outline"]  # the default
    flat = Exemplar(weights=NO_ID, outline=False, cache_dir=method.cache_dir)
    flat.setup(128, torch.device("cpu"))
    out = method.predict(batch).images
    face = method.model.kept(batch["masked"], batch["mask"]).expand_as(out) > 0.5
    assert torch.equal(out[face], batch["masked"][face])
    assert not torch.equal(out, flat.predict(batch).images)


def test_ring_colours_and_seam_cost_prefer_the_exemplar_that_meets_the_face():
    """A query whose face edge is dark at the bottom prefers the exemplar dark just below its
    hull over one bright there; both rings are read on the right side of the outline."""
    from facectx.zoo.exemplar import SECTORS, region_stats, rgb_to_lab, ring_colours, seam_cost

    s = 64
    hull = torch.zeros(1, 1, s, s)
    hull[..., 16:48, 16:48] = 1
    valid = torch.ones(1, 1, s, s)
    face = torch.full((1, 3, s, s), 0.2)
    face[..., 44:48, :] = -0.8  # the query's own jaw edge is dark
    query = ring_colours(face * hull, hull, valid, outside=False)
    assert query.shape == (1, SECTORS, 3) and torch.isfinite(query).all()

    def exemplar(below: float) -> Tensor:
        img = torch.full((1, 3, s, s), 0.2)
        img[..., 48:, :] = below  # what lies under the exemplar's jaw
        return img

    dark, bright = exemplar(-0.8), exemplar(0.9)
    bank_ring = torch.cat([ring_colours(x, hull, valid, outside=True) for x in (dark, bright)])
    stats = region_stats(rgb_to_lab(face), hull)
    bank_stats = tuple(torch.cat([v, v]) for v in stats)
    cost = seam_cost(query, stats, bank_ring, bank_stats)
    assert cost.shape == (1, 2) and cost[0, 0] < cost[0, 1]
    empty = ring_colours(face, hull, torch.zeros_like(valid), outside=True)
    assert torch.isnan(empty).all()  # no valid band pixel: every sector is missing
    worst = seam_cost(
        query,
        stats,
        torch.cat([bank_ring, empty]),
        tuple(torch.cat([v, v[:1]]) for v in bank_stats),
    )
    assert worst[0, 2] == worst[0].max()


def _disc_face(s: int = 64, radius: float = 24.0):
    """A skin-coloured disc face (mask 1) on black, as a masked input."""
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    r = ((yy - s / 2) ** 2 + (xx - s / 2) ** 2).float().sqrt()
    mask = (r <= radius).float()[None, None]
    skin = torch.tensor([0.5, 0.1, -0.1]).view(1, 3, 1, 1)
    return skin * mask + (mask - 1), mask, r


def test_trim_rim_drops_only_foreign_pixels_on_the_edge():
    """The hull's outermost pixels that hold shadow or hair, or (on the cheeks and jaw) a light
    background blended into the edge, go; skin on the edge stays even beside dark brows, and
    dark features further in (eyes, brows) are never touched."""
    masked, mask, r = _disc_face()
    inside = distance_to(1 - mask)[0, 0]
    rim = (inside <= 1.0) & (mask[0, 0] > 0)
    rows = torch.arange(64)[:, None].expand(64, 64)
    cols = torch.arange(64)[None, :].expand(64, 64)
    shadow = rim & (rows >= 40)  # the edge along the "jaw": the shadow under it
    background = rim & (rows >= 20) & (rows < 40) & (cols < 20)  # a white wall at the cheek
    high = rim & (rows < 16) & (cols < 20)  # the same beside the brows: above the light rule
    brow = (inside > 2) & (inside <= 6) & (rows < 16)  # dark brows just inside the top edge
    eye = (inside > 6) & (r < 6)
    dark = torch.tensor([-0.8, -0.85, -0.85]).view(3, 1, 1)
    masked = masked.clone()
    masked[0] = torch.where(shadow | eye | brow, dark, masked[0])
    masked[0] = torch.where(background | high, torch.ones(3, 1, 1), masked[0])

    kept = trim_rim(masked, mask, depth=2.0, lighter=12.0)
    dropped = (mask - kept)[0, 0] > 0.5
    assert (kept <= mask).all()
    # exactly the shadow and the low background pixels: the skin on the edge above the brows,
    # lighter than the plain average of the face beside it, stays, as does anything light
    # above 0.2 of the face's height (the disc spans rows 8-56: the rule starts at row 17.6)
    assert torch.equal(dropped, shadow | background)
    assert torch.equal(trim_rim(masked, mask, depth=2.0), kept)  # the shipped default
    only_dark = (mask - trim_rim(masked, mask, depth=2.0, lighter=0.0))[0, 0] > 0.5
    assert torch.equal(only_dark, shadow)  # lighter 0: light pixels stay
    assert torch.equal(trim_rim(masked, mask, depth=0.0), mask)
    uniform, mask2, _ = _disc_face()
    assert torch.equal(trim_rim(uniform, mask2), mask2)  # nothing foreign: nothing dropped


def test_seam_offset_leaves_out_band_pixels_that_show_something_else():
    """Where the input's band shows hair against the exemplar's skin, that difference must not
    be spread into the context as a dark arc; where both show skin the offset still applies."""
    s = 32
    mask = torch.zeros(1, 1, s, s)
    mask[..., 8:24, 8:24] = 1
    trust = torch.ones_like(mask)
    fill = torch.full((1, 3, s, s), 0.2)  # the exemplar: one skin tone everywhere
    masked = torch.full((1, 3, s, s), 0.3) * mask  # the input's skin, a little lighter
    masked[..., 8:24, 8:12] = -0.9 * mask[..., 8:24, 8:12]  # the input's own dark fringe (left)
    out = seam_offset(fill, masked, mask, trust, band=3.0, falloff=8.0)
    left, right = out[0, :, 16, 5], out[0, :, 16, 26]
    assert (right > 0.2).all()  # skin beside skin: lifted toward the input's skin
    assert (left > 0.15).all()  # no dark arc spread from the fringe
    out_all = seam_offset(fill, masked, mask, trust, band=3.0, falloff=8.0, limit=0.0)
    assert (out_all[0, :, 16, 5] < 0).all()  # without the limit the fringe darkens the context


def test_seam_residual_measures_the_fitted_face_just_inside_the_outline():
    from facectx.zoo.exemplar import RESIDUAL_RING, seam_residual

    kept = torch.zeros(1, 1, 32, 32)
    kept[..., 8:24, 8:24] = 1.0
    face = torch.full((1, 3, 32, 32), 0.2)
    masked = face * kept - (1 - kept)
    assert seam_residual(face, masked, kept).item() == pytest.approx(0.0, abs=1e-4)
    # the exemplar differs only deep inside the face or out in the context: no seam
    inside = distance_to(1 - kept)
    away = face.clone()
    away[(inside > RESIDUAL_RING[1] + 0.5).expand_as(face)] = 0.9
    away[(kept < 0.5).expand_as(face)] = -0.8
    assert seam_residual(away, masked, kept).item() == pytest.approx(0.0, abs=1e-4)
    # a lighter band where the face meets the context does count, more the lighter it is
    ring = ((inside >= RESIDUAL_RING[0]) & (inside <= RESIDUAL_RING[1])).expand_as(face)
    scores = []
    for level in (0.4, 0.8):
        band = face.clone()
        band[ring] = level
        scores.append(seam_residual(band, masked, kept).item())
    assert 0 < scores[0] < scores[1]
    # no kept pixels: nothing to meet
    assert seam_residual(face, masked, torch.zeros_like(kept)).item() == 0.0


@pytest.fixture
def ranked(method, batch):
    """The shipped method's bank as a plain ``ExemplarModel`` (rim 2, pool 1), with the batch's
    query, inputs, keys and persons."""
    from facectx.zoo.exemplar import ExemplarModel

    shipped = method.model
    m = ExemplarModel(
        shipped.bank, shipped.source, None, shipped.weights, fit=shipped.settings, rim=2.0
    )
    query = m.query(batch["masked"], batch["mask"], batch["valid"], batch["landmarks"])
    args = (batch["masked"], batch["mask"], batch["valid"], batch["landmarks"])
    return m, query, args, list(batch["id"]), batch["person_name"]


def test_pool_keeps_the_candidates_that_meet_the_face_best(ranked, batch):
    from facectx.zoo.exemplar import ExemplarModel

    m, query, args, keys, persons = ranked
    # pool 1: retrieval's first K, as rendered one by one
    outs, rows = m.portraits(query, 2, keys, *args, persons=persons)
    assert torch.equal(rows, m.candidates(query, 2, keys, persons))
    assert torch.equal(outs[:, 1], m.render(rows[:, 1], *args))
    pooled = ExemplarModel(m.bank, m.source, None, m.weights, fit=m.settings, rim=m.rim, pool=3)
    outs, rows = pooled.portraits(query, 2, keys, *args, persons=persons)
    assert outs.shape == (len(keys), 2, 3, 128, 128)
    six = m.candidates(query, 6, keys, persons)
    kept = m.kept(batch["masked"], batch["mask"])
    residual = torch.stack(
        [m.render(six[:, c], *args, kept, with_residual=True)[1] for c in range(6)], 1
    )
    best = residual.argsort(dim=1, stable=True)[:, :2]
    assert torch.equal(rows, six.gather(1, best))  # the two lowest of six, best first
    for c in range(2):
        assert torch.equal(outs[:, c], m.render(rows[:, c], *args, kept))
    face = kept.expand_as(outs[:, 0]) > 0.5
    assert torch.equal(outs[:, 0][face], batch["masked"][face])  # the face stays exact
    with pytest.raises(ValueError, match="pool"):
        ExemplarModel(m.bank, m.source, None, m.weights, fit=m.settings, pool=0)


def test_accept_skips_candidates_that_do_not_meet_the_face(ranked, batch):
    """pool with ``accept``: the first K candidates (in rank order) whose worst-sector seam
    residual is at most ``accept``, then the others, still in rank order; fitting stops early."""
    from facectx.zoo.exemplar import ExemplarModel

    m, query, args, keys, persons = ranked
    six = m.candidates(query, 6, keys, persons)
    kept = m.kept(batch["masked"], batch["mask"])
    # a model with accept set scores each fit by its worst sector (ACCEPT_SECTORS)
    scorer = ExemplarModel(
        m.bank, m.source, None, m.weights, fit=m.settings, rim=m.rim, pool=3, accept=0.0
    )
    residual = torch.stack(
        [scorer.render(six[:, c], *args, kept, with_residual=True)[1] for c in range(6)], 1
    )

    def pooled(accept):
        model = ExemplarModel(
            m.bank, m.source, None, m.weights, fit=m.settings, rim=m.rim, pool=3, accept=accept
        )
        return model.portraits(query, 2, keys, *args, persons=persons)

    # every candidate meets a lax threshold: retrieval's first two, as with pool 1
    outs, rows = pooled(float(residual.max()) + 1)
    assert torch.equal(rows, six[:, :2])
    assert torch.equal(outs[:, 0], m.render(six[:, 0], *args, kept))
    # none meets 0: still retrieval's first two (the seam is the face's own)
    _, rows = pooled(0.0)
    assert torch.equal(rows, six[:, :2])
    # a threshold in between: per face, the accepted in rank order, then the rest in rank order
    t = float(residual.median())
    outs, rows = pooled(t)
    for i in range(len(keys)):
        ok = [c for c in range(6) if residual[i, c] <= t]
        rest = [c for c in range(6) if residual[i, c] > t]
        assert rows[i].tolist() == six[i, (ok + rest)[:2]].tolist()
    face = kept.expand_as(outs[:, 0]) > 0.5
    assert torch.equal(outs[:, 1][face], batch["masked"][face])  # the face stays exact
    with pytest.raises(ValueError, match="accept"):
        ExemplarModel(m.bank, m.source, None, m.weights, fit=m.settings, pool=2, accept=-1.0)


def test_seam_residual_by_sectors_finds_a_local_band():
    """sectors > 0: the worst sector's mean; a band on one side of the face scores the band's
    own distance there, while the ring-wide mean dilutes it."""
    from facectx.zoo.exemplar import seam_residual

    kept = torch.zeros(1, 1, 64, 64)
    kept[..., 16:48, 16:48] = 1
    masked = torch.full((1, 3, 64, 64), 0.2) * kept
    fitted = masked.clone()
    assert seam_residual(fitted, masked, kept, 12).item() == 0.0
    fitted[..., 16:20, 16:48] = 0.9  # a light band along the top edge only
    whole, worst = seam_residual(fitted, masked, kept), seam_residual(fitted, masked, kept, 12)
    assert worst > 2 * whole > 0
    assert torch.allclose(seam_residual(fitted, masked, kept, 1), whole)  # one sector: the ring


def test_a_harmoniser_relights_only_the_context_after_the_fit(ranked, batch):
    """``harmoniser``: called on each fitted portrait; the kept face stays exact and the seam
    residual (what ``pool`` and ``accept`` read) is the fit's own."""
    from facectx.zoo.exemplar import ExemplarModel
    from facectx.zoo.harmoniser import ContextHarmoniser

    m, query, args, keys, persons = ranked
    net = ContextHarmoniser(width=0.25).eval()
    with torch.no_grad():
        net.head.bias.fill_(0.3)  # as if trained: lighten the context
    relit = ExemplarModel(
        m.bank, m.source, None, m.weights, fit=m.settings, rim=m.rim, harmoniser=net
    )
    rows = m.candidates(query, 1, keys, persons)[:, 0]
    plain, r_plain = m.render(rows, *args, with_residual=True)
    out, r_out = relit.render(rows, *args, with_residual=True)
    kept = m.kept(batch["masked"], batch["mask"]).expand_as(out) > 0.5
    assert torch.equal(out[kept], batch["masked"][kept])
    context = (~kept) & (batch["valid"].expand_as(out) > 0.5)
    assert (out[context] - plain[context]).mean() > 0.1
    assert torch.equal(r_out, r_plain)


def test_with_a_pool_the_harmoniser_runs_only_on_the_portraits_kept(ranked, batch):
    """``pool`` > 1: the pool's candidates are chosen by their fits' seam residual and only the
    K kept are harmonised, giving what harmonising the plain model's choice gives."""
    from facectx.zoo.exemplar import ExemplarModel
    from facectx.zoo.harmoniser import ContextHarmoniser

    m, query, args, keys, persons = ranked
    net = ContextHarmoniser(width=0.25).eval()
    with torch.no_grad():
        net.head.bias.fill_(0.3)
    seen = []

    def harmoniser(x, kept, valid):
        seen.append(len(x))
        return net(x, kept, valid)

    common = {"fit": m.settings, "rim": m.rim, "pool": 3, "accept": 26.0}
    plain = ExemplarModel(m.bank, m.source, None, m.weights, **common)
    relit = ExemplarModel(m.bank, m.source, None, m.weights, **common, harmoniser=harmoniser)
    out_plain, rows_plain = plain.portraits(query, 2, keys, *args, persons=persons)
    out, rows = relit.portraits(query, 2, keys, *args, persons=persons)
    assert torch.equal(rows, rows_plain)  # the choice is the fit's
    assert seen == [2 * len(keys)]  # one call, on the B × K portraits kept
    kept = plain.kept(batch["masked"], batch["mask"]).repeat_interleave(2, 0)
    with torch.no_grad():
        expected = net(out_plain.flatten(0, 1), kept, batch["valid"].repeat_interleave(2, 0))
    assert torch.equal(out.flatten(0, 1), expected)
