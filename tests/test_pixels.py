"""facectx.pixels: the one uint8 <-> [-1, 1] conversion, exact at every level and layout."""

from __future__ import annotations

import numpy as np
import torch

from facectx.pixels import from_uint8, quantize, to_uint8, uint8_to_unit, unit_to_uint8


def test_every_level_round_trips_exactly_in_every_layout():
    levels = np.arange(256, dtype=np.uint8)
    rgb = np.stack([levels, levels[::-1], np.roll(levels, 7)], -1).reshape(16, 16, 3)
    x = from_uint8(rgb)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(to_uint8(x), rgb)
    batch = np.stack([rgb, rgb[::-1]])
    xb = from_uint8(batch)
    assert xb.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(to_uint8(xb), batch)
    assert torch.equal(
        unit_to_uint8(uint8_to_unit(torch.from_numpy(batch))), torch.from_numpy(batch)
    )


def test_out_of_range_values_clamp_and_quantize_matches_a_png_round_trip():
    x = torch.tensor([-3.0, -1.0, -0.0041, 0.0, 0.0039, 0.999, 1.0, 7.0]).view(1, 1, 1, 8)
    x = x.expand(1, 3, 1, 8)
    u8 = unit_to_uint8(x)
    assert u8.dtype == torch.uint8 and u8[0, 0, 0].tolist() == [0, 0, 127, 128, 128, 255, 255, 255]
    assert torch.equal(quantize(x), uint8_to_unit(u8))


def test_from_uint8_takes_a_read_only_array_without_a_warning():
    """``np.asarray(PIL.Image)`` is read-only: converting it must neither warn nor alias it."""
    import warnings

    a = np.full((4, 4, 3), 255, np.uint8)
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = from_uint8(a)
    assert x.shape == (3, 4, 4) and float(x.min()) == 1.0
