"""The note a training run on the embedded sample ends with (``make demo``).

A quickstart stopped by its time guard on a busy CPU leaves a grid of rough colour after a
few dozen iterations; without a word, that reads as a broken model. The note says what the run
was (iterations, where the grid is) and gives the command that shows the shipped model on the
same faces, with paths that work from the directory the run was started in.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

#: the data module that trains hallucinators (SwapInpaint's pairs module is another task)
FACE_DATA = "facectx.data.datamodule.FaceDataModule"
#: below this many iterations a cascade draws rough colour, not hair or background
FEW_ITERATIONS = 1000


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (shorter), else absolute;
    shell-quoted."""
    path = path.resolve()
    try:
        path = path.relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return shlex.quote(os.fspath(path))


def sample_run_note(cfg: Any, summary: dict[str, Any]) -> list[str]:
    """Two lines for a finished hallucinator run on the embedded sample (``data.root`` null):
    what it trained and where its grid is, then the shipped model's command; none otherwise
    (own data: the user knows what to expect; a failed run already said why). Two log lines of
    under 240 characters each, where one would not fit."""
    from omegaconf import OmegaConf

    from facectx.assets import sample_root
    from facectx.pretrained.hallucinators import DEFAULT_PORTRAIT

    data = OmegaConf.select(cfg, "data", default=None)
    if summary.get("status") != "finished" or data is None:
        return []
    if data.get("_target_") != FACE_DATA or data.get("root") is not None:
        return []
    run_dir = Path(summary["output_dir"])
    n = int(summary.get("iterations") or 0)
    grid = run_dir / "samples" / "latest.png"
    where = f"grid: {_shown(grid)}" if grid.is_file() else "no sample grid (no validation ran)"
    # time and stop reason are on the line before ("done in ..."); this one says what they mean
    head = f"{cfg.get('task', 'train')}: {n} iterations"
    if n < FEW_ITERATIONS:
        head += ", too few for more than rough colour (no hair or background yet)"
    head += f"; {where}"
    command = (
        f"python -m facectx.hallucinate input={_shown(sample_root())} "
        f"output={_shown(run_dir / 'shipped_model')}"
    )
    return [head, f"the shipped model ({DEFAULT_PORTRAIT}) on the same faces: {command}"]
