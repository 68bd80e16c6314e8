"""Identity-specific inpainting of raw photos with a trained SwapInpaint model.

One photo::

    python -m facectx.inpaint ckpt=RUN/checkpoints/last.ckpt image=photo.jpg \\
        reference=other.jpg mask=facial output=out.png

A folder (one reference for all, or a CSV of ``image,reference`` pairs)::

    python -m facectx.inpaint ckpt=... image=photos/ reference=ref.jpg mask=ocular output=outdir/
    python -m facectx.inpaint ckpt=... pairs=pairs.csv mask=center output=outdir/

Per photo: detect and align the face (and the reference's) into the model's canonical frame,
cut the hole (``facial`` / ``ocular`` / ``center``, or a mask file), run C and G, Poisson-blend
Y_sp into the hole (``facectx.blend``), and warp the result back into the photo at its full
resolution: only pixels inside the warped-back hole change, every other pixel is the input's
exactly. Batch mode writes ``outputs.csv`` and ``skipped.csv`` (reason per photo) and resumes.

The Lightning-free API is :class:`Inpainter` (``Inpainter.from_checkpoint(path)``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from facectx._conf import config_dir

log = logging.getLogger("facectx.inpaint")

MASK_KINDS = ("facial", "ocular", "center")
OUTPUT_COLUMNS = ("image", "reference", "output", "faces")
SKIPPED_COLUMNS = ("image", "reason", "detail")


class InpaintError(ValueError):
    """A photo could not be inpainted; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def _to_tensor(images: np.ndarray) -> Tensor:
    """(B, S, S, 3) or (S, S, 3) uint8 -> (B, 3, S, S) float in [-1, 1]."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _to_uint8(x: Tensor) -> np.ndarray:
    """(B, 3, S, S) in [-1, 1] -> (B, S, S, 3) uint8."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def mask_kind(name: str) -> Callable[..., Tensor]:
    """The keep-mask callable for ``facial``, ``ocular`` or ``center`` (conf/mask defaults)."""
    from facectx.masks import CenterMask, FacialMask, OcularMask

    kinds = {"facial": FacialMask, "ocular": OcularMask, "center": CenterMask}
    if name not in kinds:
        raise ValueError(f"mask must be one of {MASK_KINDS} or a mask file, got {name!r}")
    return kinds[name]()


def read_hole_file(path: str | os.PathLike) -> np.ndarray:
    """A user-drawn mask file as a boolean hole (white/nonzero > 127 = pixel to fill)."""
    from facectx.faces.io import read_image

    rgb = read_image(path)
    return rgb.max(axis=2) > 127


@dataclass
class AlignedResult:
    """One face inpainted in the canonical frame (all (S, S, 3) uint8 unless stated).

    Attributes:
        masked: the incomplete input (black hole).
        content: X̂, C's completion.
        reference: the aligned reference face.
        swapped: Y_sp, G's output.
        output: the final aligned result (Y_sp Poisson-blended into the hole, or Y).
        hole: (S, S) bool, the hole.
    """

    masked: np.ndarray
    content: np.ndarray
    reference: np.ndarray
    swapped: np.ndarray
    output: np.ndarray
    hole: np.ndarray

    def panel(self) -> np.ndarray:
        """masked | X̂ | reference | Y_sp | output, side by side."""
        return np.concatenate(
            [self.masked, self.content, self.reference, self.swapped, self.output], 1
        )


@dataclass
class PhotoResult:
    """A photo inpainted at its full resolution.

    Attributes:
        image: (H, W, 3) uint8, the input photo with the holes filled.
        hole: (H, W) bool, the union of the warped-back holes: the only pixels that changed.
        faces: the per-face results in the canonical frame.
    """

    image: np.ndarray
    hole: np.ndarray
    faces: list[AlignedResult] = field(default_factory=list)


class Inpainter:
    """SwapInpaint inference without Lightning.

    Args:
        model: the trained C and G (``facectx.zoo.swapinpaint.SwapInpaint``).
        identity: the identity encoder I the model was trained with (canonical faces in).
        device: where to run.
    """

    def __init__(
        self, model: nn.Module, identity: nn.Module, device: str | torch.device = "cpu"
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.identity = identity.to(self.device).eval().requires_grad_(False)
        self.size = int(model.size)
        self.ema = False  # whether the weights are a checkpoint's EMA weights

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        use_ema: bool = True,
        identity: nn.Module | None = None,
        identity_path: str | None = None,
        allow_random_identity: bool = False,
    ) -> Inpainter:
        """Rebuild C and G from a SwapInpaint checkpoint (EMA weights when present and
        ``use_ema``), and load the identity network it names from ``facectx.pretrained``.

        Args:
            path: a checkpoint written by ``python -m facectx.train`` with a swapinpaint model.
            device: where to run.
            use_ema: prefer the EMA weights when the checkpoint has them.
            identity: an identity network to use instead of loading the one the checkpoint names.
            identity_path: explicit weight file for that network (``facectx.pretrained.load``).
            allow_random_identity: let the registry build it with random weights (tests only).
        """
        from facectx.inference import CheckpointError, load_checkpoint
        from facectx.zoo.swapinpaint import SwapInpaint

        ckpt = load_checkpoint(path)
        meta = ckpt.get("facectx")
        if not isinstance(meta, dict) or meta.get("kind") != "swapinpaint":
            raise CheckpointError(
                f"{path} is not a facectx SwapInpaint checkpoint (no facectx/swapinpaint "
                "metadata); pass a checkpoint written by `python -m facectx.train "
                "experiment=swapinpaint_quickstart` (or another swapinpaint experiment)."
            )
        model = SwapInpaint.from_config(meta["model"])
        prefix = "generator_ema." if use_ema and meta.get("ema") else "generator."
        state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: SwapInpaint weights do not match: {e}") from e
        if identity is None:
            from facectx.pretrained import load

            identity = load(
                meta["identity"]["name"],
                path=identity_path,
                allow_random_init=allow_random_identity,
            )
        dim = int(getattr(identity, "feature_dim", meta["identity"]["feature_dim"]))
        if dim != model.swap.id_dim:
            raise CheckpointError(
                f"{path} was trained with {meta['identity']['name']} ({model.swap.id_dim}-D) "
                f"but the identity network given is {dim}-D"
            )
        if meta.get("stage") == "content":
            log.warning(
                "%s was saved during the content stage: G is untrained, outputs are meaningless",
                path,
            )
        out = cls(model, identity, device)
        out.ema = prefix == "generator_ema."
        return out

    # ---- tensors in the canonical frame ------------------------------------------------------
    def _check(self, name: str, x: Tensor, channels: int) -> Tensor:
        if x.ndim != 4 or x.shape[1] != channels or x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"{name} must be (B, {channels}, {self.size}, {self.size}) canonical faces, got "
                f"{tuple(x.shape)}; align photos with facectx.faces.FacePreparer (frame size "
                f"{self.size}) or use Inpainter.inpaint_photo"
            )
        return x.to(self.device)

    @torch.inference_mode()
    def embed(self, reference: Tensor) -> Tensor:
        """z_id = I(R) for (B, 3, S, S) references in [-1, 1]."""
        return self.identity(self._check("reference", reference, 3))

    @torch.inference_mode()
    def __call__(self, masked: Tensor, mask: Tensor, reference: Tensor) -> dict[str, Tensor]:
        """``{"content": X̂, "swapped": Y_sp, "output": Y}``, (B, 3, S, S) in [-1, 1], from
        incomplete faces ``masked`` (hole values ignored), keep masks ``mask`` (1 = known) and
        references; no blending (``Y`` pastes Y_sp's hole onto X̂)."""
        masked = self._check("masked", masked, 3)
        mask = self._check("mask", mask, 1)
        z_id = self.embed(reference)
        if z_id.shape[0] != masked.shape[0]:
            z_id = z_id.expand(masked.shape[0], -1) if z_id.shape[0] == 1 else z_id
        return {k: v.clamp(-1, 1) for k, v in self.model(masked, mask, z_id).items()}

    # ---- uint8 arrays in the canonical frame --------------------------------------------------
    def inpaint_aligned(
        self,
        image: np.ndarray,
        keep: np.ndarray,
        reference: np.ndarray,
        blend: bool = True,
        dilate: int = 5,
    ) -> AlignedResult:
        """Inpaint one aligned (S, S, 3) uint8 face given its (S, S) keep mask (1 = known) and
        an aligned reference; the output is Y_sp Poisson-blended into the hole (``blend``) or Y.
        """
        from facectx.blend import poisson_blend

        s = self.size
        for name, a in (("image", image), ("reference", reference)):
            if a.shape != (s, s, 3) or a.dtype != np.uint8:
                raise ValueError(f"{name} must be ({s}, {s}, 3) uint8, got {a.shape} {a.dtype}")
        keep = (np.asarray(keep) > 0.5).astype(np.float32)
        if keep.shape != (s, s):
            raise ValueError(f"keep mask must be ({s}, {s}), got {keep.shape}")
        x = _to_tensor(image)
        m = torch.from_numpy(keep)[None, None]
        masked = x * m - (1 - m)
        out = self(masked, m, _to_tensor(reference))
        hole = keep < 0.5
        content, swapped, composite = (
            _to_uint8(out[k])[0] for k in ("content", "swapped", "output")
        )
        if blend:
            final = poisson_blend(image, swapped, hole, dilate=dilate)
        else:
            final = image.copy()
            final[hole] = composite[hole]
        return AlignedResult(
            masked=_to_uint8(masked)[0],
            content=content,
            reference=np.ascontiguousarray(reference),
            swapped=swapped,
            output=final,
            hole=hole,
        )

    # ---- raw photos ---------------------------------------------------------------------------
    def preparer(self, detector: str = "hog", faces: str = "largest"):
        """A ``FacePreparer`` into this model's frame (size = model size, default eye layout)."""
        from facectx.faces.frame import CanonicalFrame
        from facectx.faces.pipeline import FacePreparer

        return FacePreparer(CanonicalFrame(size=self.size), detector=detector, faces=faces)

    def prepare_reference(self, photo: np.ndarray, preparer=None) -> np.ndarray:
        """The aligned (S, S, 3) uint8 largest face of a reference photo."""
        preparer = preparer or self.preparer()
        res = preparer.run(photo)
        if not res.faces:
            raise InpaintError(f"reference_{res.reason}", f"reference photo: {res.detail}")
        return res.faces[0].image

    def _aligned_keep(self, mask, face, photo_shape, generator) -> np.ndarray:
        s = self.size
        if isinstance(mask, str):
            mask = mask_kind(mask)
        if callable(mask):
            lm = torch.from_numpy(np.asarray(face.landmarks, np.float32))
            return mask(s, lm, generator)[0].numpy()
        hole = np.asarray(mask).astype(bool)
        if hole.shape == (s, s):
            return (~hole).astype(np.float32)
        if hole.shape == tuple(photo_shape[:2]):
            aligned = cv2.warpAffine(
                hole.astype(np.uint8) * 255,
                np.asarray(face.matrix, np.float64),
                (s, s),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            return (aligned < 128).astype(np.float32)
        raise InpaintError(
            "bad_mask",
            f"mask is {hole.shape}; expected the photo's size {tuple(photo_shape[:2])} or the "
            f"model's aligned frame ({s}, {s})",
        )

    def inpaint_photo(
        self,
        photo: np.ndarray,
        reference: np.ndarray,
        mask: str | np.ndarray | Callable[..., Tensor] = "facial",
        preparer=None,
        reference_aligned: bool = False,
        blend: bool = True,
        dilate: int = 5,
        seed: int = 0,
    ) -> PhotoResult:
        """Inpaint the face(s) of a raw (H, W, 3) uint8 RGB photo at full resolution.

        Args:
            photo: the photo to inpaint.
            reference: the reference photo (its largest face is used), or an aligned (S, S, 3)
                face when ``reference_aligned``.
            mask: ``facial`` | ``ocular`` | ``center``, a keep-mask callable
                ``(size, landmarks, generator)``, or a boolean hole array (True = fill) of the
                photo's size (warped into the frame) or of the frame's size.
            preparer: a ``FacePreparer`` into this model's frame; None = HOG, largest face.
            reference_aligned: ``reference`` is already an aligned face.
            blend: Poisson-blend Y_sp into the hole (the paper's prediction); False pastes it.
            dilate: pixels (in the frame) the blending region extends beyond the hole.
            seed: seed of random mask kinds.

        Raises:
            InpaintError: no usable face in the photo or the reference (``reason`` says which).
        """
        from facectx.faces.align import warp_to_source

        preparer = preparer or self.preparer()
        ref = reference if reference_aligned else self.prepare_reference(reference, preparer)
        res = preparer.run(photo)
        if not res.faces:
            raise InpaintError(res.reason, res.detail)
        generator = torch.Generator().manual_seed(int(seed))
        out = photo.copy()
        hole_src = np.zeros(photo.shape[:2], bool)
        results = []
        for face in res.faces:
            keep = self._aligned_keep(mask, face, photo.shape, generator)
            r = self.inpaint_aligned(face.image, keep, ref, blend=blend, dilate=dilate)
            results.append(r)
            hole = warp_to_source(r.hole.astype(np.uint8) * 255, face.matrix, photo.shape) >= 128
            if isinstance(mask, np.ndarray) and mask.shape == photo.shape[:2]:
                hole &= mask.astype(bool)  # never change a pixel outside the user's own hole
            filled = warp_to_source(r.output, face.matrix, photo.shape)
            out[hole] = filled[hole]
            hole_src |= hole
        return PhotoResult(image=out, hole=hole_src, faces=results)


# ---- the CLI -------------------------------------------------------------------------------------
def _jobs(
    image: str | None, reference: str | None, pairs: str | None
) -> list[tuple[Path, Path, str]]:
    """(image path, reference path, output name) for every photo to inpaint."""
    from facectx.data.manifest import read_rows
    from facectx.faces.io import list_images

    if pairs:
        csv_path = Path(pairs).expanduser().resolve()
        rows = read_rows(csv_path)
        if not rows or not {"image", "reference"} <= set(rows[0]):
            raise ValueError(f"{csv_path} must be a CSV with columns image,reference")
        base = csv_path.parent
        out = []
        for r in rows:
            img = (base / r["image"]).resolve()
            out.append(
                (
                    img,
                    (base / r["reference"]).resolve(),
                    Path(r["image"]).with_suffix(".png").as_posix(),
                )
            )
        return out
    if not image:
        raise ValueError("pass image=PHOTO or image=FOLDER (with reference=PHOTO), or pairs=CSV")
    if reference is None:
        raise ValueError("pass reference=PHOTO (used for every image) or pairs=CSV")
    src = Path(image).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"image={image!r}: {src} does not exist")
    ref = Path(reference).expanduser().resolve()
    if src.is_dir():
        return [
            (p, ref, p.relative_to(src).with_suffix(".png").as_posix()) for p in list_images(src)
        ]
    return [(src, ref, src.with_suffix(".png").name)]


def _extras(target: Path, res: PhotoResult, aligned: bool, hole: bool) -> None:
    from facectx.faces.io import write_png

    if aligned:
        panel = np.concatenate([f.panel() for f in res.faces], 0)
        write_png(target.with_name(target.stem + "_aligned.png"), panel)
    if hole:
        write_png(target.with_name(target.stem + "_hole.png"), res.hole.astype(np.uint8) * 255)


def inpaint_photos(
    ckpt: str,
    image: str | None,
    output: str,
    reference: str | None = None,
    pairs: str | None = None,
    mask: str | Callable[..., Tensor] = "facial",
    faces: str = "largest",
    detector: str = "hog",
    device: str = "cpu",
    use_ema: bool = True,
    blend: bool = True,
    dilate: int = 5,
    seed: int = 0,
    save_aligned: bool = False,
    save_hole: bool = False,
    identity_path: str | None = None,
) -> dict[str, int]:
    """Inpaint one photo (``output`` a file) or many (``output`` a folder, resumable); ``mask``
    is ``facial`` | ``ocular`` | ``center``, a keep-mask callable or a mask file; returns
    counts ``{"done", "skipped", "already_done", "total"}``. ``save_aligned`` also writes
    ``<name>_aligned.png`` (masked | X̂ | reference | Y_sp | output per face), ``save_hole``
    ``<name>_hole.png`` (white = the warped-back hole, the only pixels that may change)."""
    from rich.progress import Progress

    from facectx._jobrecord import check_or_record, describe, weights_digest
    from facectx.data.manifest import CsvAppender, read_rows
    from facectx.faces.io import ImageReadError, read_image, write_png

    model = Inpainter.from_checkpoint(
        ckpt, device=device, use_ema=use_ema, identity_path=identity_path
    )
    preparer = model.preparer(detector=detector, faces=faces)
    mask_spec: str | np.ndarray | Callable[..., Tensor] = mask
    if isinstance(mask, str) and mask not in MASK_KINDS:
        mask_path = Path(mask).expanduser()
        if not mask_path.is_file():
            raise FileNotFoundError(
                f"mask={mask!r} is neither {'/'.join(MASK_KINDS)} nor an existing mask file"
            )
        mask_spec = read_hole_file(mask_path)

    jobs = _jobs(image, reference, pairs)
    single = not pairs and not Path(image or "").expanduser().is_dir()
    out_path = Path(output).expanduser().resolve()
    refs: dict[Path, np.ndarray] = {}

    def run_one(img_path: Path, ref_path: Path) -> PhotoResult:
        if ref_path not in refs:
            refs[ref_path] = model.prepare_reference(read_image(ref_path), preparer)
        return model.inpaint_photo(
            read_image(img_path),
            refs[ref_path],
            mask_spec,
            preparer=preparer,
            reference_aligned=True,
            blend=blend,
            dilate=dilate,
            seed=seed,
        )

    if single:
        img_path, ref_path, _ = jobs[0]
        if out_path.suffix.lower() != ".png":
            out_path = (
                out_path / f"{img_path.stem}.png"
                if out_path.is_dir()
                else out_path.with_suffix(".png")
            )
        res = run_one(img_path, ref_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_png(out_path, res.image)
        _extras(out_path, res, save_aligned, save_hole)
        log.info(
            "wrote %s (%d face(s), %d px changed)", out_path, len(res.faces), int(res.hole.sum())
        )
        return {"done": 1, "skipped": 0, "already_done": 0, "total": 1}

    check_or_record(
        out_path,
        {
            "job": "inpaint",
            "model": str(Path(ckpt).expanduser().resolve()),
            "weights": weights_digest(model.model, model.identity),
            "image": None if pairs else str(Path(image or "").expanduser().resolve()),
            "reference": None if pairs else str(Path(reference or "").expanduser().resolve()),
            "pairs": str(Path(pairs).expanduser().resolve()) if pairs else None,
            "mask": str(Path(mask).expanduser().resolve())
            if isinstance(mask, str) and mask not in MASK_KINDS
            else describe(mask),
            "faces": faces,
            "detector": detector,
            "blend": bool(blend),
            "dilate": int(dilate),
            "seed": int(seed),
        },
        results=("outputs.csv", "skipped.csv"),
    )
    done = {r["image"] for r in read_rows(out_path / "outputs.csv")}
    todo = [j for j in jobs if str(j[0]) not in done]
    counts = {"done": 0, "skipped": 0, "already_done": len(jobs) - len(todo), "total": len(jobs)}
    t0 = time.perf_counter()
    with (
        CsvAppender(out_path / "outputs.csv", OUTPUT_COLUMNS) as outputs,
        CsvAppender(out_path / "skipped.csv", SKIPPED_COLUMNS) as skipped,
        Progress() as bar,
    ):
        task = bar.add_task("inpainting", total=len(todo))
        for img_path, ref_path, name in todo:
            try:
                res = run_one(img_path, ref_path)
            except InpaintError as e:
                skipped.write({"image": str(img_path), "reason": e.reason, "detail": e.detail})
                counts["skipped"] += 1
            except ImageReadError as e:
                which = "reference_unreadable" if Path(e.path) == ref_path else "unreadable"
                skipped.write({"image": str(img_path), "reason": which, "detail": e.reason})
                counts["skipped"] += 1
            else:
                target = out_path / name
                target.parent.mkdir(parents=True, exist_ok=True)
                write_png(target, res.image)
                _extras(target, res, save_aligned, save_hole)
                outputs.write(
                    {
                        "image": str(img_path),
                        "reference": str(ref_path),
                        "output": name,
                        "faces": len(res.faces),
                    }
                )
                counts["done"] += 1
            bar.advance(task)
    dt = time.perf_counter() - t0
    log.info(
        "%d inpainted, %d skipped (see %s), %d already done, in %.1f s; outputs in %s",
        counts["done"],
        counts["skipped"],
        out_path / "skipped.csv",
        counts["already_done"],
        dt,
        out_path,
    )
    return counts


def mask_arguments(argv: list[str]) -> list[str]:
    """``mask=PATH`` -> ``mask_file=PATH``: ``mask`` is a config group (facial, ocular, center,
    …), so a value that names no option of ``conf/mask`` is taken as a mask file."""
    options = {p.stem for p in (Path(config_dir()) / "mask").glob("*.yaml")}
    out = []
    for a in argv:
        if a.startswith("mask=") and a[len("mask=") :] not in options:
            a = "mask_file=" + a[len("mask=") :]
        out.append(a)
    return out


#: what ``inpaint`` says when no checkpoint is given (no SwapInpaint model ships with facectx)
NO_CKPT = (
    "inpaint needs ckpt=<a SwapInpaint checkpoint>; none ships with facectx. Train one with "
    "`python -m facectx.train experiment=swapinpaint_quickstart` and pass "
    "ckpt=<its run folder>/checkpoints/last.ckpt"
)


@hydra.main(config_path=config_dir(), config_name="inpaint", version_base="1.3")
def main(cfg: DictConfig) -> None:
    import sys

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from facectx._conf import cli_errors

    if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:
        log.error("%s", NO_CKPT)
        sys.exit(2)
    with cli_errors(log):
        _run(cfg, cfg.mask_file if cfg.get("mask_file") else instantiate(cfg.mask))


def _run(cfg: DictConfig, mask) -> None:
    inpaint_photos(
        ckpt=cfg.ckpt,
        image=cfg.image,
        output=cfg.output,
        reference=cfg.reference,
        pairs=cfg.pairs,
        mask=mask,
        faces=cfg.faces,
        detector=cfg.detector,
        device=cfg.device,
        use_ema=cfg.use_ema,
        blend=cfg.blend,
        dilate=cfg.dilate,
        seed=cfg.seed,
        save_aligned=cfg.save_aligned,
        save_hole=cfg.save_hole,
        identity_path=cfg.identity_path,
    )


def cli() -> None:
    """Console entry point: ``mask=PATH`` rewritten (``mask_arguments``), then the Hydra main."""
    import sys

    sys.argv = mask_arguments(sys.argv)
    main()


if __name__ == "__main__":
    cli()
