"""An evaluation described by an eval config (``conf/eval.yaml``): the metric networks, the
methods (baselines, output folders, checkpoints), the harness run and its results files.

``facectx.evaluate`` is its command line and ``facectx.evaluation.sweep`` (``facectx.report``)
runs it once per job of an ablation sweep; ``settings_key`` is what makes two evaluations
comparable.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from facectx._conf import ConfigError
from facectx.evaluation.harness import RESULT_COLUMNS, EvaluationResult, Evaluator, Instruments
from facectx.evaluation.method import Method
from facectx.evaluation.tables import csv_value, write_results

log = logging.getLogger("facectx.evaluate")

# ---------------------------------------------------------------------------------------------
# building the metric networks and the methods from the config


def _root_cause(e: BaseException) -> BaseException:
    while e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__):
        e = e.__cause__ or e.__context__
    return e


def _build(node):
    """Instantiate a config node; returns (object, note) where note flags random weights."""
    from hydra.utils import instantiate

    from facectx.pretrained import RandomWeightsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RandomWeightsWarning)
        obj = instantiate(node)
    rand = any(issubclass(w.category, RandomWeightsWarning) for w in caught)
    return obj, (" (RANDOM weights: meaningless)" if rand else "")


def build_instruments(cfg: DictConfig, device: torch.device) -> Instruments:
    """Networks from the eval config; missing LPIPS/FID weights turn those metrics off."""
    from facectx.pretrained import WeightsNotFoundError

    ins = Instruments()
    idc = cfg.get("identity")
    backend = cfg.get("identity_backend", "port")
    if backend not in ("port", "dlib"):
        raise ConfigError(f"identity_backend must be 'port' or 'dlib', got {backend!r}")
    if idc is None:
        ins.status["identity"] = "off (identity=none)"
    elif backend == "dlib":
        from facectx.metrics.identity import DlibNativeDescriptor

        if idc.get("name") != "dlib-resnet":
            raise ConfigError(
                f"identity_backend=dlib runs dlib's own descriptor, i.e. identity=dlib-resnet; "
                f"got identity={idc.get('name')}"
            )
        ins.identity = DlibNativeDescriptor(weights_path=idc.get("path"))
        ins.status["identity"] = "dlib-resnet, dlib library (dlib.face_recognition_model_v1)"
    else:
        try:
            net, note = _build(idc)
        except Exception as e:
            cause = _root_cause(e)
            if isinstance(cause, WeightsNotFoundError):
                raise WeightsNotFoundError(
                    f"identity={idc.get('name')} has no weights here (choose another with "
                    f"identity=dlib-resnet, or identity=none):\n{cause}"
                ) from e
            raise
        ins.identity = net.to(device)
        ins.status["identity"] = f"{getattr(net, 'name', idc.get('name'))}{note}"

    lpc = cfg.get("lpips")
    if lpc is None:
        ins.status["lpips"] = "n/a (lpips=none)"
    else:
        try:
            net, note = _build(lpc)
            ins.lpips = net.to(device)
            ins.status["lpips"] = f"lpips-alex v{lpc.get('version')}{note}"
        except Exception as e:
            cause = _root_cause(e)
            if not isinstance(cause, WeightsNotFoundError):
                raise
            ins.status["lpips"] = "n/a (no weights)"
            log.warning(
                "LPIPS off: its weights are missing (`python -m facectx.weights list` says "
                "where to put them). First line: %s",
                str(cause).splitlines()[0],
            )

    fidc = cfg.get("fid") or {}
    if not fidc.get("enabled", True):
        ins.status["fid"] = "off (fid.enabled=false)"
    else:
        from facectx.pretrained import load

        try:
            ins.fid = load("inception-fid", variant=fidc.get("variant", "auto")).to(device)
            ins.status["fid"] = f"inception-fid ({getattr(ins.fid, 'kind', '?')} extractor)"
        except (WeightsNotFoundError, ModuleNotFoundError) as e:
            ins.status["fid"] = "n/a (no Inception weights)"
            log.warning("FID off: %s", str(e).splitlines()[0])

    lmc = cfg.get("landmarks") or {}
    if not lmc.get("enabled", True):
        ins.status["landmarks"] = "off (landmarks.enabled=false)"
    else:
        from facectx.metrics.landmarks import CanonicalLandmarks

        ins.landmarks = CanonicalLandmarks(upsample=int(lmc.get("upsample", 1)))
        ins.status["landmarks"] = "dlib HOG box + 68-point shape predictor"
    return ins


def _named(value) -> list[tuple[str | None, str]]:
    """None | path | [paths] | {label: path} -> [(label or None, path)]."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [(None, str(value))]
    if hasattr(value, "items"):
        return [(str(k), str(v)) for k, v in value.items()]
    return [(None, str(v)) for v in value]


def _checkpoints(cfg: DictConfig) -> list[tuple[str | None, str]]:
    """The ``ckpt`` entries; the shipped model when nothing at all is named to evaluate."""
    named = _named(cfg.get("ckpt"))
    if named or cfg.get("method") or cfg.get("pred_dir"):
        return named
    return [(None, "pretrained")]


def build_methods(cfg: DictConfig) -> list[Method]:
    """Baselines (``method`` group), output folders (``pred_dir``) and checkpoints (``ckpt``);
    none of them = the model shipped with facectx, as every other tool does without ``ckpt=``."""
    from hydra.utils import instantiate

    from facectx.evaluation.external import PredDirMethod

    methods: list[Method] = []
    for node in (cfg.get("method") or {}).values():
        methods.append(instantiate(node))
    for label, path in _named(cfg.get("pred_dir")):
        methods.append(PredDirMethod(path, name=label))
    if not methods and not _named(cfg.get("ckpt")):
        log.info("no ckpt=, pred_dir= or method= given: evaluating the model shipped with facectx")
    for label, path in _checkpoints(cfg):
        methods += checkpoint_methods(cfg, label, path)
    seen: dict[str, int] = {}
    for m in methods:  # unique row labels
        seen[m.name] = seen.get(m.name, 0) + 1
        if seen[m.name] > 1:
            m.name = f"{m.name}#{seen[m.name]}"
    return methods


def checkpoint_methods(cfg: DictConfig, label: str | None, path: str) -> list[Method]:
    """Rows of one ``ckpt=`` entry: a cascade checkpoint gives one row; a SwapInpaint checkpoint
    one row per ``swapinpaint.outputs`` entry (its prediction, and X̂ alone as a baseline)."""
    from facectx.evaluation.external import CheckpointMethod
    from facectx.evaluation.swapinpaint import SwapInpaintMethod, checkpoint_kind
    from facectx.inference.hallucinator import pretrained_name

    use_ema = cfg.get("use_ema", True)
    if pretrained_name(path) is not None or checkpoint_kind(path) != "swapinpaint":
        return [CheckpointMethod(path, name=label, use_ema=use_ema)]
    si = cfg.get("swapinpaint") or {}
    rows = []
    for output in si.get("outputs", ["blended", "content"]):
        name = label if label is None or output == "blended" else f"{label}/{output}"
        rows.append(
            SwapInpaintMethod(
                path, name=name, use_ema=use_ema, output=output, dilate=si.get("dilate", 5)
            )
        )
    return rows


def log_to_loggers(logger_cfg, result: EvaluationResult) -> None:
    """Log the results table to every configured logger that has ``log_table`` (wandb)."""
    from hydra.utils import instantiate

    if not logger_cfg:
        return
    columns = [c for c in RESULT_COLUMNS if c != "source"]
    data = [[csv_value(r.get(c)) for c in columns] for r in result.rows]
    for key, node in logger_cfg.items():
        if node is None or "_target_" not in node:
            continue
        logger = instantiate(node)
        if not hasattr(logger, "log_table"):
            log.info("logger %s has no tables; results are in results.csv", key)
            continue
        logger.log_table(key="evaluation/results", columns=columns, data=data)
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "finish"):
            experiment.finish()
        log.info("results table logged to %s", key)


def reference_root(cfg: DictConfig) -> str | None:
    """The prepared originals: ``ref_dir`` or ``data.root`` (None = the embedded sample)."""
    root = (cfg.get("data") or {}).get("root")
    ref = cfg.get("ref_dir")
    if ref is not None and root is not None and Path(ref).resolve() != Path(root).resolve():
        raise ConfigError(
            f"ref_dir={ref} and data.root={root} name different folders; they are the same "
            "setting (the prepared originals): give one of them."
        )
    return ref if ref is not None else root


def settings_key(cfg: DictConfig) -> dict[str, Any]:
    """The settings that make two evaluations comparable (``facectx.report`` checks them)."""
    from facectx.inference.hallucinator import pretrained_name

    root = reference_root(cfg)
    if root is None:
        from facectx.assets import sample_root

        root = sample_root()

    def plain(node):
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

    ckpts = []
    for label, path in _checkpoints(cfg):
        name = pretrained_name(path)
        if name is not None:  # the file identifies the model (the package's copy, or a cache's)
            from facectx.pretrained.hallucinators import resolve_pretrained

            path = str(resolve_pretrained(name))
        p = Path(path).expanduser().resolve()
        stat = p.stat() if p.is_file() else None
        ckpts.append(
            [label, str(p), stat.st_size if stat else None, stat.st_mtime_ns if stat else None]
        )
    return {
        "root": str(Path(root).expanduser().resolve()),
        "split": plain(cfg.get("split")),
        "limit": cfg.get("limit"),
        "seed": cfg.get("seed", 0),
        "mask": plain(cfg.get("mask")),
        "reference": cfg.get("reference"),
        "swapinpaint": plain(cfg.get("swapinpaint")),
        "identity": plain(cfg.get("identity")),
        "identity_backend": cfg.get("identity_backend", "port"),
        "lpips": plain(cfg.get("lpips")),
        "fid": plain(cfg.get("fid")),
        "landmarks": plain(cfg.get("landmarks")),
        "pairs": cfg.get("pairs"),
        "fpr": cfg.get("fpr", 0.01),
        "ckpt": ckpts,
        "use_ema": cfg.get("use_ema", True),
        "method": plain(cfg.get("method")),
    }


def evaluate_config(cfg: DictConfig) -> EvaluationResult:
    """Build methods, data and metric networks from an eval config (conf/eval.yaml), score
    them and write the results files into ``cfg.paths.output_dir``."""
    from hydra.utils import instantiate

    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.get("device", "cpu"))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    methods = build_methods(cfg)
    mask = instantiate(cfg.mask) if cfg.get("mask") is not None else None
    data = cfg.get("data") or {}
    evaluator = Evaluator(
        root=reference_root(cfg),
        split=cfg.get("split"),
        mask=mask,
        instruments=build_instruments(cfg, device),
        pairs=cfg.get("pairs"),
        fpr=cfg.get("fpr", 0.01),
        batch_size=data.get("batch_size", 32),
        num_workers=data.get("num_workers", 0),
        device=device,
        limit=cfg.get("limit"),
        seed=cfg.get("seed", 0),
        output_dir=out_dir,
        save_outputs=cfg.get("save_outputs", False),
        num_samples=cfg.get("num_samples", 8),
        progress=cfg.get("progress", True),
        reference=cfg.get("reference"),
    )
    result = evaluator.run(methods, reference_row=cfg.get("reference_row", True))
    result.settings["key"] = settings_key(cfg)
    write_results(out_dir, result, evaluator.samples if evaluator.num_samples else None)
    log_to_loggers(cfg.get("logger"), result)
    return result
