"""Evaluate context hallucination: checkpoints, output folders and baselines on prepared faces.

    python -m facectx.evaluate data.root=PREPARED split=test      # the shipped model, lfw-128
    python -m facectx.evaluate ckpt=pretrained:lfw-128 data.root=PREPARED split=test
    python -m facectx.evaluate ckpt=RUN/checkpoints/last.ckpt data.root=PREPARED split=test
    python -m facectx.evaluate pred_dir=OUTPUTS data.root=PREPARED split=test
    python -m facectx.evaluate method=[mask_only,telea] data.root=PREPARED split=test
    python -m facectx.evaluate ckpt=SWAPINPAINT.ckpt reference=cross mask=facial \
        method=[paste_reference] data.root=PREPARED split=test

Every method sees the same masked faces; its outputs are quantised to 8 bits (as if saved to
PNG) and pixels outside the source photo (``valid`` = 0) are set to the original's before any
metric. Per face: MSE, PSNR, SSIM on the frame and on the context (mask 0 and valid), LPIPS,
identity Pearson (rho) and cosine, pose and expression errors; with ``reference=cross`` every
face also gets a reference face and ``id_ref`` (identity cosine of output to reference), the
identity column of SwapInpaint's Table I. Per method: their means, FID,
and verification on the LFW pairs inside the set. Outputs in the run folder
(``logs/evaluate/<time>/``): ``results.md``, ``results.csv``, ``per_image.csv``,
``problems.csv`` (only if some faces could not be scored), ``settings.json``, ``samples.png``.
Formulas and choices: ``docs/evaluation.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from facectx.evaluation.harness import EvaluationResult

log = logging.getLogger("facectx.evaluate")


def run(cfg: DictConfig) -> EvaluationResult:
    """Run a composed ``eval`` config: score, write the run folder, print the table."""
    from facectx.evaluation.from_config import evaluate_config
    from facectx.evaluation.tables import print_results

    result = evaluate_config(cfg)
    print_results(result)
    for note in result.notes:
        log.info("note: %s", note)
    log.info("results: %s", Path(cfg.paths.output_dir) / "results.md")
    return result


def main() -> None:
    """``python -m facectx.evaluate`` (Hydra: conf/eval.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("eval", run, log)


if __name__ == "__main__":
    main()
