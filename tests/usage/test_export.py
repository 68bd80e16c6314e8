"""Export of the inference generator: parity with eager PyTorch on real faces."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from facectx.inference.export import AntialiasedDownsample, export_model

from .conftest import needs_sample


@pytest.mark.parametrize("size", [64, 32, 16, 8])
def test_conv_downsample_equals_antialiased_interpolate(size):
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(size)) * 2 - 1
    ref = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    assert (AntialiasedDownsample(3, 128, size)(x) - ref).abs().max() < 1e-6


@needs_sample
def test_torchscript_export_matches_eager_and_runs_with_torch_only(tmp_path, tiny_ckpt):
    out = tmp_path / "gen.pt"
    report = export_model(str(tiny_ckpt), "torchscript", str(out), check_faces=8)
    assert report.max_abs_diff <= 1e-4 and report.faces_checked == 10
    meta = json.loads((tmp_path / "gen.pt.json").read_text())
    assert meta["size"] == 128 and "masked" in meta["inputs"]

    from facectx.inference import Hallucinator
    from facectx.inference.export import sample_faces

    masked, mask = sample_faces(3)
    torch.save({"masked": masked, "mask": mask}, tmp_path / "faces.pt")
    ref = Hallucinator.from_checkpoint(tiny_ckpt)(masked, mask)
    code = (
        "import sys, warnings, torch\n"
        "warnings.simplefilter('ignore')\n"
        f"m = torch.jit.load({str(out)!r})\n"
        f"d = torch.load({str(tmp_path / 'faces.pt')!r})\n"
        "with torch.inference_mode():\n"
        "    y = m(d['masked'], d['mask'])\n"
        f"torch.save(y, {str(tmp_path / 'y.pt')!r})\n"
        "assert not [k for k in sys.modules if k.startswith(('facectx', 'pytorch_lightning'))]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    y = torch.load(tmp_path / "y.pt")
    assert y.shape == (3, 3, 128, 128)  # another batch size than the traced one
    assert (y - ref).abs().max() <= 1e-4
    keep = mask.expand_as(masked) > 0.5
    assert torch.equal(y[keep], masked[keep])  # face pixels exact


@needs_sample
def test_onnx_export_matches_eager(tmp_path, tiny_ckpt):
    pytest.importorskip("onnx", reason="format=onnx needs `pip install onnx onnxruntime`")
    pytest.importorskip("onnxruntime", reason="format=onnx needs `pip install onnx onnxruntime`")
    out = tmp_path / "gen.onnx"
    report = export_model(str(tiny_ckpt), "onnx", str(out), check_faces=8)
    assert report.max_abs_diff <= 1e-4 and report.opset == 17

    from facectx.inference.export import load_exported, sample_faces

    masked, mask = sample_faces(5)
    y = load_exported(out)(masked, mask)
    assert y.shape == (5, 3, 128, 128)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export_model("x.ckpt", "tflite", str(tmp_path / "x"))
