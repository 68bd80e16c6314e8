"""Person labels of prepared faces: different people get different labels when the file names
carry no person's name (Caltech's image_0001.jpg), LFW's Name_NNNN keeps its name, folders name
their person when the photos are spread over several of them."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from facectx._conf import ConfigError
from facectx.faces.naming import (
    PERSON_RULES,
    folders_name_persons,
    looks_like_name,
    person_from_stem,
    person_label,
)


@pytest.mark.parametrize(
    ("stem", "person"),
    [
        ("Aaron_Peirsol_0001", "Aaron_Peirsol"),
        ("AJ_Lamas_0001", "AJ_Lamas"),
        ("Madonna_0003", "Madonna"),
        ("Inam-ul-Haq_0001", "Inam-ul-Haq"),
        ("John_Paul_II_0010", "John_Paul_II"),
        ("image_0001", ""),  # Caltech faces
        ("IMG_2041", ""),  # cameras
        ("DSC_0042", ""),
        ("Photo_0001", ""),
        ("img1", ""),
        ("Aaron_Peirsol", ""),  # no number: not the pattern
    ],
)
def test_a_name_comes_from_the_stem_only_when_it_looks_like_a_name(stem, person):
    assert person_from_stem(stem) == person


def test_caltech_style_files_are_different_people_and_lfw_style_files_one():
    a, b = person_label("image_0001.jpg"), person_label("image_0002.jpg")
    assert a and b and a != b
    assert person_label("Aaron_Peirsol_0001.jpg") == person_label("Aaron_Peirsol_0003.jpg")
    assert person_label("Aaron_Peirsol_0001.jpg") == "Aaron_Peirsol"


def test_folders_name_their_person_when_the_photos_lie_in_several():
    sources = ["alice/image_0001.jpg", "alice/image_0002.jpg", "bob/image_0001.jpg"]
    assert folders_name_persons(sources)
    labels = [person_label(s, folders=True) for s in sources]
    assert labels == ["alice", "alice", "bob"]
    # a name in the file name still wins
    assert person_label("bob/Aaron_Peirsol_0001.jpg", folders=True) == "Aaron_Peirsol"
    # one folder holding the whole input is a wrapper, not a person
    wrapped = ["caltech/image_0001.jpg", "caltech/image_0002.jpg"]
    assert not folders_name_persons(wrapped)
    assert person_label(wrapped[0], folders=False) != person_label(wrapped[1], folders=False)


def test_explicit_rules():
    assert set(PERSON_RULES) == {"auto", "name", "folder", "file"}
    # name: everything before the final _digits, name-like or not (the user said so)
    assert person_label("s01_0003.jpg", "name") == "s01"
    assert person_label("img1.jpg", "name") == "img1"  # no number: the file is its own person
    assert person_label("alice/x.jpg", "folder") == "alice"
    assert person_label("top.jpg", "folder") == "top"
    assert person_label("Aaron_Peirsol_0001.jpg", "file") == "Aaron_Peirsol_0001"
    # file labels are the faces' id stems: two photos never share one
    assert person_label("a/b.jpg", "file") != person_label("a__b.jpg", "file", stem="a__b.jpg")
    with pytest.raises(ValueError, match="auto"):
        person_label("x.jpg", "nope")


def test_the_embedded_sample_keeps_its_labels():
    from facectx.assets import sample_root

    with (sample_root() / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["face_index"] == "0"]
    assert rows
    sources = [r["source"] for r in rows]
    folders = folders_name_persons(sources)
    assert [person_label(s, folders=folders) for s in sources] == [r["person"] for r in rows]


def test_every_lfw_file_gets_its_splits_csv_person(lfw_dir):
    with (lfw_dir / "splits.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 7000
    wrong = [r["image"] for r in rows if person_label(r["image"]) != r["person"]]
    assert not wrong, wrong[:5]
    assert all(looks_like_name(r["person"]) for r in rows)


@pytest.fixture(scope="module")
def caltech(shared_data) -> Path:
    root = shared_data / "wild" / "caltech_faces"
    if not (root / "image_0001.jpg").is_file():
        pytest.skip(f"Caltech faces not found at {root}")
    return root


def _persons(folder: Path) -> dict[str, str]:
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as f:
        return {r["source"]: r["person"] for r in csv.DictReader(f)}


def test_prepare_gives_caltech_photos_one_person_each(caltech, tmp_path):
    from facectx.preparation import prepare_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("image_0001.jpg", "image_0002.jpg"):
        shutil.copy(caltech / name, photos / name)
    out = prepare_folder(photos, tmp_path / "auto", workers=0, progress=False)
    assert out.faces == 2
    assert _persons(tmp_path / "auto") == {
        "image_0001.jpg": "image_0001",
        "image_0002.jpg": "image_0002",
    }


def test_prepare_person_folder_rule_is_recorded_and_a_rerun_with_another_is_refused(
    caltech, tmp_path
):
    from facectx._jobrecord import OutputFolderError
    from facectx.preparation import prepare_folder

    photos = tmp_path / "photos"
    for who, name in (("alice", "image_0001.jpg"), ("bob", "image_0002.jpg")):
        (photos / who).mkdir(parents=True)
        shutil.copy(caltech / name, photos / who / name)
    out = tmp_path / "prepared"
    prepare_folder(photos, out, workers=0, progress=False, person="folder")
    assert _persons(out) == {"alice/image_0001.jpg": "alice", "bob/image_0002.jpg": "bob"}
    assert '"person": "folder"' in (out / "meta.json").read_text()
    with pytest.raises(OutputFolderError, match="person"):
        prepare_folder(photos, out, workers=0, progress=False, person="file")
    with pytest.raises(ConfigError, match="person=everyone"):
        prepare_folder(photos, tmp_path / "x", workers=0, progress=False, person="everyone")
