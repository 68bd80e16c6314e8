"""What produced an output folder: one JSON record, written on the first run, checked on reruns.

Every resumable command (prepare, augment, hallucinate, background, inpaint) skips what its
output folder already lists. That is only right when the folder was made by the same model and
the same output-affecting settings, so each command records them in the folder and compares
them on every rerun: equal, the run resumes; different, :class:`OutputFolderError` says in one
line which folder, what differs, and the fix (a new ``output=``, or delete the folder).

A model is recorded by :func:`weights_digest`, a hash of the weights it runs with: the same
checkpoint gives the same digest wherever the file lies, and a retrained ``last.ckpt`` at the
same path, or the EMA weights instead of the raw ones, a different one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from facectx._machine import MACHINE_ERRNOS

log = logging.getLogger("facectx")

#: record file of the inference commands (prepare and augment keep their ``meta.json``)
JOB = "job.json"


class OutputFolderError(ValueError):
    """An output folder holds results of another model or other settings; the message (one
    line) names the folder, what differs and the fix."""


def weights_digest(*modules: Any) -> str:
    """First 16 hex digits of the sha256 of the modules' state dicts (names, dtypes, bytes)."""
    import torch

    h = hashlib.sha256()
    for module in modules:
        for name, t in module.state_dict().items():
            t = t.detach().cpu().contiguous().reshape(-1)
            h.update(f"{name}:{t.dtype}:{t.numel()};".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


_SIMPLE = (str, int, float, bool, type(None))


def describe(obj: Any, skip: Iterable[str] = ("device",)) -> Any:
    """A JSON-able description of a setting: plain values as they are; an object as its type
    and its public plain attributes (e.g. a detector's ``upsample``), ``skip`` left out."""
    if isinstance(obj, _SIMPLE):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): describe(v, skip) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [describe(v, skip) for v in obj]
    out: dict[str, Any] = {"type": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    for k, v in sorted(getattr(obj, "__dict__", {}).items()):
        if k.startswith("_") or k in skip:
            continue
        if isinstance(v, (*_SIMPLE, Path)) or (
            isinstance(v, list | tuple) and all(isinstance(x, _SIMPLE) for x in v)
        ):
            out[k] = describe(v, skip)
    return out


def _short(value: Any, n: int = 60) -> str:
    """``value`` in at most ``n`` characters, its middle cut (a path keeps its file name)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= n else text[: n // 3] + "…" + text[-(n - n // 3 - 1) :]


def _difference(key: str, old: dict, new: dict) -> str:
    def model(record: dict) -> Any:  # what the reader knows the model by
        return record.get("model", record.get("ckpt"))

    if key == "weights" and model(old) != model(new):
        return f"model {_short(model(old))} -> {_short(model(new))}"
    return f"{key} {_short(old.get(key))} -> {_short(new.get(key))}"


def _nonempty(folder: Path, names: Sequence[str]) -> bool:
    return any((folder / n).is_file() and (folder / n).stat().st_size > 0 for n in names)


def check_or_record(
    folder: str | Path,
    record: dict[str, Any],
    compare: Sequence[str] | None = None,
    name: str = JOB,
    results: Sequence[str] = (),
) -> dict[str, Any]:
    """Record what produces ``folder`` on its first run; on a rerun, refuse a different one.

    Args:
        folder: the output folder (created when missing).
        record: JSON-able identity of the model and the settings that change the outputs, plus
            anything worth keeping for the reader (only ``compare`` keys are checked).
        compare: keys that must be equal on a rerun; None = every key of ``record`` but
            ``model`` (a path, kept for the reader: ``weights`` identifies the model).
        name: the record's file name inside ``folder``.
        results: files that list finished results (``outputs.csv``...): a folder that has them
            but no record was made by an older facectx; it is adopted with a warning.

    Returns:
        The record now stored (the first run's, completed with keys it lacked).

    Raises:
        OutputFolderError: a compared key differs from the stored record.
    """
    from facectx.faces.io import atomic_write_bytes

    folder = Path(folder).expanduser().resolve()
    path = folder / name
    record = json.loads(json.dumps(record))  # plain JSON types, as they will be read back
    keys = [k for k in record if k != "model"] if compare is None else list(compare)
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = [k for k in keys if k in old and old[k] != record.get(k)]
        if diff:
            what = "; ".join(_difference(k, old, record) for k in diff)
            raise OutputFolderError(
                f"{folder} holds results made with different settings ({what}); rerun with the "
                f"original ones, or pass a new output= folder, or delete {folder} to start over."
            )
        missing = [k for k in keys if k not in old]
        if not missing:
            return old
        log.warning("%s: %s lacks %s; recorded now", folder, name, ", ".join(missing))
        record = {**old, **{k: record[k] for k in missing}}
    elif _nonempty(folder, results):
        log.warning(
            "%s has results but no %s (made by an older facectx): assuming they come from the "
            "same model and settings; delete the folder if not",
            folder,
            name,
        )
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=False) + "\n").encode())
    return record


class JobStoppedError(RuntimeError):
    """A folder job stopped on an error of the machine (full disk, read-only or unwritable
    folder, I/O error, out of memory). What was finished is kept; a rerun does the rest."""


def is_environmental(e: BaseException) -> bool:
    """Whether ``e`` is the machine's problem (never a per-item skip) rather than the item's:
    a rerun after the cause is fixed must redo the item (errnos: :mod:`facectx._machine`)."""
    return isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno in MACHINE_ERRNOS)


def job_stopped(e: BaseException, item: str, output: str | Path) -> JobStoppedError:
    """The one-line error for an environmental failure while handling ``item``."""
    what = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
    where = f" ({e.filename})" if isinstance(e, OSError) and e.filename else ""
    return JobStoppedError(
        f"stopped at {item}: {what}{where}. Finished items in {output} are kept and "
        f"{item} is not marked done; fix the cause (free space, permissions, memory) and rerun "
        "the same command to do the rest."
    )


def die_with_parent() -> None:
    """In a worker process: exit as soon as the parent process is gone.

    A SIGKILLed parent cannot shut its pool down, and its workers would otherwise run on (and
    hold their memory) until they next talk to it. A daemon thread waits on the parent's
    sentinel, which becomes ready when the parent dies, and ends this process at once."""
    import multiprocessing as mp
    import os
    import threading
    from multiprocessing.connection import wait

    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="facectx-die-with-parent", daemon=True).start()
