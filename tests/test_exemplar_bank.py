"""The packed exemplar bank: deterministic bytes, an exact round trip (pictures within JPEG
error), the same exemplar choices as the prepared folder it was packed from, clear errors for
files that are not a bank. Banks are packed from the embedded sample without identity features
(the identity network is slow on one thread)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facectx.assets import sample_root
from facectx.data.datasets import PreparedFaces
from facectx.inference.exemplar import pack_bank, select_rows
from facectx.pretrained.exemplar_bank import BankError, load_bank, resolve_bank
from facectx.zoo.exemplar import (
    DEFAULT_WEIGHTS,
    FIT_DEFAULTS,
    SECTORS,
    TERMS,
    model_settings,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NO_ID = {"shape": 1.0, "colour": 1.0, "hull": 1.0, "coverage": 1.0}


def _pack(output: Path, root: Path | None = None, **options):
    options = {"feature": None, "weights": NO_ID, "progress": False, **options}
    return pack_bank(root or sample_root(), output, **options)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    return _pack(tmp_path_factory.mktemp("bank") / "bank.pt")


@pytest.fixture(scope="module")
def faces():
    return PreparedFaces(sample_root(), split="train")


@pytest.fixture(scope="module")
def batch(faces):
    from torch.utils.data import DataLoader

    b = next(iter(DataLoader(faces, batch_size=8, shuffle=False)))
    b["person_name"] = [faces.rows[int(i)]["person"] for i in b["index"]]
    return b


def test_packing_twice_gives_the_same_bytes(packed, tmp_path):
    again = _pack(tmp_path / "again.pt")
    assert again.sha256 == packed.sha256 and again.bytes == packed.bytes
    assert again.path.read_bytes() == packed.path.read_bytes()
    assert packed.faces == 203 and packed.path.stat().st_size == packed.bytes


def test_load_round_trips_the_faces(packed, faces):
    bank = load_bank(packed.path)
    n = len(faces)
    assert len(bank) == n and bank.size == 128
    assert bank.bank.ids == [r["id"] for r in faces.rows]
    assert bank.bank.persons == [r["person"] for r in faces.rows]
    assert bank.frame == {"size": 128, "eye_distance": 0.27, "eye_y": 0.43}
    meta = bank.meta
    assert meta["kind"] == "exemplar_bank" and meta["faces"] == n and meta["feature"] is None
    assert meta["jpeg"]["quality"] == 85 and meta["weights"] == NO_ID
    assert meta["fit"] == FIT_DEFAULTS and meta["hull"] == "landmarks"
    rows = [0, 5, 77, n - 1]
    items = [faces[j] for j in rows]
    assert torch.equal(bank.landmarks(rows), torch.stack([it["landmarks"] for it in items]))
    assert torch.equal(bank.valids(rows), torch.stack([it["valid"] for it in items]))
    assert torch.equal(bank.hulls(rows), torch.stack([it["mask"] for it in items]))
    err = (bank.images(rows) - torch.stack([it["image"] for it in items])).abs() * 127.5
    assert err.mean() < 3 and err.flatten(1).quantile(0.99, dim=1).max() < 30
    ex = bank.exemplars(torch.tensor(rows))
    assert ex["image"].shape == (4, 3, 128, 128) and ex["hull"].shape == (4, 1, 128, 128)


def test_the_bank_and_the_folder_choose_the_same_exemplars(packed, batch):
    from facectx.evaluation.exemplar import Exemplar

    cpu = torch.device("cpu")
    for top in (1, 10):
        folder = Exemplar(weights=NO_ID, top=top, seed=3)
        folder.setup(128, cpu)
        filed = Exemplar(weights=NO_ID, top=top, seed=3, bank=str(packed.path))
        filed.setup(128, cpu)
        assert torch.equal(folder.candidates(batch, 4), filed.candidates(batch, 4))
    a, b = folder.predict(batch), filed.predict(batch)
    assert a.notes == b.notes
    face = filed.model.kept(batch["masked"], batch["mask"]).expand_as(a.images) > 0.5
    assert torch.equal(b.images[face], batch["masked"][face])  # face pixels untouched
    diff = (a.images - b.images).abs() * 127.5  # only the pictures' JPEG error differs
    assert diff.mean() < 3
    assert "packed bank" in filed.describe()


def test_one_per_person_keeps_the_first_face_of_each_and_max_faces_cuts(tmp_path):
    rows = [
        {"id": "b_2", "person": "b"},
        {"id": "a_1", "person": "a"},
        {"id": "b_1", "person": "b"},
        {"id": "x", "person": ""},
        {"id": "y", "person": ""},
    ]
    assert [r["id"] for r in select_rows(rows, one_per_person=True)] == ["a_1", "b_1", "x", "y"]
    assert [r["id"] for r in select_rows(rows, max_faces=2)] == ["b_2", "a_1"]
    small = _pack(tmp_path / "small.pt", one_per_person=True, max_faces=50)
    bank = load_bank(small.path)
    assert len(bank) == small.faces == 50
    persons = [p for p in bank.bank.persons if p]
    assert len(persons) == len(set(persons))
    assert bank.meta["one_per_person"] is True and bank.meta["max_faces"] == 50


def test_hulls_that_are_not_the_landmarks_hull_are_stored(tmp_path):
    from PIL import Image

    src = sample_root()
    with (src / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    root = tmp_path / "prepared"
    folders = {"images": "image", "masks": "mask", "valid": "valid", "landmarks": "landmarks"}
    for folder, column in folders.items():
        (root / folder).mkdir(parents=True)
        for r in rows:
            shutil.copy(src / r[column], root / folder)
    shutil.copy(src / "meta.json", root)
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    box = np.zeros((128, 128), np.uint8)
    box[30:100, 35:95] = 255  # a hull that no landmarks draw
    Image.fromarray(box).save(root / rows[1]["mask"])
    bank = load_bank(_pack(tmp_path / "b.pt", root=root).path)
    assert bank.meta["hull"] == "stored"
    assert torch.equal(bank.hulls([1])[0, 0], torch.from_numpy(box > 0).float())


def test_files_that_are_not_a_bank_are_named(packed, tmp_path):
    cases = {
        "missing.pt": None,
        "text.pt": b"not a torch file",
        "truncated.pt": packed.path.read_bytes()[: packed.bytes // 2],
    }
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(BankError, match=name):
            load_bank(tmp_path / name)
    torch.save({"facectx": {"kind": "cascade"}, "state_dict": {}}, tmp_path / "gen.pt")
    with pytest.raises(BankError, match=r"gen\.pt is not a facectx exemplar bank"):
        load_bank(tmp_path / "gen.pt")
    record = torch.load(packed.path, weights_only=True)
    record["landmarks"] = record["landmarks"][:10]
    torch.save(record, tmp_path / "cut.pt")
    with pytest.raises(BankError, match=r"cut\.pt is a corrupt exemplar bank: landmarks"):
        load_bank(tmp_path / "cut.pt")
    with pytest.raises(BankError, match="not an exemplar model"):
        resolve_bank("pretrained:lfw-128")
    assert resolve_bank(str(packed.path)) == packed.path


def test_bad_pack_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"weights\.identity=0"):
        pack_bank(sample_root(), tmp_path / "x.pt", feature=None, progress=False)
    with pytest.raises(ValueError, match="fit settings"):
        _pack(tmp_path / "x.pt", fit={"blur": 1.0})
    assert not (tmp_path / "x.pt").exists()


def test_model_settings_fill_the_defaults_and_refuse_unknown_keys():
    weights, fit = model_settings({"shape": 2}, {"seam_band": 0, "align": 1})
    assert weights == {"shape": 2.0} and isinstance(weights["shape"], float)
    assert fit == {**FIT_DEFAULTS, "seam_band": 0.0, "align": True}
    assert model_settings(None, None) == (DEFAULT_WEIGHTS, FIT_DEFAULTS)
    assert set(DEFAULT_WEIGHTS) == set(TERMS)
    with pytest.raises(ValueError, match="hair"):
        model_settings({"hair": 1.0}, None)


def test_the_bank_command_prints_what_it_wrote(tmp_path, monkeypatch, capfd):
    import sys

    from facectx import bank
    from facectx.pretrained.registry import sha256sum

    out = tmp_path / "cli.pt"
    args = [f"train_root={sample_root()}", f"output={out}", "max_faces=20", "feature=null"]
    args += ["weights.identity=0", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"]
    monkeypatch.setattr(sys, "argv", ["facectx-bank", *args])
    bank.main()
    text = capfd.readouterr().out
    assert f"exemplar bank -> {out}: " in text and " MB, 20 faces, sha256 " in text
    assert sha256sum(out) in text and len(load_bank(out)) == 20

    monkeypatch.setattr(sys, "argv", ["facectx-bank", f"train_root={tmp_path / 'none'}", *args[1:]])
    with pytest.raises(SystemExit) as info:
        bank.main()
    errors = [line for line in capfd.readouterr().out.splitlines() if "[ERROR]" in line]
    assert info.value.code == 2 and len(errors) == 1 and str(tmp_path / "none") in errors[0]


@pytest.mark.slow  # ~8 s: the identity network embeds the 203 faces twice
def test_a_bank_with_identity_features_chooses_as_the_folder(tmp_path, batch):
    from facectx.evaluation.exemplar import Exemplar

    packed = pack_bank(sample_root(), tmp_path / "id.pt", progress=False)  # the defaults
    bank = load_bank(packed.path)
    assert bank.meta["feature"] == "dlib-resnet" and bank.bank.identity.shape == (203, 128)
    folder, filed = Exemplar(), Exemplar(bank=str(packed.path))
    folder.setup(128, torch.device("cpu"))
    filed.setup(128, torch.device("cpu"))
    assert torch.equal(folder.candidates(batch, 5), filed.candidates(batch, 5))


def test_the_seam_rings_are_stored_and_an_older_file_without_them_gets_them_on_load(
    packed, batch, tmp_path
):
    """The packed rings are the folder's; a file written before the seam term (no ``ring``)
    computes them from its pictures, close to the stored ones (JPEG error only), and the
    seam term then chooses as the folder does."""
    from facectx.evaluation.exemplar import Exemplar

    record = torch.load(packed.path, weights_only=False)
    assert record["ring"].shape == (203, SECTORS, 3)
    folder = Exemplar(weights={**NO_ID, "seam": 2.0})
    folder.setup(128, torch.device("cpu"))
    assert torch.allclose(folder.bank.ring, record["ring"], equal_nan=True)
    del record["ring"]
    old = tmp_path / "old.pt"
    torch.save(record, old)
    rings = load_bank(old).bank.ring
    both = torch.isfinite(rings) & torch.isfinite(record_rings := load_bank(packed.path).bank.ring)
    assert (rings[both] - record_rings[both]).abs().mean() < 1.0  # Lab units
    filed = Exemplar(weights={**NO_ID, "seam": 2.0}, bank=str(packed.path))
    filed.setup(128, torch.device("cpu"))
    assert torch.equal(folder.candidates(batch, 4), filed.candidates(batch, 4))


def test_a_rebuild_compares_part_by_part(packed, tmp_path):
    """compare_banks: byte-identical; float descriptors off in their last bits (another CPU's
    kernels) still the same bank; anything beyond the tolerance, or an exact part, is not."""
    from facectx.pretrained.exemplar_bank import FLOAT_TOLERANCE, compare_banks

    assert compare_banks(packed.path, packed.path).identical
    record = torch.load(packed.path, map_location="cpu", weights_only=True)

    def variant(name, change):
        rec = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in record.items()}
        change(rec)
        torch.save(rec, tmp_path / name)
        return compare_banks(tmp_path / name, packed.path)

    last_bits = variant("bits.pt", lambda r: r["colour_mean"].add_(1e-5))
    assert not last_bits.identical and last_bits.same and not last_bits.mismatched
    assert 0 < last_bits.float_diff["colour_mean"] < 2e-5  # float32 steps at Lab magnitudes
    assert "within tolerance" in last_bits.describe()
    far = variant("far.pt", lambda r: r["colour_std"].add_(10 * FLOAT_TOLERANCE["colour_std"]))
    assert not far.same and "beyond tolerance" in far.describe()
    moved = variant("moved.pt", lambda r: r["landmarks"].add_(1e-5))
    assert not moved.same and moved.mismatched == ("landmarks",)
    renamed = variant("ids.pt", lambda r: r.update(ids=[*r["ids"][:-1], "someone_else"]))
    assert renamed.mismatched == ("ids",) and "differs in ids" in renamed.describe()


def test_the_bank_command_compares_with_a_reference(tmp_path, monkeypatch, capfd):
    import sys

    from facectx import bank

    base = [f"train_root={sample_root()}", "max_faces=12", "feature=null"]
    base += ["weights.identity=0", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"]
    first = tmp_path / "first.pt"
    monkeypatch.setattr(sys, "argv", ["facectx-bank", f"output={first}", *base])
    bank.main()
    monkeypatch.setattr(
        sys, "argv", ["facectx-bank", f"output={tmp_path / 'again.pt'}", f"compare={first}", *base]
    )
    bank.main()
    assert f"compared with {first}: byte-identical" in capfd.readouterr().out
    # another set of faces is not the same bank: the command fails and says why
    other = [f"output={tmp_path / 'other.pt'}", f"compare={first}", "max_faces=10", *base[:1]]
    monkeypatch.setattr(sys, "argv", ["facectx-bank", *other, *base[2:]])
    with pytest.raises(SystemExit) as info:
        bank.main()
    out = capfd.readouterr().out
    assert info.value.code == 2 and "is not the bank" in out and "differs in" in out


# ---------------------------------------------------------------- the context harmoniser


def _harmoniser_checkpoint(path: Path, seed: int = 0, iteration: int = 5):
    """A training checkpoint of a small harmoniser with random, non-zero weights (as
    ``python -m facectx.train experiment=lfw_harmoniser`` writes), and the network."""
    from facectx.checkpoint import CheckpointMeta
    from facectx.zoo.harmoniser import ContextHarmoniser

    net = ContextHarmoniser(width=0.25)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    meta = CheckpointMeta("harmoniser", {"width": 0.25, "scale": 2}, iteration=iteration)
    state = {f"generator.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "facectx": meta.to_dict()}, path)
    return net.eval()


@pytest.fixture(scope="module")
def with_harmoniser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("harm")
    net = _harmoniser_checkpoint(folder / "last.ckpt")
    summary = _pack(folder / "bank.pt", max_faces=12, harmoniser=folder / "last.ckpt")
    return summary, net


def test_a_bank_carries_its_harmoniser(with_harmoniser, tmp_path):
    summary, net = with_harmoniser
    loaded = load_bank(summary.path)
    assert loaded.meta["format"] == 2
    assert loaded.meta["harmoniser"] == {"width": 0.25, "scale": 2, "iteration": 5}
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    kept = torch.zeros(2, 1, 64, 64)
    kept[..., 16:48, 16:48] = 1
    valid = torch.ones_like(kept)
    with torch.no_grad():
        assert torch.equal(loaded.harmoniser(x, kept, valid), net(x, kept, valid))
    # same checkpoint, same bytes; a bank without one is format 1 and has none
    again = _pack(tmp_path / "again.pt", max_faces=12, harmoniser=summary.path.parent / "last.ckpt")
    assert again.sha256 == summary.sha256
    plain = load_bank(_pack(tmp_path / "plain.pt", max_faces=12).path)
    assert plain.harmoniser is None and plain.meta["format"] == 1


def test_harmoniser_weights_are_compared_exactly(with_harmoniser, tmp_path):
    from facectx.pretrained.exemplar_bank import compare_banks

    summary, _ = with_harmoniser
    _harmoniser_checkpoint(tmp_path / "other.ckpt", seed=1)
    other = _pack(tmp_path / "other.pt", max_faces=12, harmoniser=tmp_path / "other.ckpt")
    result = compare_banks(other.path, summary.path)
    assert not result.same and result.mismatched == ("harmoniser",)


def test_a_bank_whose_harmoniser_does_not_fit_is_named(with_harmoniser, tmp_path):
    summary, _ = with_harmoniser
    record = torch.load(summary.path, weights_only=True)
    dropped = {k: v for k, v in record.items() if k != "harmoniser"}
    torch.save(dropped, tmp_path / "dropped.pt")
    with pytest.raises(BankError, match=r"dropped\.pt is a corrupt exemplar bank: no harmoniser"):
        load_bank(tmp_path / "dropped.pt")
    record["facectx"]["harmoniser"]["width"] = 0.5
    torch.save(record, tmp_path / "wider.pt")
    with pytest.raises(BankError, match=r"wider\.pt: its context harmoniser does not load"):
        load_bank(tmp_path / "wider.pt")


def test_packing_refuses_a_checkpoint_that_is_not_a_harmoniser_before_packing(tmp_path):
    from facectx.checkpoint import CheckpointError

    torch.save({"facectx": {"kind": "cascade", "generator": {}}, "state_dict": {}}, tmp_path / "g")
    with pytest.raises(CheckpointError, match="not a facectx harmoniser checkpoint"):
        _pack(tmp_path / "bank.pt", harmoniser=tmp_path / "g")
    assert not (tmp_path / "bank.pt").exists()


def test_the_evaluation_method_uses_the_banks_harmoniser_unless_told_not_to(with_harmoniser):
    from facectx.evaluation.exemplar import Exemplar

    summary, _ = with_harmoniser
    on = Exemplar(weights=NO_ID, bank=str(summary.path))
    off = Exemplar(weights=NO_ID, bank=str(summary.path), harmoniser=False)
    for method in (on, off):
        method.setup(128, torch.device("cpu"))
    assert on.model.harmoniser is not None and off.model.harmoniser is None
    assert "context harmoniser" in on.describe() and "harmoniser" not in off.describe()
