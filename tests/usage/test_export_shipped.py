"""Export of the model that ships (``lfw-128``), in every format, the way docs/using_models.md
writes it: no ``ckpt=``. Its generator has ``ShuffleBlur`` layers, which the quickstart
checkpoints of tests/usage/test_export.py do not."""

from __future__ import annotations

import sys
import time

import pytest
import torch
import torch.nn.functional as F

from facectx.inference.export import DEFAULT_TOLERANCE, load_exported, sample_faces

from .conftest import needs_sample

SUFFIX = {"packed": ".pt", "torchscript": ".pt", "onnx": ".onnx"}


def _reference_blur(x):
    """ShuffleBlur as first written: replicate padding, then a depthwise 3×3 binomial conv."""
    k = torch.tensor([1.0, 2.0, 1.0])
    w = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=x.shape[1])


def test_shuffle_blur_is_unchanged_in_eager_mode_and_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from facectx.zoo.layers import ShuffleBlur

    x = torch.randn(3, 5, 12, 12, generator=torch.Generator().manual_seed(0))
    blur = ShuffleBlur()
    assert torch.equal(blur(x), _reference_blur(x))  # bit for bit: shipped outputs unchanged

    path = tmp_path / "blur.onnx"
    torch.onnx.export(
        blur,
        (x,),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = torch.from_numpy(sess.run(["y"], {"x": x[:2].numpy()})[0])
    assert (y - _reference_blur(x[:2])).abs().max() < 1e-6


@needs_sample
@pytest.mark.parametrize("fmt", ["packed", "torchscript", "onnx"])
def test_the_documented_export_of_the_shipped_model_matches_eager(
    fmt, tmp_path, monkeypatch, capsys
):
    """``python -m facectx.export format=FMT output=...`` (no ckpt=) exits 0 and the file it
    writes, loaded on its own, agrees with the shipped model run eagerly."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    from facectx import export
    from facectx.inference import Hallucinator

    out = tmp_path / f"generator{SUFFIX[fmt]}"
    argv = [f"format={fmt}", f"output={out}", "check_faces=4"]
    monkeypatch.setattr(sys, "argv", ["facectx-export", *argv, f"hydra.run.dir={tmp_path}/run"])
    t0 = time.perf_counter()
    export.main()  # a failure raises (SystemExit 2 for a user error)
    seconds = time.perf_counter() - t0
    printed = capsys.readouterr().out
    assert f"exported {fmt} -> {out}" in printed
    print(f"export format={fmt}: {seconds:.1f} s")  # shown with -s; issue 29 asked for it

    model = Hallucinator.from_pretrained("lfw-128")
    masked, mask = sample_faces(3)  # another batch size than the one traced
    ref = model(masked, mask)
    if fmt == "packed":
        y = Hallucinator.from_checkpoint(out)(masked, mask)
    else:
        y = load_exported(out)(masked, mask)
    assert y.shape == ref.shape == (3, 3, 128, 128)
    assert (y - ref).abs().max() <= DEFAULT_TOLERANCE[fmt]
    keep = mask.expand_as(masked) > 0.5
    assert (y[keep] - masked[keep]).abs().max() <= DEFAULT_TOLERANCE[fmt]  # the face is kept
