"""PreparedFaces: the item dict, masking, mirroring, determinism, splits and errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from synthetic_faces import FACES, LEFT_EYE_RGB, RIGHT_EYE_RGB, SIZE

from facectx.data.datasets import EpochSampler, PreparedFaces, PreparedFileError
from facectx.data.manifest import ManifestError
from facectx.data.transforms import IBUG68_MIRROR, hflip, mirror_landmarks
from facectx.masks import FaceHullMask, IrregularMask, hull_mask
from facectx.pixels import from_uint8


def test_item_keys_shapes_dtypes_ranges(prepared_root):
    ds = PreparedFaces(prepared_root, split="train")
    assert len(ds) == sum(s == "train" for _, s in FACES) and ds.size == SIZE
    assert ds.persons == ["Ann", "Bob", "Cy", "Di"]
    item = ds[0]
    assert set(item) == {"image", "mask", "masked", "valid", "landmarks", "person", "index", "id"}
    for key, shape in (
        ("image", (3, SIZE, SIZE)),
        ("mask", (1, SIZE, SIZE)),
        ("masked", (3, SIZE, SIZE)),
        ("valid", (1, SIZE, SIZE)),
        ("landmarks", (68, 2)),
    ):
        assert item[key].shape == shape and item[key].dtype == torch.float32, key
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert set(item["valid"].unique().tolist()) == {0.0, 1.0}
    assert item["person"].dtype == torch.int64 and item["person"].item() == 0
    assert item["index"].item() == 0 and isinstance(item["id"], str)
    anon = next(i for i in range(len(ds)) if ds.rows[i]["person"] == "")
    assert ds[anon]["person"].item() == -1


def test_stored_mask_is_the_hull_and_masked_is_black_outside(prepared_root):
    ds = PreparedFaces(prepared_root)
    for i in (0, 5, len(ds) - 1):
        item = ds[i]
        hull = torch.from_numpy(hull_mask(item["landmarks"].numpy(), SIZE)).float()
        assert torch.equal(item["mask"][0], hull)
        keep = item["mask"].expand(3, -1, -1) == 1
        assert torch.equal(item["masked"][keep], item["image"][keep])
        assert (item["masked"][~keep] == -1).all()


def test_random_mask_callable(prepared_root):
    ds = PreparedFaces(prepared_root, mask=IrregularMask(area_range=(0.2, 0.3)), seed=1)
    item = ds[2]
    assert 0.2 <= (item["mask"] == 0).float().mean().item() <= 0.3
    keep = item["mask"].expand(3, -1, -1) == 1
    assert torch.equal(item["masked"][keep], item["image"][keep])
    assert (item["masked"][~keep] == -1).all()


def test_mirror_permutation_is_an_involution_swapping_sides():
    perm = torch.tensor(IBUG68_MIRROR)
    assert torch.equal(perm[perm], torch.arange(68))
    assert set(IBUG68_MIRROR[36:42]) == set(range(42, 48))
    assert [IBUG68_MIRROR[i] for i in (27, 30, 33, 51, 57, 62, 66, 8)] == [
        27,
        30,
        33,
        51,
        57,
        62,
        66,
        8,
    ]


def _flipped_pair(prepared_root, mask=None):
    plain = PreparedFaces(prepared_root, mask=mask, mirror=False, seed=3)
    mirrored = PreparedFaces(prepared_root, mask=mask, mirror=True, seed=3)
    flipped = [
        i for i in range(len(plain)) if not torch.equal(plain[i]["image"], mirrored[i]["image"])
    ]
    assert 0 < len(flipped) < len(plain)  # a fair coin over 15 faces
    return plain, mirrored, flipped


def test_mirroring_flips_everything_consistently(prepared_root):
    plain, mirrored, flipped = _flipped_pair(prepared_root)
    for i in flipped:
        a, b = plain[i], mirrored[i]
        for key in ("image", "mask", "valid", "masked"):
            assert torch.equal(b[key], hflip(a[key])), key
        assert torch.allclose(b["landmarks"], mirror_landmarks(a["landmarks"], SIZE))
        # the mirrored stored hull is the hull of the mirrored landmarks (up to edge pixels)
        rebuilt = torch.from_numpy(hull_mask(b["landmarks"].numpy(), SIZE)).float()
        assert (rebuilt != b["mask"][0]).float().mean() < 0.01
        # the subject's right eye (36-41) stays on the image left, now on the formerly left eye
        rgb = ((b["image"] + 1) * 127.5).round().permute(1, 2, 0).numpy()
        for idx, colour in ((range(36, 42), LEFT_EYE_RGB), (range(42, 48), RIGHT_EYE_RGB)):
            cx, cy = np.round(b["landmarks"][list(idx)].mean(0).numpy()).astype(int)
            assert np.abs(rgb[cy, cx] - np.array(colour)).max() < 20, (idx, rgb[cy, cx])
        assert b["landmarks"][36:42, 0].mean() < SIZE / 2 < b["landmarks"][42:48, 0].mean()
        assert (b["valid"][0, :, -2:] == 0).all() and (b["valid"][0, :, :2] == 1).all()
    for i in set(range(len(plain))) - set(flipped):
        assert torch.equal(plain[i]["landmarks"], mirrored[i]["landmarks"])


def test_mirrored_landmark_masks_follow_the_flip(prepared_root):
    plain, mirrored, flipped = _flipped_pair(prepared_root, mask=FaceHullMask())
    i = flipped[0]
    assert (mirrored[i]["mask"] != hflip(plain[i]["mask"])).float().mean() < 0.01


def test_mirror_convention_uses_pixel_centres():
    lm = torch.zeros(68, 2)
    lm[:, 0] = torch.arange(68, dtype=torch.float32) % 10
    out = mirror_landmarks(mirror_landmarks(lm, 10), 10)
    assert torch.equal(out, lm)
    img = torch.zeros(1, 4, 10)
    img[0, 2, 3] = 1
    one = torch.zeros(68, 2)
    one[:] = torch.tensor([3.0, 2.0])
    x, y = mirror_landmarks(one, 10)[0].long().tolist()
    assert hflip(img)[0, y, x] == 1


def test_items_are_deterministic_and_vary_per_epoch(prepared_root):
    ds = PreparedFaces(prepared_root, mask=IrregularMask(), mirror=True, seed=5)
    again = PreparedFaces(prepared_root, mask=IrregularMask(), mirror=True, seed=5)
    other = PreparedFaces(prepared_root, mask=IrregularMask(), mirror=True, seed=6)
    assert torch.equal(ds[4]["mask"], again[4]["mask"])
    assert torch.equal(ds[4]["mask"], ds[(0, 4)]["mask"])  # the default epoch is 0
    assert not torch.equal(ds[4]["mask"], other[4]["mask"])
    assert not torch.equal(ds[(0, 4)]["mask"], ds[(1, 4)]["mask"])
    ds.set_epoch(1)
    assert torch.equal(ds[4]["mask"], again[(1, 4)]["mask"])
    assert not torch.equal(ds[4]["mask"], ds[5]["mask"])


def test_epoch_sampler_orders_by_seed_and_epoch():
    s = EpochSampler(10, shuffle=True, seed=1)
    e0 = list(s)
    assert sorted(i for _, i in e0) == list(range(10)) and {e for e, _ in e0} == {0}
    assert e0 == list(EpochSampler(10, shuffle=True, seed=1))
    s.set_epoch(1)
    e1 = list(s)
    assert {e for e, _ in e1} == {1} and [i for _, i in e1] != [i for _, i in e0]
    assert [i for _, i in EpochSampler(4, shuffle=False)] == [0, 1, 2, 3]


def test_split_filters(prepared_root):
    assert len(PreparedFaces(prepared_root, split="test")) == 3
    assert len(PreparedFaces(prepared_root, split=["val", "test"])) == 5
    assert len(PreparedFaces(prepared_root)) == len(FACES)
    assert len(PreparedFaces(prepared_root, ids=["Ann_0000", "Ed_0010"])) == 2
    with pytest.raises(ManifestError, match=r"splits present: \['test', 'train', 'val'\]"):
        PreparedFaces(prepared_root, split="nope")


def test_not_a_prepared_folder(tmp_path):
    with pytest.raises(ManifestError, match=r"facectx\.prepare"):
        PreparedFaces(tmp_path)


def test_a_folder_of_raw_photos_is_prepared_into_a_separate_folder(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    cv2.imwrite(str(photos / "sub" / "a.JPG"), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ManifestError) as e:
        PreparedFaces(photos)
    msg = str(e.value)
    assert f"input={photos} output={photos}_prepared" in msg
    assert f"data.root={photos}_prepared" in msg and f"output={photos}`" not in msg


def test_missing_file_names_the_file_and_prepare(prepared_copy):
    (prepared_copy / "images" / "Bob_0004.png").unlink()
    with pytest.raises(PreparedFileError, match=r"images/Bob_0004\.png.*facectx\.prepare"):
        PreparedFaces(prepared_copy)
    ds = PreparedFaces(prepared_copy, check_files=False)
    i = [r["id"] for r in ds.rows].index("Bob_0004")
    with pytest.raises(FileNotFoundError, match=r"Bob_0004\.png.*facectx\.prepare"):
        ds[i]
    # the stored masks are not needed with a mask callable
    (prepared_copy / "masks" / "Ann_0000.png").unlink()
    assert len(PreparedFaces(prepared_copy, split="test", mask=IrregularMask())) == 3


def test_wrong_image_size_is_a_clear_error(prepared_copy):
    small = np.zeros((SIZE // 2, SIZE // 2, 3), np.uint8)
    cv2.imwrite(str(prepared_copy / "images" / "Cy_0006.png"), small)
    ds = PreparedFaces(prepared_copy)
    i = [r["id"] for r in ds.rows].index("Cy_0006")
    with pytest.raises(
        ManifestError, match=rf"Cy_0006\.png is 32x32 but the prepared frame is {SIZE}x{SIZE}"
    ):
        ds[i]
    meta = json.loads((prepared_copy / "meta.json").read_text())
    meta["frame"]["size"] = 128
    (prepared_copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ManifestError, match=r"meta\.json"):
        PreparedFaces(prepared_copy)


def test_from_uint8_range():
    t = from_uint8(np.array([[[0, 255, 128]]], np.uint8))
    assert t.shape == (3, 1, 1) and t[0].item() == -1 and t[1].item() == 1
