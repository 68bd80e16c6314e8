"""Ids and identity labels of faces, from their photos' paths (prepare, hallucinate)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

#: how a photo's person label is chosen when no splits CSV gives one (docs/preparation.md)
PERSON_RULES = ("auto", "name", "folder", "file")

_NUMBERED = re.compile(r"^(.+)_\d+$")
# LFW's spelling of a name: words of letters, dots, hyphens and apostrophes joined by "_", the
# first capitalised (AJ_Lamas, Inam-ul-Haq, John_Paul_II); never a digit
_NAME = re.compile(r"^[A-Z][A-Za-z.'-]*(_[A-Za-z.'-]+)*$")
# capitalised words that cameras, scanners and datasets number their files with
_NOT_NAMES = {"image", "img", "photo", "picture", "pic", "frame", "face", "scan", "screenshot"}


def looks_like_name(text: str) -> bool:
    """Whether ``text`` reads as a person's name in LFW's spelling: capitalised, with lowercase
    letters (not ``IMG``, ``DSC``), no digits, not a generic word (``image``, ``Photo``)."""
    return (
        bool(_NAME.match(text))
        and any(c.islower() for c in text)
        and text.split("_")[0].lower() not in _NOT_NAMES
    )


def person_from_stem(stem: str) -> str:
    """The name of a ``Name_NNNN`` file stem (LFW) when it looks like a name, else empty:
    ``Aaron_Peirsol_0003`` -> ``Aaron_Peirsol``, ``image_0001`` (Caltech) -> ``""``."""
    m = _NUMBERED.match(stem)
    return m.group(1) if m and looks_like_name(m.group(1)) else ""


def folders_name_persons(sources: Sequence[str]) -> bool:
    """Whether the ``auto`` rule takes a photo's folder as its person: the photos (paths
    relative to the input, '/'-separated) lie in two or more folders below the input. One
    folder holding them all is a wrapper (``caltech_faces/``), not a person."""
    return len({PurePosixPath(s).parent for s in sources} - {PurePosixPath(".")}) >= 2


def person_label(
    source: str, rule: str = "auto", stem: str | None = None, folders: bool = False
) -> str:
    """The person label of a photo (``source``: its path relative to the input).

    Rules (the first that gives a label wins; a photo is always labelled):

    * ``auto``: the name of an LFW-style ``Name_NNNN`` stem (:func:`person_from_stem`); else,
      when ``folders`` (:func:`folders_name_persons` of the whole input), the photo's folder;
      else the photo itself.
    * ``name``: everything before the stem's final ``_digits``, name-like or not; else the photo.
    * ``folder``: the folder holding the photo; the photo itself at the input's top level.
    * ``file``: the photo itself: one person per photo.

    "The photo itself" is ``stem`` (its faces' id stem, unique per photo), by default
    :func:`id_stem` of ``source``.
    """
    if rule not in PERSON_RULES:
        raise ValueError(f"person rule must be one of {'|'.join(PERSON_RULES)}, got {rule!r}")
    path = PurePosixPath(source)
    folder = path.parent.name
    if rule == "auto":
        label = person_from_stem(path.stem) or (folder if folders else "")
    elif rule == "name":
        m = _NUMBERED.match(path.stem)
        label = m.group(1) if m else ""
    else:
        label = folder if rule == "folder" else ""
    return label or (stem if stem is not None else id_stem(source))


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


__all__ = [
    "PERSON_RULES",
    "face_id",
    "folders_name_persons",
    "id_stem",
    "looks_like_name",
    "person_from_stem",
    "person_label",
    "unique_stems",
]
