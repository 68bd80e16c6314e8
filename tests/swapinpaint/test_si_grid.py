"""SwapInpaint's sample grids come from the one ``ImageGrid`` callback, through the module's grid
hook: the same files as every model, and the image reaches loggers that take images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facectx.callbacks import ImageGrid

from .conftest import SIZE, PairBatches, make_module, tiny_trainer


class ImageSink:
    """The part of a TensorBoard logger ``ImageGrid`` writes to."""

    def __init__(self) -> None:
        self.images: list[tuple[str, np.ndarray, int]] = []

    def add_image(self, tag, image, step, dataformats="CHW"):
        self.images.append((tag, image, step))


class SinkLogger:
    def __init__(self) -> None:
        self.experiment = ImageSink()


def test_image_grid_draws_swapinpaint_columns_and_logs_the_image(tmp_path):
    model = make_module(content_iterations=1)
    grid = ImageGrid(str(tmp_path), num_images=2)
    trainer = tiny_trainer(tmp_path, 2, limit_val_batches=1, callbacks=[grid])
    trainer.fit(model, PairBatches())
    latest = tmp_path / "samples" / "latest.png"
    assert (tmp_path / "samples" / "epoch_000.png").read_bytes() == latest.read_bytes()
    image = np.asarray(Image.open(latest))
    pad = 2
    # six columns (masked | X̂ | reference | Y_sp | Y | ground truth), two rows
    assert image.shape == (2 * (SIZE + pad) + pad, 6 * (SIZE + pad) + pad, 3)
    assert set(grid._batch) == {"masked", "mask", "reference", "image"}

    logger = SinkLogger()
    trainer.loggers = [logger]
    grid.on_validation_epoch_end(trainer, model)
    ((tag, logged, _),) = logger.experiment.images
    assert tag == "samples" and np.array_equal(logged, image)
