"""The web demo: ``python -m facectx.app`` serves a local Gradio page (docs/app.md).

The command line only (Hydra: ``conf/app.yaml``): it loads the models, builds the page
(:mod:`facectx.app_ui`, the layout) over :class:`facectx.demo.Demo` (the logic) and serves it on
127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from facectx.demo import DETECTORS, FACE_CHOICES, Demo, example_photos

log = logging.getLogger("facectx.app")


# ---- command line ------------------------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``host`` now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def detector_name(spec: Any) -> str:
    """The registry name (hog, mtcnn, fan) of a ``conf/detector`` option, or of a name."""
    from facectx._conf import ConfigError

    if isinstance(spec, str):
        name = spec
    else:
        from facectx.faces.detect import DETECTORS as REGISTRY

        target = str(spec.get("_target_", "")).rsplit(".", 1)[-1]
        name = next((n for n, cls in REGISTRY.items() if cls.__name__ == target), target)
    if name not in DETECTORS:
        raise ConfigError(f"detector={name}: the page offers {', '.join(DETECTORS)}")
    return name


def load_demo(cfg) -> Demo:
    """The models of a composed ``app`` config (conf/app.yaml)."""
    from facectx._conf import ConfigError
    from facectx.faces.detect import available_detectors, detector_problem
    from facectx.inference import load_hallucinator

    detector = detector_name(cfg.detector)
    problem = detector_problem(detector)
    if problem is not None:  # before the models load: the page would offer it in vain
        raise ConfigError(
            f"detector={detector} cannot run here: {problem}; "
            f"use detector={' or detector='.join(available_detectors())}"
        )
    if str(cfg.faces) not in FACE_CHOICES:
        raise ConfigError(f"faces={cfg.faces}: choose one of {', '.join(FACE_CHOICES)}")
    ckpt = None if cfg.get("ckpt") is None else str(cfg.ckpt)
    from facectx.pretrained.hallucinators import DEFAULT_PORTRAIT

    hallucinator = load_hallucinator(
        ckpt, device=str(cfg.device), use_ema=bool(cfg.use_ema), default=DEFAULT_PORTRAIT
    )
    inpainter = None
    from facectx.inference import Inpainter, load_inpainter
    from facectx.pretrained.registry import ChecksumError, WeightsNotFoundError

    if cfg.get("inpaint_ckpt"):
        try:
            inpainter = Inpainter.from_checkpoint(
                str(cfg.inpaint_ckpt), device=str(cfg.device), use_ema=bool(cfg.use_ema)
            )
        except (WeightsNotFoundError, ChecksumError) as e:
            raise ConfigError(f"inpaint_ckpt={cfg.inpaint_ckpt}: {e}") from e
    else:  # the SwapInpaint model shipped with facectx; without it the tab says what to do
        from facectx.checkpoint import CheckpointError

        try:
            inpainter = load_inpainter(None, device=str(cfg.device), use_ema=bool(cfg.use_ema))
        except (WeightsNotFoundError, ChecksumError, CheckpointError) as e:
            log.warning("the Inpaint tab is off: %s", e)
    return Demo(
        hallucinator,
        inpainter,
        detector=detector,
        faces=str(cfg.faces),
        upsample=int(cfg.upsample),
    )


def serve(cfg, block: bool = True):
    """Start the page for a composed ``app`` config; returns the Gradio Blocks (launched)."""
    from facectx._conf import ConfigError

    # Offline: no telemetry, no version check (set here, on start, never at import).
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    # gradio checks its own server through httpx, which logs each request at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)
    host = str(cfg.host)
    port = int(cfg.port) if cfg.get("port") else free_port(host)
    demo = load_demo(cfg)
    from facectx.app_ui import build, launch

    examples = example_photos()
    blocks = build(demo, examples)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("host=%s: the page is reachable from other machines, with no login", host)
    stopped = block
    if block and threading.current_thread() is threading.main_thread():
        import signal
        import sys

        # `kill` (SIGTERM) stops the server like Ctrl-C does, so the results are deleted too
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        launch(
            blocks,
            demo,
            host,
            port,
            max_file_size=str(cfg.max_file_size),
            block=block,
            allowed=sorted({str(p.parent) for p in examples}),
        )
    except OSError as e:
        stopped = True
        raise ConfigError(
            f"cannot serve on {host}:{port} ({e}); pass another port= (port=0 picks a free one)"
        ) from e
    finally:
        if stopped:  # the server has stopped (Ctrl-C) or never started: drop the results
            demo.close()
    return blocks


def main() -> None:
    """``python -m facectx.app`` (Hydra: conf/app.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("app", serve, log)


if __name__ == "__main__":
    main()
