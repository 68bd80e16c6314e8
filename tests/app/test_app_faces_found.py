"""The Hallucinate tab's status line says how many faces were found and, when the detector may
have missed some, how to look harder with what the page and the app's options offer."""

from __future__ import annotations


def test_a_group_photo_says_faces_may_be_missed_and_what_to_try(demo, wild_photos):
    result = demo.hallucinate(wild_photos / "selfie-many-people.jpg")
    text = demo.status(result)
    assert text.startswith("4 faces found, largest first.")
    assert "may have missed" in text
    assert "mtcnn" in text and "upsample=2" in text
    assert text.count("\n") == 0 and len(text) < 400  # a line, not per-face spam


def test_a_clear_single_face_gives_no_hint(demo, wild_photos):
    text = demo.status(demo.hallucinate(wild_photos / "img12.jpg"))
    assert text.startswith("1 face found.")
    assert "missed" not in text and "upsample" not in text


def test_largest_says_how_many_more_were_found(demo, wild_photos):
    text = demo.status(demo.hallucinate(wild_photos / "couple.jpg", faces="largest"))
    assert text.startswith("2 faces found; the largest shown (faces=largest).")
