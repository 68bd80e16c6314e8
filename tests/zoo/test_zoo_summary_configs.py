"""summary() text and the Hydra configs of the zoo."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from facectx.zoo import CascadeGenerator, CasiaDiscriminator, _main, count_parameters, summary

SIZES = (8, 16, 32, 64, 128)
TINY = 1 / 8  # width multiplier for fast tests

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_summary_lists_every_block_and_totals():
    buf = io.StringIO()
    text = summary(width=TINY, file=buf)
    assert buf.getvalue() == text
    for s in SIZES:
        assert f"block_{s} (GeneratorBlock)" in text
        assert f"disc_{s} (CasiaDiscriminator)" in text
    for s in SIZES[1:]:
        assert f"up_{s} (PixelShuffleUpscaler)" in text
    gen = CascadeGenerator(width=TINY)
    blocks = sum(count_parameters(b) for b in gen.blocks.values())
    ups = sum(count_parameters(u) for u in gen.upscalers.values())
    discs = sum(count_parameters(CasiaDiscriminator(s, TINY)) for s in SIZES)
    for label, n in [("generator blocks", blocks), ("upscalers", ups), ("discriminators", discs)]:
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(label))
        assert line.split()[-1] == f"{n:,}"


def test_summary_width_1_is_meta_and_exact():
    text = summary(width=1.0, sizes=(128,))
    assert "73,509,379" in text and "(1, 64, 128, 128)" in text
    assert "RB5->fc2" in text


def test_main_prints(capsys):
    _main(["--width", "0.125", "--sizes", "8", "16"])
    out = capsys.readouterr().out
    assert "block_16 (GeneratorBlock)" in out and "block_32" not in out


def test_generator_config_instantiates():
    cfg = OmegaConf.load(CONF / "generator" / "cascade.yaml")
    assert cfg.width == 1.0 and list(cfg.sizes) == list(SIZES)
    cfg.width, cfg.sizes = TINY, [8, 16]
    gen = instantiate(cfg)
    assert isinstance(gen, CascadeGenerator) and gen.sizes == (8, 16)
    assert gen.detach_between_blocks is True


def test_discriminator_config_is_a_per_size_factory():
    cfg = OmegaConf.load(CONF / "discriminator" / "casia.yaml")
    assert cfg.width == 1.0
    cfg.width = TINY
    make = instantiate(cfg)
    d = make(size=16)
    assert isinstance(d, CasiaDiscriminator) and d.size == 16
    assert d(torch.zeros(1, 3, 16, 16)).shape == (1, 1, 4, 4)
