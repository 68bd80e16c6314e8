"""The web demo with the exemplar model: K portraits per face, saved and zipped, and no
pasted-back photo; the page offers the samples control only for a model that gives several, and
the pasted-back view only for a model that pastes back."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from facectx.demo import MAX_SAMPLES, AppError, Demo


@pytest.fixture(scope="module")
def exemplar_demo(tmp_path_factory):
    from facectx.assets import sample_root
    from facectx.inference.exemplar import ExemplarHallucinator, pack_bank

    root = tmp_path_factory.mktemp("app-exemplar")
    weights = {"shape": 1.0, "colour": 1.0, "hull": 1.0, "coverage": 1.0}
    bank = pack_bank(sample_root(), root / "bank.pt", feature=None, weights=weights, progress=False)
    d = Demo(ExemplarHallucinator.from_file(bank.path), work_dir=root / "results")
    yield d
    d.close()


@pytest.mark.slow  # ~7 s: the face preparer's models load, two photos hallucinated
def test_k_portraits_per_face_and_no_pasted_back_view(exemplar_demo, wild_photos):
    """Several portraits per face; no pasted-back photo, since the exemplar's context is a whole
    other head (the photo's own hair beyond the frame would double it), and the status says so."""
    from facectx.demo import NO_PASTE

    one = exemplar_demo.hallucinate(wild_photos / "img12.jpg")
    result = exemplar_demo.hallucinate(wild_photos / "img12.jpg", samples=3)
    face = result.faces[0]
    assert len(face.candidates) == 3 and one.faces[0].candidates == []
    assert np.array_equal(face.portrait, face.candidates[0])
    assert np.array_equal(face.portrait, one.faces[0].portrait)  # sample 0 = the best
    keep = face.keep > 0
    for c in face.candidates:
        assert c.shape == (128, 128, 3) and np.array_equal(c[keep], face.aligned[keep])
    assert not np.array_equal(face.candidates[1], face.candidates[2])
    assert result.pasted is None and one.pasted is None
    status = exemplar_demo.status(result)
    assert "3 portraits per face." in status and status.endswith(NO_PASTE)
    assert "pasted back" not in status
    saved = exemplar_demo.save_hallucinated(result)
    names = {f"face1_sample{j}" for j in range(3)}
    assert names <= set(saved.images) and "pasted" not in saved.images
    with zipfile.ZipFile(saved.zip) as z:
        assert {f"{n}.png" for n in names} <= set(z.namelist())
        assert "pasted.png" not in z.namelist()


def test_samples_beyond_what_the_model_gives_are_a_sentence(exemplar_demo, demo, wild_photos):
    photo = wild_photos / "img12.jpg"
    with pytest.raises(AppError, match="1 to 1 portraits"):
        demo.hallucinate(photo, samples=2)  # the cascade
    with pytest.raises(AppError, match=f"1 to {MAX_SAMPLES} portraits"):
        exemplar_demo.hallucinate(photo, samples=MAX_SAMPLES + 1)


@pytest.mark.slow  # ~6 s: imports gradio and builds the page twice
def test_the_page_offers_samples_only_for_a_model_that_gives_several(exemplar_demo, demo):
    from facectx.app_ui import build

    def props(d):
        page = build(d)
        by_id = {c["props"].get("elem_id"): c["props"] for c in page.config["components"]}
        return by_id["samples"], by_id["pasted"]

    (offered, no_paste), (hidden, paste) = props(exemplar_demo), props(demo)
    assert offered["visible"] is True and offered["maximum"] == MAX_SAMPLES
    assert offered["value"] == 1 and hidden["visible"] is False
    assert no_paste["visible"] is False and paste["visible"] is True


def test_only_the_cascade_pastes_back():
    from facectx.inference import Hallucinator
    from facectx.inference.exemplar import ExemplarHallucinator

    assert Hallucinator.pastes_back is True and ExemplarHallucinator.pastes_back is False
