"""Pack an exemplar bank: ``python -m facectx.bank train_root=... split=train output=...``.

The command line only: compose ``conf/bank.yaml``, make one library call
(:func:`facectx.inference.exemplar.pack_bank`: the prepared folder's faces, their pictures as
JPEG, landmarks, masks, retrieval descriptors and identity features, and the trained context
harmoniser when ``harmoniser=`` names its checkpoint, in one deterministic file),
print what it wrote. The file runs as ``ckpt=FILE`` (``ExemplarHallucinator``) and as
``method=exemplar`` with ``bank=FILE``. In Python use :mod:`facectx.inference.exemplar`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from facectx.inference.exemplar import BankSummary, pack_bank

log = logging.getLogger("facectx.bank")

__all__ = ["compare", "main", "run"]


def run(cfg) -> BankSummary:
    """Run a composed ``bank`` config (conf/bank.yaml)."""
    from omegaconf import OmegaConf

    summary = pack_bank(
        str(Path(str(cfg.train_root)).expanduser()),
        str(Path(str(cfg.output)).expanduser()),
        split=None if cfg.get("split") is None else str(cfg.split),
        one_per_person=bool(cfg.one_per_person),
        max_faces=None if cfg.get("max_faces") is None else int(cfg.max_faces),
        quality=int(cfg.quality),
        feature=None if cfg.get("feature") is None else str(cfg.feature),
        feature_path=cfg.get("feature_path"),
        weights=OmegaConf.to_container(cfg.weights, resolve=True),
        fit=OmegaConf.to_container(cfg.fit, resolve=True),
        batch_size=int(cfg.batch_size),
        device=str(cfg.device),
        progress=bool(cfg.progress),
        harmoniser=None if cfg.get("harmoniser") is None else str(cfg.harmoniser),
    )
    print(
        f"exemplar bank -> {summary.path}: {summary.bytes / 2**20:.1f} MB, {summary.faces} "
        f"faces, sha256 {summary.sha256} ({summary.seconds:.0f} s)",
        flush=True,
    )
    if cfg.get("compare") is not None:
        compare(summary.path, str(cfg.compare))
    return summary


def compare(built, reference: str) -> None:
    """Print how the bank just built compares with ``reference`` (a path, ``pretrained`` or
    ``pretrained:NAME``); ConfigError when it is not the same bank."""
    from facectx._conf import ConfigError
    from facectx.pretrained.exemplar_bank import compare_banks, resolve_bank

    ref = resolve_bank(reference)
    result = compare_banks(built, ref)
    print(f"compared with {ref}: {result.describe()}", flush=True)
    if not result.same:
        raise ConfigError(
            f"the bank built at {built} is not the bank {ref}: {result.describe()}. Check that "
            "train_root holds the same prepared faces and the settings match the reference's"
        )


def main() -> None:
    """``python -m facectx.bank`` (Hydra: conf/bank.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("bank", run, log)


if __name__ == "__main__":
    main()
