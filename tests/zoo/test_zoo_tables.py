"""The generator blocks at width 1 reproduce the supplement's layer tables exactly.

Transcribed from the supplement (Tables 1-4: block_8 ... block_64) and the main paper's appendix
(Table 7: block_128, garbled in the supplement). Columns: layer, filter/stride/dilation, filters.
Decoder conv numbering is the paper's own (it repeats "conv3" in block_32/64/128); only the order
and the kind of each row matter here.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facectx.zoo import GeneratorBlock, count_parameters

TABLES = {
    8: """
        conv0 3x3/1/2 128
        conv1 3x3/1/2 1,024
        RB1 3x3/1/1 1,024
        fc1 512 -
        fc2 16,384 -
        conv2 3x3/1/1 4*512
        PS1 - -
        conv3 5x5/1/1 3
    """,
    16: """
        conv0 3x3/1/2 128
        conv1 3x3/2/1 512
        RB1 3x3/1/1 512
        conv2 3x3/2/1 1,024
        RB2 3x3/1/1 1,024
        fc1 512 -
        fc2 16,384 -
        conv3 3x3/1/1 4*512
        PS1 - -
        conv4 3x3/1/1 4*256
        PS2 - -
        conv5 5x5/1/1 3
    """,
    32: """
        conv0 3x3/1/2 128
        conv1 3x3/2/1 256
        RB1 3x3/1/1 256
        conv2 3x3/2/1 512
        RB2 3x3/1/1 512
        conv3 3x3/2/1 1,024
        RB3 3x3/1/1 1,024
        fc1 512 -
        fc2 16,384 -
        conv3 3x3/1/1 4*512
        PS1 - -
        conv4 3x3/1/1 4*256
        PS2 - -
        conv5 3x3/1/1 4*128
        PS3 - -
        conv6 5x5/1/1 3
    """,
    64: """
        conv0 3x3/1/2 128
        conv1 3x3/2/1 128
        RB1 3x3/1/1 128
        conv2 3x3/2/1 256
        RB2 3x3/1/1 256
        conv3 3x3/2/1 512
        RB3 3x3/1/1 512
        conv4 3x3/2/1 1,024
        RB4 3x3/1/1 1,024
        fc1 512 -
        fc2 16,384 -
        conv3 3x3/1/1 4*512
        PS1 - -
        conv4 3x3/1/1 4*256
        PS2 - -
        conv5 3x3/1/1 4*128
        PS3 - -
        conv6 3x3/1/1 4*64
        PS4 - -
        conv7 5x5/1/1 3
    """,
    128: """
        conv0 3x3/1/2 128
        conv1 3x3/2/1 64
        RB1 3x3/1/1 64
        conv2 3x3/2/1 128
        RB2 3x3/1/1 128
        conv3 3x3/2/1 256
        RB3 3x3/1/1 256
        conv4 3x3/2/1 512
        RB4 3x3/1/1 512
        conv5 3x3/2/1 1,024
        RB5 3x3/1/1 1,024
        fc1 512 -
        fc2 16,384 -
        conv3 3x3/1/1 4*512
        PS1 - -
        conv4 3x3/1/1 4*256
        PS2 - -
        conv5 3x3/1/1 4*128
        PS3 - -
        conv6 3x3/1/1 4*64
        PS4 - -
        conv7 3x3/1/1 4*64
        PS5 - -
        conv8 5x5/1/1 3
    """,
}


def parse(table: str) -> list[tuple[str, str, str]]:
    return [tuple(line.split()) for line in table.strip().splitlines()]  # type: ignore[misc]


def filters(text: str) -> int:
    factor, _, n = text.replace(",", "").rpartition("*")
    return int(factor or 1) * int(n)


def slots(block: GeneratorBlock) -> list[tuple[str, nn.Module]]:
    """The block's layers in table order, tagged with the table row kind."""
    out: list[tuple[str, nn.Module]] = [("conv", block.conv0)]
    for stage in block.encoder:
        out += [("conv", stage.conv), ("RB", stage.rb)]
    out += [("fc", block.fc1), ("fc", block.fc2)]
    for stage in block.decoder:
        out += [("conv", stage.conv), ("PS", stage.shuffle)]
    out.append(("conv", block.to_rgb))
    return out


def check_conv(conv: nn.Module, spec: str, n_filters: int) -> None:
    kernel, stride, dilation = spec.split("/")
    k = int(kernel.split("x")[0])
    assert isinstance(conv, nn.Conv2d)
    assert conv.out_channels == n_filters
    assert conv.kernel_size == (k, k)
    assert conv.stride == (int(stride),) * 2
    assert conv.dilation == (int(dilation),) * 2
    assert conv.padding == ((k - 1) // 2 * int(dilation),) * 2  # "same"


@pytest.mark.parametrize("size", sorted(TABLES))
def test_block_matches_table(size):
    with torch.device("meta"):
        block = GeneratorBlock(size, width=1.0)
    rows, layers = parse(TABLES[size]), slots(block)
    assert len(rows) == len(layers), [r[0] for r in rows]
    for (name, spec, n), (kind, module) in zip(rows, layers, strict=True):
        assert name.startswith(kind), (name, kind)
        if kind == "conv":
            check_conv(module, spec, filters(n))
        elif kind == "RB":
            for conv in (module.conv1, module.conv2):
                check_conv(conv, spec, filters(n))
                assert conv.in_channels == filters(n)
        elif kind == "fc":
            assert isinstance(module, nn.Linear)
            assert module.out_features == filters(spec)
        else:
            assert isinstance(module, nn.PixelShuffle) and module.upscale_factor == 2
    # inputs chain: 3 RGB channels in, fc1 sees the flattened encoder output (8x8 for block_8)
    assert block.conv0.in_channels == 3 and block.to_rgb.out_channels == 3
    spatial = 8 if size == 8 else 4
    assert block.fc1.in_features == 1024 * spatial * spatial
    assert block.fc2.in_features == 512


PARAMS_WIDTH_1 = {8: 80_935_427, 16: 69_318_915, 32: 72_554_627, 64: 73_287_747, 128: 73_509_379}


@pytest.mark.parametrize("size", sorted(TABLES))
def test_param_counts_width_1(size):
    with torch.device("meta"):
        block = GeneratorBlock(size, width=1.0)
    assert count_parameters(block) == PARAMS_WIDTH_1[size]
