"""Ids and identity labels of faces, from their photos' paths (prepare, hallucinate)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

_LFW_STEM = re.compile(r"^(.+)_\d{4}$")


def person_from_stem(stem: str) -> str:
    """LFW identity from a ``Name_NNNN`` file stem, else empty."""
    m = _LFW_STEM.match(stem)
    return m.group(1) if m else ""


def id_stem(source: str) -> str:
    """Source path without extension, '/' -> '__': the stem of its faces' ids."""
    stem = source.rsplit(".", 1)[0] if "." in Path(source).name else source
    return stem.replace("/", "__")


def face_id(source: str, index: int, stem: str | None = None) -> str:
    """Id (and file stem) of a face: ``<id_stem(source)>_<index>``."""
    return f"{stem if stem is not None else id_stem(source)}_{index}"


def unique_stems(sources: Sequence[str]) -> dict[str, str]:
    """Id stems for sources in order; on a clash (``x.jpg`` and ``x.png``, or ``a/b.jpg`` and
    ``a__b.jpg``) the later source keeps its extension, so two photos never share files.

    Computed over the whole sorted listing, done or not, so a resumed run assigns the same ids.
    """
    used: set[str] = set()
    out: dict[str, str] = {}
    for src in sources:
        stem = id_stem(src)
        if stem in used:
            stem = src.replace("/", "__")
            k = 1
            while stem in used:
                stem, k = f"{src.replace('/', '__')}~{k}", k + 1
        used.add(stem)
        out[src] = stem
    return out


__all__ = ["face_id", "id_stem", "person_from_stem", "unique_stems"]
