"""Hallucinate context for every face of a prepared folder.

``python -m facectx.hallucinate ckpt=... input=PREPARED_DIR output=DIR`` writes
``DIR/<id>.png`` (128 px portraits) and ``DIR/outputs.csv`` (id, output, source, person). Faces
already listed in ``outputs.csv`` are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from facectx._conf import config_dir

log = logging.getLogger("facectx.hallucinate")
OUTPUT_COLUMNS = ("id", "output", "source", "person")


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(rgb).save(tmp, format="PNG")
    os.replace(tmp, path)


def hallucinate_folder(
    ckpt: str,
    input: str,
    output: str,
    split: str | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    use_ema: bool = True,
    preview: bool = False,
) -> dict[str, int]:
    """Run a trained cascade over a prepared folder; returns counts (done, skipped, total)."""
    from rich.progress import Progress
    from torch.utils.data import DataLoader, Subset

    from facectx.callbacks.grid import to_uint8
    from facectx.data.datasets import PreparedFaces
    from facectx.data.manifest import CsvAppender, read_rows
    from facectx.inference import Hallucinator

    model = Hallucinator.from_checkpoint(ckpt, device=device, use_ema=use_ema)
    dataset = PreparedFaces(input, split=split, mirror=False)
    if dataset.size != model.size:
        raise ValueError(
            f"{input} holds {dataset.size} px faces but the model makes {model.size} px; "
            f"prepare the photos again with size={model.size}."
        )
    out_dir = Path(output).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {r["id"] for r in read_rows(out_dir / "outputs.csv")}
    todo = [i for i, r in enumerate(dataset.rows) if r["id"] not in done]
    loader = DataLoader(Subset(dataset, todo), batch_size=batch_size, shuffle=False)
    t0 = time.perf_counter()
    with CsvAppender(out_dir / "outputs.csv", OUTPUT_COLUMNS) as csv_out, Progress() as bar:
        task = bar.add_task("hallucinating", total=len(todo))
        for batch in loader:
            out = to_uint8(model(batch["masked"], batch["mask"]))
            rows = []
            for k, face_id in enumerate(batch["id"]):
                _save_png(out_dir / f"{face_id}.png", out[k])
                if preview:
                    side = np.concatenate(
                        [to_uint8(batch["masked"][k]), out[k], to_uint8(batch["image"][k])], 1
                    )
                    _save_png(out_dir / f"{face_id}_preview.png", side)
                row = dataset.rows[int(batch["index"][k])]
                rows.append(
                    {
                        "id": face_id,
                        "output": f"{face_id}.png",
                        "source": row.get("source", ""),
                        "person": row.get("person", ""),
                    }
                )
            csv_out.write_many(rows)
            bar.advance(task, len(rows))
    dt = time.perf_counter() - t0
    log.info(
        "%d faces in %.1f s (%.1f img/s), %d already done; outputs in %s",
        len(todo),
        dt,
        len(todo) / max(dt, 1e-9),
        len(done),
        out_dir,
    )
    return {"done": len(todo), "skipped": len(done), "total": len(dataset)}


@hydra.main(config_path=config_dir(), config_name="hallucinate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    hallucinate_folder(
        cfg.ckpt,
        cfg.input,
        cfg.output,
        cfg.split,
        cfg.batch_size,
        cfg.device,
        cfg.use_ema,
        cfg.preview,
    )


if __name__ == "__main__":
    main()
