"""Export the generator: ``python -m facectx.export format=torchscript|onnx|packed output=...``.

The command line only: compose ``conf/export.yaml``, make one library call
(:func:`facectx.inference.export.export_model`: export, load the file back, check it against
eager PyTorch on real faces), print what it did. No ``ckpt=`` exports the model shipped with
facectx; ``ckpt=pretrained:NAME`` another shipped one. In Python use
:mod:`facectx.inference.export`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from facectx.inference.export import ExportReport, export_model

log = logging.getLogger("facectx.export")

__all__ = ["main", "run"]


def run(cfg) -> ExportReport:
    """Run a composed ``export`` config (conf/export.yaml)."""
    report = export_model(
        None if cfg.get("ckpt") is None else str(cfg.ckpt),
        str(cfg.format),
        str(Path(str(cfg.output)).expanduser()),
        use_ema=bool(cfg.use_ema),
        opset=int(cfg.opset),
        check_faces=int(cfg.check_faces),
        check_root=cfg.get("check_root"),
        tolerance=None if cfg.get("tolerance") is None else float(cfg.tolerance),
        dtype=str(cfg.get("dtype", "float16")),
    )
    print(
        f"exported {report.format} -> {report.path} (max |exported - eager| = "
        f"{report.max_abs_diff:.2e} on {report.faces_checked} inputs, tolerance "
        f"{report.tolerance:g})",
        flush=True,
    )
    return report


def main() -> None:
    """``python -m facectx.export`` (Hydra: conf/export.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("export", run, log)


if __name__ == "__main__":
    main()
