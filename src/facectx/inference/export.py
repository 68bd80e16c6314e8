"""Export a hallucination generator to TorchScript, ONNX or a packed facectx file, and check it;
pack a SwapInpaint model (:func:`export_swapinpaint`, ``packed`` only).

The library behind ``python -m facectx.export`` (the command line only composes the config and
calls :func:`export_model`). The exported model is :class:`InferenceModel`: ``(masked (B,3,S,S), mask (B,1,S,S)) -> (B,3,S,S)``,
S = 128 for the paper's model, all float32:

* ``masked``: the aligned face in [-1, 1] (pixel / 127.5 - 1), black (-1) where ``mask`` is 0;
* ``mask``: the keep-mask, 1 = face pixel given to the model, 0 = to hallucinate;
* output: the hallucinated portrait in [-1, 1], equal to ``masked`` where ``mask`` is 1.

B is dynamic (any batch size); S is fixed by the checkpoint. After export the file is loaded
back and compared with the eager generator on real faces (the embedded LFW sample with their
face hulls); the maximum absolute difference is printed, written to ``<output>.json`` with the
input/output conventions, and must be below ``tolerance`` (:data:`DEFAULT_TOLERANCE`) or the
export fails.

* **TorchScript** (``torch.jit.trace``): needs only ``torch`` to run:
  ``m = torch.jit.load("gen.pt"); out = m(masked, mask)``. (Recent torch versions mark
  TorchScript as deprecated in favour of ``torch.export``; loading still works.)
* **ONNX** (opset 17, legacy exporter; needs ``pip install onnx onnxruntime``). ONNX has no
  antialiased resize, so the pyramid's antialiased bilinear downsampling is rebuilt from a
  fixed depthwise convolution (:func:`antialiased_downsample`), equal to PyTorch's to ~1e-7.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx._version import __version__

log = logging.getLogger("facectx.export")

FORMATS = ("torchscript", "onnx", "packed")
#: Largest accepted |packed - eager| per format when ``tolerance`` is not given: float16
#: weights move outputs by ~1e-3 on average, a few 1e-2 at worst.
DEFAULT_TOLERANCE = {"torchscript": 1e-4, "onnx": 1e-4, "packed": 5e-2}
INPUT_NAMES = ("masked", "mask")
OUTPUT_NAME = "output"


# ---------------------------------------------------------------------------- the module


def _triangle(k: int) -> Tensor:
    """The 2k taps of PyTorch's antialiased bilinear filter for an integer downscale by k."""
    t = torch.arange(2 * k, dtype=torch.float64)
    return 1.0 - (t + 0.5 - k).abs() / k


class AntialiasedDownsample(nn.Module):
    """``F.interpolate(x, size, mode="bilinear", antialias=True)`` for an integer factor, as a
    depthwise strided convolution (ONNX-exportable).

    PyTorch's filter for a downscale by k is a triangle of half-width k input pixels centred on
    each output pixel, renormalised where it leaves the image; that is a 2k×2k separable kernel
    with stride k and k/2 zero padding, divided by the same convolution of an all-ones image.

    Args:
        channels: channels of the input.
        in_size: input side S.
        out_size: output side s; S must be a multiple of s and S/s 1 or even.
    """

    def __init__(self, channels: int, in_size: int, out_size: int) -> None:
        super().__init__()
        if in_size % out_size:
            raise ValueError(f"{out_size} does not divide {in_size}")
        k = in_size // out_size
        if k > 1 and k % 2:
            raise ValueError(f"odd downscale factor {k} is not supported")
        self.k, self.channels = k, channels
        if k > 1:
            w1 = _triangle(k)
            w2 = (w1[:, None] * w1[None, :]).float()
            self.register_buffer("kernel", w2.expand(channels, 1, 2 * k, 2 * k).contiguous())
            ones = torch.ones(1, 1, in_size, in_size)
            norm = F.conv2d(ones, w2[None, None], stride=k, padding=k // 2)
            self.register_buffer("norm", norm)

    def forward(self, x: Tensor) -> Tensor:
        if self.k == 1:
            return x
        y = F.conv2d(x, self.kernel, stride=self.k, padding=self.k // 2, groups=self.channels)
        return y / self.norm


def antialiased_downsample(x: Tensor, size: int) -> Tensor:
    """Functional form of :class:`AntialiasedDownsample` (builds the kernel each call)."""
    return AntialiasedDownsample(x.shape[1], x.shape[-1], size).to(x)(x)


class InferenceModel(nn.Module):
    """The exported graph: ``(masked, mask) -> portrait`` (conventions in the module docstring).

    Args:
        generator: a :class:`facectx.zoo.CascadeGenerator` (frozen, eval mode).
        portable_pyramid: build the input pyramid from plain convolutions and max-pooling
            (needed for ONNX) instead of ``generator.hallucinate``'s antialiased interpolate.
    """

    def __init__(self, generator: nn.Module, portable_pyramid: bool = False) -> None:
        super().__init__()
        self.generator = generator.eval().requires_grad_(False)
        self.sizes = tuple(int(s) for s in generator.sizes)
        self.size = self.sizes[-1]
        self.portable_pyramid = bool(portable_pyramid)
        self.down = nn.ModuleDict(
            {str(s): AntialiasedDownsample(3, self.size, s) for s in self.sizes}
        )

    def forward(self, masked: Tensor, mask: Tensor) -> Tensor:
        if not self.portable_pyramid:
            return self.generator.hallucinate(masked, mask).clamp(-1.0, 1.0)
        keep = (mask > 0.5).to(masked.dtype)
        pyramid = {}
        for s in self.sizes:
            k = self.size // s
            m = keep if k == 1 else -F.max_pool2d(-keep, kernel_size=k)
            pyramid[s] = {"masked": self.down[str(s)](masked), "mask": m}
        return self.generator(pyramid)[self.size].clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------- export


@dataclass
class ExportReport:
    """What an export produced and how close it is to the eager generator."""

    format: str
    path: str
    size: int
    checkpoint: str
    max_abs_diff: float
    faces_checked: int
    tolerance: float
    seconds: float
    inputs: dict[str, str]
    output: str
    torch: str
    opset: int | None = None


def sample_faces(n: int = 16, root: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """(masked, mask) of the first ``n`` faces of a prepared folder (None = embedded sample)."""
    from facectx.data.datasets import PreparedFaces

    if root is None:
        from facectx.assets import sample_root

        root = sample_root()
    ds = PreparedFaces(root)
    items = [ds[i] for i in range(min(n, len(ds)))]
    return torch.stack([it["masked"] for it in items]), torch.stack([it["mask"] for it in items])


def _run_torchscript(path: Path) -> Callable[[Tensor, Tensor], Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        m = torch.jit.load(str(path), map_location="cpu")
    m.eval()

    def run(masked: Tensor, mask: Tensor) -> Tensor:
        with torch.inference_mode():
            return m(masked, mask)

    return run


def _run_onnx(path: Path) -> Callable[[Tensor, Tensor], Tensor]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(masked: Tensor, mask: Tensor) -> Tensor:
        feeds = {"masked": masked.numpy(), "mask": mask.numpy()}
        return torch.from_numpy(sess.run([OUTPUT_NAME], feeds)[0])

    return run


def _run_packed(path: Path) -> Callable[[Tensor, Tensor], Tensor]:
    from facectx.pretrained.hallucinators import load_packed

    gen = load_packed(path)[0]

    def run(masked: Tensor, mask: Tensor) -> Tensor:
        with torch.inference_mode():
            return gen.hallucinate(masked, mask).clamp(-1.0, 1.0)

    return run


def load_exported(path: str | os.PathLike) -> Callable[[Tensor, Tensor], Tensor]:
    """A callable ``(masked, mask) -> output`` over an exported file (.pt TorchScript or .onnx;
    a ``packed`` file loads with ``Hallucinator.from_checkpoint``)."""
    p = Path(path)
    return _run_onnx(p) if p.suffix == ".onnx" else _run_torchscript(p)


def _require_onnx() -> None:
    missing = []
    for mod in ("onnx", "onnxruntime"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ImportError(
            f"format=onnx needs {' and '.join(missing)}: pip install onnx onnxruntime "
            "(or use format=torchscript, which needs only torch)"
        )


@dataclass
class _Export:
    """One export under way (:func:`export_model`, :func:`export_swapinpaint`): its format,
    checkpoint and output file, the largest accepted difference to eager PyTorch, ``what`` it
    writes (named by the error and the log, e.g. ``exported onnx model``; the first word stands
    in the log's ``|... - eager|``), ``done`` (the log line's head, e.g. ``exported onnx``) and
    when it began."""

    format: str
    ckpt: str | os.PathLike | None
    path: Path
    tolerance: float
    what: str
    done: str
    t0: float = field(default_factory=time.perf_counter)

    @classmethod
    def begin(
        cls,
        format: str,
        ckpt: str | os.PathLike | None,
        output: str,
        tolerance: float | None,
        what: str,
        done: str,
    ) -> _Export:
        """``tolerance`` None = the format's default (:data:`DEFAULT_TOLERANCE`)."""
        tolerance = DEFAULT_TOLERANCE[format] if tolerance is None else float(tolerance)
        return cls(format, ckpt, Path(output).expanduser().resolve(), tolerance, what, done)

    @contextmanager
    def temporary(self) -> Iterator[Path]:
        """A temporary file beside the output (its folder created), renamed over the output
        when the block ends and removed when it raises: the output is whole or absent."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            yield tmp
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def report(
        self,
        size: int,
        diff: float,
        n: int,
        inputs: dict[str, str],
        output: str,
        opset: int | None = None,
    ) -> ExportReport:
        """The :class:`ExportReport` of the parity check (``diff`` = max |exported - eager| on
        ``n`` inputs), written to ``<output>.json``; raises ``ValueError`` when ``diff`` is over
        the tolerance, else logs it."""
        path = self.path
        report = ExportReport(
            format=self.format,
            path=str(path),
            size=size,
            checkpoint=str(self.ckpt),
            max_abs_diff=diff,
            faces_checked=n,
            tolerance=self.tolerance,
            seconds=round(time.perf_counter() - self.t0, 2),
            inputs=inputs,
            output=output,
            torch=torch.__version__,
            opset=opset,
        )
        path.with_name(path.name + ".json").write_text(json.dumps(asdict(report), indent=2) + "\n")
        if diff > self.tolerance:
            raise ValueError(
                f"{path}: {self.what} differs from eager PyTorch by {diff:.3g} "
                f"> tolerance {self.tolerance:g} on {n} inputs"
            )
        log.info(
            "%s to %s: max |%s - eager| = %.2e on %d inputs (%d real faces)",
            self.done,
            path,
            self.what.split()[0],
            diff,
            n,
            max(0, n - 2),
        )
        return report


def export_model(
    ckpt: str | None,
    format: str,
    output: str,
    use_ema: bool = True,
    opset: int = 17,
    check_faces: int = 16,
    check_root: str | None = None,
    tolerance: float | None = None,
    generator: nn.Module | None = None,
    dtype: str = "float16",
) -> ExportReport:
    """Export a checkpoint's inference generator and verify it against eager PyTorch.

    Args:
        ckpt: checkpoint written by ``python -m facectx.train`` or a packed generator;
            None (or ``pretrained:NAME``) = a model shipped with facectx. A SwapInpaint
            checkpoint exports as ``packed`` only (:func:`export_swapinpaint`).
        format: one of :data:`FORMATS`.
        output: file to write (parent folders are created); ``<output>.json`` gets the report.
        use_ema: export the EMA weights when the checkpoint has them.
        opset: ONNX opset version.
        check_faces: real faces used for the parity check (0 = random inputs only).
        check_root: prepared folder of the check faces; None = the embedded sample.
        tolerance: largest accepted absolute difference to eager PyTorch (None = the format's
            default, :data:`DEFAULT_TOLERANCE`).
        generator: export this generator instead of the checkpoint's (``ckpt`` only recorded).
        dtype: ``packed`` only: the stored weight type (float16, bfloat16 or float32).

    ``packed`` writes the facectx generator file that ``Hallucinator.from_pretrained`` and
    ``ckpt=`` load (weights only, in ``dtype``; deterministic bytes).

    Raises:
        ValueError: the exported model differs from eager by more than ``tolerance``.
    """
    from facectx.inference.hallucinator import cascade_generator, load_hallucinator

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if generator is None and is_swapinpaint(ckpt):
        return export_swapinpaint(
            str(ckpt), format, output, use_ema, check_faces, check_root, tolerance, dtype
        )
    if format == "onnx":
        _require_onnx()
    job = _Export.begin(
        format, ckpt, output, tolerance, f"exported {format} model", f"exported {format}"
    )
    loaded = None
    if generator is None:
        loaded = load_hallucinator(ckpt, use_ema=use_ema)
        generator, job.ckpt = cascade_generator(loaded, "export"), loaded.source
    generator = generator.cpu().eval()
    model = InferenceModel(generator, portable_pyramid=format == "onnx")
    size, path = model.size, job.path
    gen = torch.Generator().manual_seed(0)
    example = (
        torch.rand(2, 3, size, size, generator=gen) * 2 - 1,
        (torch.rand(2, 1, size, size, generator=gen) > 0.5).float(),
    )
    with job.temporary() as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # the exporter's note on the edge padding's reversed slice: harmless, checked below
            warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
            if format == "packed":
                from facectx.checkpoint import CheckpointMeta
                from facectx.pretrained.hallucinators import pack_generator

                meta = CheckpointMeta(
                    kind="cascade",
                    init_args=generator.init_args(),
                    ema=bool(loaded.ema) if loaded is not None else False,
                    frame=loaded.frame if loaded is not None else None,
                    version=__version__,
                )
                pack_generator(generator, meta.to_dict(), tmp, dtype=dtype)
            elif format == "torchscript":
                with torch.no_grad():
                    traced = torch.jit.trace(model, example, check_trace=False)
                torch.jit.save(traced, str(tmp))
            else:
                torch.onnx.export(
                    model,
                    example,
                    str(tmp),
                    dynamo=False,
                    input_names=list(INPUT_NAMES),
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={n: {0: "batch"} for n in (*INPUT_NAMES, OUTPUT_NAME)},
                    opset_version=int(opset),
                )

    run = _run_packed(path) if format == "packed" else load_exported(path)
    checks = [example]
    if check_faces > 0:
        checks.append(sample_faces(check_faces, check_root))
    diff, n = 0.0, 0
    for masked, mask in checks:
        with torch.inference_mode():
            ref = generator.hallucinate(masked, mask).clamp(-1, 1)
        out = run(masked, mask)
        if out.shape != ref.shape:
            raise ValueError(
                f"exported model returned {tuple(out.shape)}, eager {tuple(ref.shape)}"
            )
        diff = max(diff, float((out - ref).abs().max()))
        n += masked.shape[0]
    return job.report(
        size,
        diff,
        n,
        inputs={
            "masked": f"(B, 3, {size}, {size}) float32 in [-1, 1]: pixel/127.5 - 1, "
            "-1 where mask is 0",
            "mask": f"(B, 1, {size}, {size}) float32 keep-mask: 1 = face pixel kept, 0 = generate",
        },
        output=f"(B, 3, {size}, {size}) float32 in [-1, 1]; equals masked where mask is 1",
        opset=int(opset) if format == "onnx" else None,
    )


# ---------------------------------------------------------------------------- SwapInpaint


def is_swapinpaint(ckpt: str | os.PathLike | None) -> bool:
    """Whether ``ckpt`` names a SwapInpaint model: a shipped one (``pretrained:NAME``) or a
    file whose facectx record says ``swapinpaint`` (anything unreadable: False, the
    hallucinator's loader then says why)."""
    from facectx.checkpoint import CheckpointError, load_checkpoint
    from facectx.pretrained.inpainters import PRETRAINED_INPAINTERS

    text = "" if ckpt is None else str(ckpt).strip()
    if text.startswith("pretrained:"):
        return text.partition(":")[2] in PRETRAINED_INPAINTERS
    if not text or text == "pretrained" or not Path(text).expanduser().is_file():
        return False
    try:
        record = load_checkpoint(Path(text).expanduser()).get("facectx")
    except CheckpointError:
        return False
    return isinstance(record, dict) and record.get("kind") == "swapinpaint"


def swapinpaint_check_inputs(
    size: int, check_faces: int = 16, root: str | os.PathLike | None = None
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """(masked, keep mask, reference) batches for a SwapInpaint parity check at ``size`` px:
    two random faces, then ``check_faces`` real ones of a prepared folder (None = the embedded
    sample) with a centre hole (the middle half of the side), each with the next face as its
    reference."""
    gen = torch.Generator().manual_seed(0)
    keep = torch.ones(1, 1, size, size)
    keep[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    image = torch.rand(2, 3, size, size, generator=gen) * 2 - 1
    batches = [(image * keep - (1 - keep), keep.expand(2, -1, -1, -1), image.flip(0))]
    if check_faces > 0:
        from facectx.data.datasets import PreparedFaces

        if root is None:
            from facectx.assets import sample_root

            root = sample_root()
        ds = PreparedFaces(root)
        faces = torch.stack([ds[i]["image"] for i in range(min(check_faces, len(ds)))])
        if faces.shape[-1] != size:
            faces = F.interpolate(faces, size=(size, size), mode="bilinear", antialias=True)
        m = keep.expand(len(faces), -1, -1, -1)
        batches.append((faces * m - (1 - m), m, faces.roll(1, 0)))
    return batches


def _check_identity(meta) -> Callable[[Tensor], Tensor]:
    """z_id for the parity check: the identity network the record names when it loads here
    offline, else fixed random vectors of its size (the check compares C and G, not I)."""
    from facectx.pretrained import load

    info = meta.extra.get("identity") or {}
    try:
        net = load(str(info.get("name")), download=False)
    except Exception as e:  # not in the registry, weights not here: C and G are still checked
        log.info("parity check with random z_id (%s: %s)", info.get("name"), e)
        dim = int(info.get("feature_dim") or meta.init_args["swap"]["id_dim"])
        gen = torch.Generator().manual_seed(1)
        return lambda ref: torch.randn(ref.shape[0], dim, generator=gen)

    def embed(ref: Tensor) -> Tensor:
        with torch.inference_mode():
            return net(ref)

    return embed


def export_swapinpaint(
    ckpt: str,
    format: str,
    output: str,
    use_ema: bool = True,
    check_faces: int = 16,
    check_root: str | None = None,
    tolerance: float | None = None,
    dtype: str = "float16",
) -> ExportReport:
    """Pack a SwapInpaint checkpoint's C and G (EMA when present and ``use_ema``) into the file
    ``Inpainter.from_pretrained`` / ``Inpainter.from_checkpoint`` load, then check the packed
    model against the eager float32 one (outputs X̂, Y_sp and Y) on real faces with a centre
    hole; arguments as :func:`export_model`. ``ckpt=pretrained:NAME`` repacks a shipped model.

    Raises:
        ValueError: ``format`` is not ``packed`` (the only form of a SwapInpaint model), or the
            packed model differs from eager by more than ``tolerance``.
    """
    from facectx.pretrained.inpainters import (
        PRETRAINED_INPAINTERS,
        load_packed_inpainter,
        pack_checkpoint,
        resolve_inpainter,
    )

    if format != "packed":
        raise ValueError(
            f"format={format}: a SwapInpaint checkpoint ({ckpt}) exports only as format=packed "
            "(the facectx file Inpainter.from_pretrained and inpaint ckpt= load); TorchScript "
            "and ONNX export cover the cascade hallucinator"
        )
    what = "packed SwapInpaint model"
    job = _Export.begin(format, ckpt, output, tolerance, what, done=what)
    name = ckpt.partition(":")[2] if ckpt.startswith("pretrained:") else None
    source = resolve_inpainter(name) if name in PRETRAINED_INPAINTERS else ckpt
    with job.temporary() as tmp:
        model, meta, _ = pack_checkpoint(source, tmp, use_ema=use_ema, dtype=dtype)

    packed, _ = load_packed_inpainter(job.path)
    embed = _check_identity(meta)
    diff, n = 0.0, 0
    for masked, mask, reference in swapinpaint_check_inputs(model.size, check_faces, check_root):
        z_id = embed(reference)
        with torch.inference_mode():
            ref = model(masked, mask, z_id)
            out = packed(masked, mask, z_id)
        for key in ("content", "swapped", "output"):
            d = (out[key].clamp(-1, 1) - ref[key].clamp(-1, 1)).abs().max()
            diff = max(diff, float(d))
        n += masked.shape[0]
    size = int(model.size)
    return job.report(
        size,
        diff,
        n,
        inputs={
            "masked": f"(B, 3, {size}, {size}) float32 in [-1, 1], -1 where mask is 0",
            "mask": f"(B, 1, {size}, {size}) float32 keep-mask: 1 = known, 0 = hole",
            "z_id": f"(B, {model.swap.id_dim}) identity of the reference: "
            f"{(meta.extra.get('identity') or {}).get('name')}(reference)",
        },
        output=f'{{"content", "swapped", "output"}}: (B, 3, {size}, {size}) float32 in [-1, 1]',
    )


__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "AntialiasedDownsample",
    "ExportReport",
    "InferenceModel",
    "antialiased_downsample",
    "export_model",
    "export_swapinpaint",
    "is_swapinpaint",
    "load_exported",
    "sample_faces",
    "swapinpaint_check_inputs",
]
