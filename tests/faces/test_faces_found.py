"""Faces the detector does not find are not invisible: a photo's result says how many faces were
found and, when the detector may have missed some (a group photo, a low-confidence detection, a
face near the smallest size, faces below min_face), how to look harder. prepare and hallucinate
report faces per photo in their summary, with that hint in one line; a clear single face gives
none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facectx.faces.io import read_image
from facectx.faces.pipeline import FacePreparer
from facectx.geometry.frame import CanonicalFrame

GROUP, SINGLE = "selfie-many-people.jpg", "img12.jpg"


@pytest.fixture(scope="module")
def preparer() -> FacePreparer:
    return FacePreparer(CanonicalFrame(128), faces="all")


def _like(prep: FacePreparer, **kw) -> FacePreparer:
    return FacePreparer(prep.frame, detector=prep.detector, landmarker=prep.landmarker, **kw)


def test_a_group_photo_may_hide_faces_and_says_how_to_look_harder(preparer, wild_photos):
    result = preparer.run(read_image(wild_photos / GROUP))
    assert len(result.faces) == len(result.detections) == 4
    assert result.missed  # a reason in words
    assert "upsample=2" in result.retry and "detector=mtcnn" in result.retry
    assert not any(r.startswith("min_face") for r in result.retry)  # none was too small


def test_a_single_clear_face_gives_no_hint(preparer, wild_photos):
    result = preparer.run(read_image(wild_photos / SINGLE))
    assert len(result.faces) == len(result.detections) == 1
    assert result.missed == "" and result.retry == ()


def test_a_barely_found_face_that_fills_the_photo_gives_no_hint(preparer, lfw_dir):
    # LFW crops are tight (the face box is a quarter of the frame): a low HOG score there says
    # nothing about other faces, and flagging it would name one LFW photo in seven.
    result = preparer.run(read_image(lfw_dir / "images" / "Al_Sharpton_0001.jpg"))
    assert len(result.faces) == 1
    assert result.detections[0].score < preparer.detector.weak_score
    assert result.missed == "" and result.retry == ()


def test_faces_below_min_face_are_counted_and_named(preparer, wild_photos):
    image = read_image(wild_photos / GROUP)
    some = _like(preparer, faces="all", min_face=45).run(image)
    assert 0 < len(some.faces) < len(some.detections) == 4
    assert "min_face" in some.missed and "min_face=22.5" in some.retry
    none = _like(preparer, faces="all", min_face=500).run(image)
    assert none.reason == "too_small" and len(none.detections) == 4
    assert "min_face=250" in none.retry


def test_largest_keeps_the_other_detections(preparer, wild_photos):
    result = _like(preparer, faces="largest").run(read_image(wild_photos / GROUP))
    assert len(result.faces) == 1 and result.dropped == 3 and len(result.detections) == 4
    assert result.detections[0].box == result.faces[0].box


@pytest.fixture()
def photos(wild_photos, tmp_path) -> Path:
    """A folder with the group selfie and a single clear face (copies, in tmp)."""
    root = tmp_path / "photos"
    root.mkdir()
    for name in (GROUP, SINGLE):
        shutil.copy(wild_photos / name, root / name)
    return root


def _only(photos: Path, name: str) -> Path:
    for p in photos.iterdir():
        if p.name != name:
            p.unlink()
    return photos


def test_prepare_summary_reports_faces_per_photo_and_the_hint(photos, tmp_path, capsys):
    from facectx.faces.pipeline import PreparerSpec
    from facectx.preparation import prepare_folder
    from facectx.prepare import print_summary

    out = tmp_path / "prepared"
    summary = prepare_folder(photos, out, spec=PreparerSpec(faces="all"), workers=1, progress=False)
    assert summary.faces_found.per_photo == {1: 1, 4: 1}
    assert list(summary.faces_found.missed) == [GROUP]
    print_summary(summary, out)
    text = " ".join(capsys.readouterr().out.split())
    assert "faces found per photo: 1 in 1 photo, 4 in 1 photo" in text
    assert f"may have missed faces in 1 photo ({GROUP}" in text
    assert "upsample=2" in text and "detector=mtcnn" in text and "new output folder" in text


def test_prepare_summary_of_a_clear_face_has_no_hint(photos, tmp_path, capsys):
    from facectx.preparation import prepare_folder
    from facectx.prepare import print_summary

    out = tmp_path / "prepared"
    summary = prepare_folder(_only(photos, SINGLE), out, workers=1, progress=False)
    print_summary(summary, out)
    text = " ".join(capsys.readouterr().out.split())
    assert "faces found per photo: 1 in 1 photo" in text
    assert "missed" not in text and "upsample" not in text


def test_hallucinate_summary_reports_faces_per_photo_and_the_hint(photos, tmp_path, capsys):
    from facectx.hallucinate import print_summary
    from facectx.inference import Hallucinator
    from facectx.inference.portraits import hallucinate_photos

    model = Hallucinator.from_pretrained("lfw-128")
    out = tmp_path / "out"
    summary = hallucinate_photos(None, str(photos), str(out), model=model, progress=False)
    assert summary.portraits == 5
    assert summary.faces_found.per_photo == {1: 1, 4: 1}
    print_summary(summary, out)
    text = " ".join(capsys.readouterr().err.split())
    assert "faces found per photo: 1 in 1 photo, 4 in 1 photo" in text
    assert f"may have missed faces in 1 photo ({GROUP}" in text
    assert "upsample=2" in text and "detector=mtcnn" in text

    single = tmp_path / "single"
    summary = hallucinate_photos(
        None, str(_only(photos, SINGLE)), str(single), model=model, progress=False
    )
    print_summary(summary, single)
    text = " ".join(capsys.readouterr().err.split())
    assert "faces found per photo: 1 in 1 photo" in text and "upsample" not in text
